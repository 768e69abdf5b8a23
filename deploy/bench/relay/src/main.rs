//! A bare reverse proxy on the api's HTTP stack: hyper 1's HTTP/1 server in front of hyper-util's
//! pooled client, on a two-worker tokio runtime, and nothing else (no routing framework, no
//! middleware, no parsing of the bodies). `deploy/bench/bench.sh` runs it beside nginx, so the
//! table shows what the stack alone costs against what the api's pipeline costs on top of it.
//!
//! ```text
//! bench-relay LISTEN PREFIX=UPSTREAM...
//! bench-relay 127.0.0.1:18095 /rest/=127.0.0.1:19101 /api/=127.0.0.1:19103
//! ```
//!
//! A request goes to the upstream of the longest prefix its path starts with, method, headers and
//! body unchanged; an unknown path is answered 404, an unreachable upstream 502.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

type Body = BoxBody<Bytes, hyper::Error>;

/// Path prefixes and the `host:port` each is relayed to, longest prefix first.
struct Routes(Vec<(String, String)>);

impl Routes {
    fn upstream(&self, path: &str) -> Option<&str> {
        self.0.iter().find(|(prefix, _)| path.starts_with(prefix.as_str())).map(|(_, up)| up.as_str())
    }
}

fn usage(message: &str) -> ! {
    eprintln!("bench-relay: {message}\nusage: bench-relay LISTEN PREFIX=UPSTREAM...");
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = match args.next().map(|a| a.parse()) {
        Some(Ok(addr)) => addr,
        _ => usage("LISTEN must be an address such as 127.0.0.1:18095"),
    };
    let mut routes: Vec<(String, String)> = args
        .map(|a| match a.split_once('=') {
            Some((prefix, upstream)) if prefix.starts_with('/') && !upstream.is_empty() => {
                (prefix.to_owned(), upstream.to_owned())
            }
            _ => usage(&format!("not a PREFIX=UPSTREAM route: {a}")),
        })
        .collect();
    if routes.is_empty() {
        usage("no route given");
    }
    routes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
    let routes = Arc::new(Routes(routes));

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => usage(&format!("cannot start the runtime: {error}")),
    };
    if let Err(error) = runtime.block_on(serve(listen, routes)) {
        eprintln!("bench-relay: {error}");
        std::process::exit(1);
    }
}

async fn serve(listen: SocketAddr, routes: Arc<Routes>) -> std::io::Result<()> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    // As nginx's `keepalive 64` in bench.sh, with room for every load-tool connection.
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1024).build(connector);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let (client, routes) = (client.clone(), routes.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| relay(client.clone(), routes.clone(), request));
            // A client that goes away mid-request ends its connection; nothing to report.
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn relay(
    client: Client<HttpConnector, Incoming>,
    routes: Arc<Routes>,
    mut request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let Some(upstream) = routes.upstream(request.uri().path()) else {
        return Ok(status(StatusCode::NOT_FOUND));
    };
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("http://{upstream}{path}").parse::<Uri>() else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    *request.uri_mut() = uri;
    Ok(match client.request(request).await {
        Ok(response) => response.map(BodyExt::boxed),
        Err(_) => status(StatusCode::BAD_GATEWAY),
    })
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *response.status_mut() = code;
    response
}
