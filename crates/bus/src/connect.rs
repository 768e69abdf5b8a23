//! Opening a broker connection with a deadline.

use std::time::Duration;

use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};

use crate::error::BusError;

/// How long opening a connection (TCP, TLS and the AMQP handshake) may take by default.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The AMQP heartbeat asked for (seconds) when the URL names none (`?heartbeat=N` does).
///
/// lapin closes a connection that has received nothing for two heartbeats. Left to the broker's
/// proposal (RabbitMQ: 60 s), a connection that died without a TCP reset (a peer that vanished, a
/// NAT or load balancer that dropped the flow) kept a consumer waiting for two minutes before the
/// worker noticed and reconnected; with 10 s it notices within 20 s. RabbitMQ's guide recommends
/// 5 to 20 s. The broker may still ask for less; the lower of the two is used.
pub const HEARTBEAT_SECONDS: u16 = 10;

/// Open a connection to `amqp_url`, or fail with [`BusError::ConnectTimeout`] after `timeout`.
///
/// lapin waits for the handshake without a limit: against a peer that accepts TCP and then says
/// nothing (a broker still booting, a load balancer with no backend) a worker or relay would hang
/// in its reconnect loop forever, and a shutdown signal would wait for it. Unless the URL sets
/// `heartbeat`, the connection asks for [`HEARTBEAT_SECONDS`].
pub async fn connect(amqp_url: &str, timeout: Duration) -> Result<Connection, BusError> {
    let uri = parse_url(amqp_url)?;
    match tokio::time::timeout(timeout, Connection::connect_uri(uri, ConnectionProperties::default())).await {
        Ok(connection) => Ok(connection?),
        Err(_) => Err(BusError::ConnectTimeout(timeout)),
    }
}

/// Check that `amqp_url` can be read as a broker URL, without connecting: for a binary to refuse
/// to start on a malformed `AMQP_URL` instead of retrying it forever. The error never quotes the URL.
pub fn check_url(amqp_url: &str) -> Result<(), BusError> {
    parse_url(amqp_url).map(drop)
}

/// The URL as lapin reads it, with the default heartbeat filled in. The parser's own message is
/// kept only when it does not quote the URL (which holds the password).
fn parse_url(amqp_url: &str) -> Result<AMQPUri, BusError> {
    let mut uri: AMQPUri = amqp_url.parse().map_err(|reason: String| {
        BusError::InvalidUrl(if reason.contains(amqp_url) {
            "not an absolute amqp:// or amqps:// URL".to_owned()
        } else {
            reason
        })
    })?;
    uri.query.heartbeat.get_or_insert(HEARTBEAT_SECONDS);
    Ok(uri)
}

/// The timeout against a peer that never answers: `tests/worker.rs` (a stalled fault proxy in
/// front of RabbitMQ).
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{HEARTBEAT_SECONDS, connect, parse_url};
    use crate::error::BusError;

    #[test]
    fn the_heartbeat_defaults_unless_the_url_sets_it() {
        let uri = parse_url("amqp://guest:guest@127.0.0.1:5672/%2f").expect("url");
        assert_eq!(uri.query.heartbeat, Some(HEARTBEAT_SECONDS));
        let uri = parse_url("amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=3").expect("url");
        assert_eq!(uri.query.heartbeat, Some(3));
        let uri = parse_url("amqp://127.0.0.1/%2f?heartbeat=0&frame_max=8192").expect("url");
        assert_eq!((uri.query.heartbeat, uri.query.frame_max), (Some(0), Some(8192)));
        assert_eq!(uri.vhost, "/");
    }

    #[test]
    fn a_bad_url_is_an_invalid_url_error_without_the_password() {
        for url in [
            "user:s3cret@rabbit:5672",
            "http://user:s3cret@rabbit:5672/",
            "amqp://user:s3cret@rabbit:5672/%2f?heartbeat=soon",
            "amqp://user:s3cret@[rabbit/",
        ] {
            let error = parse_url(url).err().unwrap_or_else(|| panic!("{url} parsed"));
            let message = error.to_string();
            assert!(matches!(error, BusError::InvalidUrl(_)), "{url}: {error:?}");
            assert!(!message.contains("s3cret"), "{url}: {message}");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_broker_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let result = connect(&format!("amqp://{address}/%2f"), Duration::from_secs(5)).await;
        assert!(matches!(result, Err(BusError::Broker(_))), "{result:?}");
    }
}
