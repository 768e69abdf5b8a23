//! A TCP fault proxy to put between the service and any dependency (an upstream fake, PostgreSQL,
//! Redis, RabbitMQ): added latency, stalls, connection resets, refused connections and a bandwidth
//! cap, switchable while traffic flows. No ready-made one installs on these machines.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Default)]
struct Switches {
    latency_ms: AtomicU64,
    /// Bytes per second per direction and connection; 0 = unlimited.
    bandwidth: AtomicU64,
    stalled: AtomicBool,
    refuse: AtomicBool,
    accepted: AtomicU64,
}

/// A running proxy. Dropping it stops accepting and closes every connection.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    target: SocketAddr,
    switches: Arc<Switches>,
    /// Bumped to reset every open connection.
    generation: watch::Sender<u64>,
    stalls: watch::Sender<bool>,
    shutdown: watch::Sender<bool>,
}

impl FaultProxy {
    /// Listen on 127.0.0.1 (a free port) and forward to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let switches = Arc::new(Switches::default());
        let (generation, _) = watch::channel(0u64);
        let (stalls, _) = watch::channel(false);
        let (shutdown, mut stop) = watch::channel(false);
        let proxy = Self { addr, target, switches: switches.clone(), generation, stalls, shutdown };
        let generation = proxy.generation.clone();
        let stalls = proxy.stalls.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    _ = stop.changed() => break,
                };
                let Ok((client, _)) = accepted else { continue };
                switches.accepted.fetch_add(1, Ordering::SeqCst);
                if switches.refuse.load(Ordering::SeqCst) {
                    // An abortive close (RST), as a closed port would answer: linger 0 never blocks.
                    #[allow(deprecated, reason = "SO_LINGER 0 resets at once; it cannot block the thread")]
                    let _ = client.set_linger(Some(Duration::ZERO));
                    drop(client);
                    continue;
                }
                let switches = switches.clone();
                let reset = generation.subscribe();
                let stalled = stalls.subscribe();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let _ = connection(client, target, switches, reset, stalled, stop).await;
                });
            }
        });
        Ok(proxy)
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address traffic is forwarded to.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Delay every chunk of data by `latency` (both directions).
    pub fn set_latency(&self, latency: Duration) {
        self.switches
            .latency_ms
            .store(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Cap each direction of each connection at `bytes_per_second` (`None`: unlimited).
    pub fn set_bandwidth(&self, bytes_per_second: Option<u64>) {
        self.switches.bandwidth.store(bytes_per_second.unwrap_or(0), Ordering::SeqCst);
    }

    /// Hold all data (connections stay open, nothing flows) until `stall(false)`.
    pub fn stall(&self, stalled: bool) {
        self.switches.stalled.store(stalled, Ordering::SeqCst);
        let _ = self.stalls.send(stalled);
    }

    /// Refuse new connections (accepted, then reset at once, like a closed port) until `refuse(false)`.
    pub fn refuse(&self, refuse: bool) {
        self.switches.refuse.store(refuse, Ordering::SeqCst);
    }

    /// Reset every open connection (TCP RST).
    pub fn reset_all(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Connections accepted so far (refused ones included).
    pub fn accepted(&self) -> u64 {
        self.switches.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.reset_all();
    }
}

async fn connection(
    client: TcpStream,
    target: SocketAddr,
    switches: Arc<Switches>,
    mut reset: watch::Receiver<u64>,
    stalled: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let upstream = TcpStream::connect(target).await?;
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let up = pump(client_read, upstream_write, switches.clone(), stalled.clone());
    let down = pump(upstream_read, client_write, switches, stalled);
    tokio::select! {
        result = async { tokio::try_join!(up, down) } => { result?; }
        _ = reset.changed() => {}
        _ = stop.changed() => {}
    }
    Ok(())
}

/// Copy one direction, applying stall, latency and bandwidth. On a reset this future is dropped
/// mid-transfer and the connection closes under the client.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    switches: Arc<Switches>,
    mut stalled: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buffer).await?;
        if n == 0 {
            to.shutdown().await?;
            return Ok(());
        }
        while switches.stalled.load(Ordering::SeqCst) {
            if stalled.changed().await.is_err() {
                return Ok(());
            }
        }
        let latency = switches.latency_ms.load(Ordering::SeqCst);
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        let bandwidth = switches.bandwidth.load(Ordering::SeqCst);
        if bandwidth > 0 {
            for chunk in buffer[..n].chunks(1024) {
                tokio::time::sleep(Duration::from_secs_f64(chunk.len() as f64 / bandwidth as f64)).await;
                to.write_all(chunk).await?;
            }
        } else {
            to.write_all(&buffer[..n]).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FakeServer;
    use axum::Router;
    use axum::routing::get;
    use std::time::Instant;

    async fn upstream() -> FakeServer {
        let router = Router::new()
            .route("/ping", get(|| async { "pong" }))
            .route("/big", get(|| async { "x".repeat(20_000) }));
        FakeServer::start(router).await.expect("fake")
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client")
    }

    #[tokio::test]
    async fn forwards_and_injects_faults() {
        let server = upstream().await;
        let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
        let url = |path: &str| format!("http://{}{path}", proxy.addr());
        let client = client();

        assert_eq!(client.get(url("/ping")).send().await.expect("send").text().await.expect("body"), "pong");

        proxy.set_latency(Duration::from_millis(200));
        let started = Instant::now();
        client.get(url("/ping")).send().await.expect("send");
        assert!(started.elapsed() >= Duration::from_millis(400), "a request and its answer are both delayed");
        proxy.set_latency(Duration::ZERO);

        proxy.stall(true);
        let stalled = client.get(url("/ping")).timeout(Duration::from_millis(300)).send().await;
        assert!(stalled.is_err(), "nothing flows while stalled");
        proxy.stall(false);

        proxy.refuse(true);
        assert!(client.get(url("/ping")).send().await.is_err(), "refused");
        proxy.refuse(false);
        assert!(client.get(url("/ping")).send().await.is_ok());

        proxy.set_bandwidth(Some(40_000));
        let started = Instant::now();
        let body = client.get(url("/big")).send().await.expect("send").text().await.expect("body");
        assert_eq!(body.len(), 20_000);
        assert!(started.elapsed() >= Duration::from_millis(400), "20 kB at 40 kB/s");
        proxy.set_bandwidth(None);

        // a reset in the middle of a slow answer breaks that request
        proxy.set_latency(Duration::from_millis(300));
        let pending = tokio::spawn({
            let client = client.clone();
            let url = url("/ping");
            async move { client.get(url).send().await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.reset_all();
        assert!(pending.await.expect("join").is_err(), "reset connections fail");
        assert!(proxy.accepted() >= 6);
    }
}
