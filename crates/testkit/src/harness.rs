//! A tiny harness that serves an axum app on 127.0.0.1 with switchable faults and a record of every
//! request, so tests can assert how many calls reached the upstream and when.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use http::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The HTTP method.
    pub method: String,
    /// The path (without the query).
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// When it arrived.
    pub at: Instant,
    /// When it arrived, by the wall clock (to compare with epoch times such as GitHub's
    /// `x-ratelimit-reset`).
    pub wall: SystemTime,
}

/// What a fault does to a request it matches.
#[derive(Debug, Clone)]
enum FaultAction {
    Respond { status: u16, headers: Vec<(String, String)>, body: String },
    Delay(Duration),
    DropConnection,
    Truncate { status: u16, headers: Vec<(String, String)>, body: String, keep: usize },
}

/// A fault applied to the next matching requests.
#[derive(Debug, Clone)]
pub struct Fault {
    action: FaultAction,
    times: u32,
    path_prefix: Option<String>,
}

impl Fault {
    /// Answer with `status` (and a small JSON body) instead of the fake's answer.
    pub fn status(status: u16) -> Self {
        Self {
            action: FaultAction::Respond {
                status,
                headers: vec![("content-type".into(), "application/json".into())],
                body: format!(r#"{{"message":"injected fault {status}"}}"#),
            },
            times: 1,
            path_prefix: None,
        }
    }

    /// Delay the request by `delay`, then let the fake answer.
    pub fn delay(delay: Duration) -> Self {
        Self { action: FaultAction::Delay(delay), times: 1, path_prefix: None }
    }

    /// Close the connection without answering.
    pub fn drop_connection() -> Self {
        Self { action: FaultAction::DropConnection, times: 1, path_prefix: None }
    }

    /// Answer `status` with `body` under a `content-length` of the whole body, but send only its
    /// first `keep` bytes and then break the connection: a body cut off on the wire, as a proxy or
    /// an upstream crashing mid-answer leaves it. (A body that is complete on the wire but not valid
    /// JSON is a `status` fault with [`Fault::body`].)
    pub fn truncated(status: u16, body: &str, keep: usize) -> Self {
        Self {
            action: FaultAction::Truncate {
                status,
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.to_owned(),
                keep,
            },
            times: 1,
            path_prefix: None,
        }
    }

    /// Add a response header (for `status` and `truncated` faults).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let FaultAction::Respond { headers, .. } | FaultAction::Truncate { headers, .. } = &mut self.action
        {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Replace the `content-type` of the answer (`application/json` by default), e.g. `text/html`
    /// for the error page of a proxy (for `status` and `truncated` faults).
    pub fn content_type(mut self, value: &str) -> Self {
        if let FaultAction::Respond { headers, .. } | FaultAction::Truncate { headers, .. } = &mut self.action
        {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
            headers.push(("content-type".to_owned(), value.to_owned()));
        }
        self
    }

    /// Replace the response body (for `status` and `truncated` faults).
    pub fn body(mut self, text: &str) -> Self {
        if let FaultAction::Respond { body, .. } | FaultAction::Truncate { body, .. } = &mut self.action {
            *body = text.to_owned();
        }
        self
    }

    /// Apply to the next `n` matching requests (default 1).
    pub fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }

    /// Match only requests whose path starts with `prefix`.
    pub fn on_path(mut self, prefix: &str) -> Self {
        self.path_prefix = Some(prefix.to_owned());
        self
    }
}

/// The switchable faults of a server. Faults apply in the order they were pushed.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    queue: Arc<Mutex<VecDeque<Fault>>>,
}

impl Faults {
    /// Add a fault.
    pub fn push(&self, fault: Fault) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).push_back(fault);
    }

    /// Remove all pending faults.
    pub fn clear(&self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Pending faults.
    pub fn pending(&self) -> usize {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn take(&self, path: &str) -> Option<FaultAction> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let index = queue
            .iter()
            .position(|f| f.path_prefix.as_deref().is_none_or(|prefix| path.starts_with(prefix)))?;
        let fault = queue.get_mut(index)?;
        let action = fault.action.clone();
        fault.times = fault.times.saturating_sub(1);
        if fault.times == 0 {
            queue.remove(index);
        }
        Some(action)
    }
}

/// A running fake server. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeServer {
    addr: SocketAddr,
    base_url: String,
    faults: Faults,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    shutdown: watch::Sender<bool>,
}

impl FakeServer {
    /// Serve `router` on 127.0.0.1 with a free port.
    pub async fn start(router: Router) -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), router).await
    }

    /// Serve `router` on `addr`.
    pub async fn start_on(addr: SocketAddr, router: Router) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let faults = Faults::default();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (shutdown, mut stop) = watch::channel(false);
        let state = ServeState { router, faults: faults.clone(), requests: requests.clone() };
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    _ = stop.changed() => break,
                };
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| state.clone().handle(req));
                    let builder = auto::Builder::new(TokioExecutor::new());
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.changed() => {}
                    }
                });
            }
        });
        Ok(Self { addr, base_url: format!("http://{addr}"), faults, requests, shutdown })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The fault switches.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many requests had a path starting with `prefix`.
    pub fn calls_to(&self, prefix: &str) -> usize {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    }

    /// All requests received.
    pub fn calls(&self) -> usize {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Forget the recorded requests.
    pub fn reset_requests(&self) {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Stop serving (also done on drop).
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Clone)]
struct ServeState {
    router: Router,
    faults: Faults,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
}

/// Returned by the service to make hyper close the connection without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

impl ServeState {
    async fn handle(self, req: Request<hyper::body::Incoming>) -> Result<Response<Body>, Dropped> {
        let path = req.uri().path().to_owned();
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).push(RecordedRequest {
            method: req.method().to_string(),
            path: path.clone(),
            query: req.uri().query().map(str::to_owned),
            at: Instant::now(),
            wall: SystemTime::now(),
        });
        match self.faults.take(&path) {
            Some(FaultAction::Respond { status, headers, body }) => {
                return Ok(respond(status, headers, Body::from(body)));
            }
            Some(FaultAction::Truncate { status, mut headers, body, keep }) => {
                let bytes = bytes::Bytes::from(body);
                headers.push(("content-length".to_owned(), bytes.len().to_string()));
                let sent = bytes.slice(..keep.min(bytes.len()));
                // The first part is sent; the stream then pauses (so hyper flushes the head and that
                // part) and fails: hyper closes the connection, short of the announced length.
                let broken = futures::stream::once(async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Err::<bytes::Bytes, _>(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "truncated by fault injection",
                    ))
                });
                let stream = futures::StreamExt::chain(futures::stream::iter([Ok(sent)]), broken);
                return Ok(respond(status, headers, Body::from_stream(stream)));
            }
            Some(FaultAction::Delay(delay)) => tokio::time::sleep(delay).await,
            Some(FaultAction::DropConnection) => return Err(Dropped),
            None => {}
        }
        let response: Result<Response<Body>, Infallible> = self.router.oneshot(req.map(Body::new)).await;
        match response {
            Ok(r) => Ok(r),
            Err(never) => match never {},
        }
    }
}

/// An answer with `status` and `headers` (invalid ones are skipped).
fn respond(status: u16, headers: Vec<(String, String)>, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (http::HeaderName::try_from(name), http::HeaderValue::try_from(value))
        {
            response.headers_mut().append(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    #[tokio::test]
    async fn serves_records_and_injects_faults() {
        let server = FakeServer::start(Router::new().route("/ping", get(|| async { "pong" })))
            .await
            .expect("server starts");
        let client = reqwest::Client::new();
        let url = format!("{}/ping", server.base_url());

        let body = client.get(&url).send().await.expect("send").text().await.expect("body");
        assert_eq!(body, "pong");

        server.faults().push(Fault::status(429).header("retry-after", "3").times(2).on_path("/ping"));
        for _ in 0..2 {
            let resp = client.get(&url).send().await.expect("send");
            assert_eq!(resp.status(), 429);
            assert_eq!(resp.headers()["retry-after"], "3");
        }
        assert_eq!(client.get(&url).send().await.expect("send").status(), 200);

        server.faults().push(Fault::status(500).on_path("/other"));
        assert_eq!(client.get(&url).send().await.expect("send").status(), 200, "path filter respected");
        server.faults().clear();

        server.faults().push(Fault::drop_connection());
        assert!(client.get(&url).send().await.is_err(), "dropped connection is an error");
        assert_eq!(client.get(&url).send().await.expect("send").status(), 200);

        server.faults().push(Fault::delay(Duration::from_millis(150)));
        let started = Instant::now();
        client.get(&url).send().await.expect("send");
        assert!(started.elapsed() >= Duration::from_millis(150));

        assert_eq!(server.calls_to("/ping"), 8);
        assert_eq!(server.requests()[0].method, "GET");
        assert!(server.requests()[0].wall <= SystemTime::now());
    }

    #[tokio::test]
    async fn serves_bodies_that_are_not_json_or_cut_off() {
        let server = FakeServer::start(Router::new().route("/ping", get(|| async { "pong" })))
            .await
            .expect("server starts");
        let client = reqwest::Client::new();
        let url = format!("{}/ping", server.base_url());

        server.faults().push(Fault::status(200).content_type("text/html").body("<html>login</html>"));
        let resp = client.get(&url).send().await.expect("send");
        assert_eq!(resp.status(), 200);
        let types: Vec<_> = resp.headers().get_all("content-type").iter().collect();
        assert_eq!(types, vec!["text/html"], "the default content type is replaced, not doubled");
        assert_eq!(resp.text().await.expect("body"), "<html>login</html>");

        let whole = r#"{"id":"10000","key":"ENG","name":"Engineering"}"#;
        server.faults().push(Fault::truncated(200, whole, 12).header("x-extra", "1"));
        let resp = client.get(&url).send().await.expect("the head arrives whole");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-length"], whole.len().to_string().as_str());
        assert_eq!(resp.headers()["x-extra"], "1");
        let error = resp.bytes().await.expect_err("the body is cut off");
        assert!(error.is_body() || error.is_decode(), "{error:?}");

        // the next request is served normally on a new connection
        assert_eq!(client.get(&url).send().await.expect("send").text().await.expect("body"), "pong");
        assert_eq!(server.calls_to("/ping"), 3);
    }
}
