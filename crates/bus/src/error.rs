//! Errors of the bus layer.

/// What went wrong talking to the broker or the outcome store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The broker connection or channel failed.
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    /// The broker refused (nacked) a publication.
    #[error("broker refused the publication to {exchange} with routing key {routing_key}")]
    Nacked {
        /// The exchange.
        exchange: String,
        /// The routing key.
        routing_key: String,
    },
    /// The outcome store failed.
    #[error("outcome store: {0}")]
    Store(String),
    /// A payload could not be encoded.
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
    /// No answer within the deadline.
    #[error("no event within {0:?}")]
    Timeout(std::time::Duration),
    /// The broker did not complete the connection (TCP, TLS, AMQP handshake) in time.
    #[error("the broker did not complete the connection within {0:?}")]
    ConnectTimeout(std::time::Duration),
    /// The broker URL cannot be read (the message never quotes the URL: it holds the password).
    #[error("invalid broker URL: {0}")]
    InvalidUrl(String),
    /// The broker closed the consumer before the answer came.
    #[error("the broker closed the consumer")]
    Closed,
}
