//! Opening a broker connection with a deadline.

use std::time::Duration;

use lapin::{Connection, ConnectionProperties};

use crate::error::BusError;

/// How long opening a connection (TCP, TLS and the AMQP handshake) may take by default.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Open a connection to `amqp_url`, or fail with [`BusError::ConnectTimeout`] after `timeout`.
///
/// lapin waits for the handshake without a limit: against a peer that accepts TCP and then says
/// nothing (a broker still booting, a load balancer with no backend) a worker or relay would hang
/// in its reconnect loop forever, and a shutdown signal would wait for it.
pub async fn connect(amqp_url: &str, timeout: Duration) -> Result<Connection, BusError> {
    match tokio::time::timeout(timeout, Connection::connect(amqp_url, ConnectionProperties::default())).await
    {
        Ok(connection) => Ok(connection?),
        Err(_) => Err(BusError::ConnectTimeout(timeout)),
    }
}

/// The timeout against a peer that never answers: `tests/worker.rs` (a stalled fault proxy in
/// front of RabbitMQ).
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::connect;
    use crate::error::BusError;

    #[tokio::test]
    async fn a_refused_connection_is_a_broker_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let result = connect(&format!("amqp://{address}/%2f"), Duration::from_secs(5)).await;
        assert!(matches!(result, Err(BusError::Broker(_))), "{result:?}");
    }
}
