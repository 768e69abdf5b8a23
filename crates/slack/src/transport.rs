//! The HTTP transport under slack-morphism's client: its [`SlackClientHttpConnector`] on a hyper
//! client of our own.
//!
//! Why not slack-morphism's `SlackClientHyperConnector`: it offers no way to add a header to a
//! request, so Slack calls could not carry the tool call's W3C `traceparent` as Jira and GitHub
//! calls do; and it does work per call that a tool call does not need (the request URI formatted
//! into a string for a debug line, the response headers cloned, the content type parsed as a MIME
//! type, the body copied into a `String` before it is parsed, the `Bearer` header formatted anew).
//! This transport keeps its contract, answer for answer:
//!
//! | Slack answers | the transport returns |
//! |---|---|
//! | 200, JSON with `error` | [`SlackClientError::ApiError`] (code, `errors`, `warnings`, the body) |
//! | 200, JSON otherwise | the body parsed as `RS` ([`SlackClientError::ProtocolError`] if it is not one, or has no `ok`) |
//! | 200 or 204, not JSON | `RS` parsed from `{}` |
//! | 429 | [`SlackClientError::RateLimitError`] with `Retry-After` and the body's `error` |
//! | any other status | [`SlackClientError::HttpError`] with the status and body |
//! | no answer | [`SlackClientError::HttpProtocolError`] caused by hyper's error |
//! | a body cut off | [`SlackClientError::SystemError`] caused by an I/O error |
//!
//! slack-morphism's own rate control is not offered: the client paces calls itself
//! ([`crate::pacing`]) and the core executor retries.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use integration_core::IntegrationError;
use integration_core::reexports::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, RETRY_AFTER};
use integration_core::reexports::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use slack_morphism::errors::{
    SlackClientApiError, SlackClientError, SlackClientHttpError, SlackClientHttpProtocolError,
    SlackClientSystemError, SlackRateLimitError, map_serde_error,
};
use slack_morphism::multipart_form::FileMultipartData;
use slack_morphism::{
    ClientResult, SlackApiToken, SlackClientApiCallContext, SlackClientHttpConnector, SlackClientId,
    SlackClientSecret,
};
use url::Url;

use crate::PROVIDER;

/// A boxed, sendable future: what the connector trait's methods return.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The hyper client under [`SlackTransport`]: rustls (aws-lc-rs, platform verifier), HTTP/1.1 and
/// HTTP/2, `http` allowed for a loopback fake or a proxy.
type HyperClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// slack-morphism's connector on our hyper client: requests carry the current span's trace context.
/// Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct SlackTransport {
    client: HyperClient,
    api_url: Arc<str>,
    /// `Authorization: Bearer …` of the token this transport was made for, built once; a call with
    /// another token builds its own.
    bearer: Option<Arc<(String, HeaderValue)>>,
}

impl std::fmt::Debug for SlackTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackTransport").field("api_url", &self.api_url).finish_non_exhaustive()
    }
}

impl SlackTransport {
    /// A transport for the Web API at `api_url` (no trailing slash; methods are `{api_url}/{method}`).
    pub fn new(api_url: &str) -> Result<Self, IntegrationError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_platform_verifier(provider)
            .map_err(|e| IntegrationError::configuration(PROVIDER, format!("cannot set up TLS: {e}")))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
            api_url: api_url.into(),
            bearer: None,
        })
    }

    /// The same transport, with the `Authorization` header of `token` built once for every call
    /// made with it. A token no header can carry (a control character) is refused as a connection
    /// would be ([`integration_core::check_header_secret`]), without showing the token.
    pub fn for_token(mut self, token: &str) -> Result<Self, IntegrationError> {
        integration_core::check_header_secret(PROVIDER, "bot_token", token)?;
        // Checked above, so the header builds; were it not to, each call would build its own.
        self.bearer = bearer(token).map(|header| Arc::new((token.to_owned(), header)));
        Ok(self)
    }

    /// The request of one call: `Authorization` (marked sensitive), the cookie of a browser
    /// token, the content type of a body, and the current span's `traceparent`.
    fn request(
        &self,
        method: Method,
        url: &Url,
        token: Option<&SlackApiToken>,
        content_type: Option<HeaderValue>,
        body: Bytes,
    ) -> ClientResult<Request<Full<Bytes>>> {
        let uri: Uri = url.as_str().parse().map_err(|e| protocol_error(Box::new(e)))?;
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        if let Some(token) = token {
            let value = &token.token_value.0;
            let header = match &self.bearer {
                Some(known) if known.0 == *value => known.1.clone(),
                _ => bearer(value).ok_or_else(|| {
                    SlackClientError::SystemError(
                        SlackClientSystemError::new()
                            .with_message("the token holds characters an HTTP header cannot carry".into()),
                    )
                })?,
            };
            headers.insert(AUTHORIZATION, header);
            if let Some(cookie) = &token.cookie {
                let mut cookie =
                    HeaderValue::try_from(cookie.0.as_str()).map_err(|e| protocol_error(Box::new(e)))?;
                cookie.set_sensitive(true);
                headers.insert(COOKIE, cookie);
            }
        }
        if let Some(content_type) = content_type {
            headers.insert(CONTENT_TYPE, content_type);
        }
        integration_core::propagation::inject(headers);
        Ok(request)
    }

    /// Send `request` and read Slack's answer (see the module's table).
    async fn send<RS: DeserializeOwned>(&self, request: Request<Full<Bytes>>) -> ClientResult<RS> {
        let response = self.client.request(request).await.map_err(|e| protocol_error(Box::new(e)))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| {
                SlackClientError::SystemError(
                    SlackClientSystemError::new().with_cause(Box::new(std::io::Error::other(e))),
                )
            })?
            .to_bytes();
        read_answer(parts.status, &parts.headers, &body)
    }

    fn url(&self, method: &str) -> ClientResult<Url> {
        Ok(format!("{}/{method}", self.api_url).parse()?)
    }
}

/// `Bearer {token}` as a sensitive header value, if a header can carry it.
fn bearer(token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::try_from(format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

fn protocol_error(cause: Box<dyn std::error::Error + Send + Sync>) -> SlackClientError {
    SlackClientError::HttpProtocolError(SlackClientHttpProtocolError::new().with_cause(cause))
}

/// The members of every Web API answer that say whether it is a refusal. `ok` is required, as in
/// slack-morphism's envelope: a JSON answer without it is not a Web API answer.
#[derive(Deserialize)]
struct Envelope {
    #[allow(dead_code)] // required for the answer to parse; its value is the caller's to check
    ok: bool,
    error: Option<String>,
}

/// What a refusal may say beyond its code; read only for refusals, and leniently.
#[derive(Deserialize, Default)]
struct RefusalDetails {
    errors: Option<Vec<serde_json::Value>>,
    warnings: Option<Vec<String>>,
}

impl RefusalDetails {
    fn of(body: &[u8]) -> Self {
        integration_core::json::from_slice(body).unwrap_or_default()
    }

    /// `errors` flattened as slack-morphism does: strings verbatim, anything else as JSON text.
    fn errors(&self) -> Option<Vec<String>> {
        self.errors.as_ref().map(|errors| {
            errors.iter().map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned)).collect()
        })
    }
}

/// Whether a `Content-Type` says JSON. A missing or unreadable one counts as JSON, as in
/// slack-morphism (only a readable, different type makes a 200 "not JSON").
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    match essence.split_once('/') {
        Some((kind, sub)) if !kind.trim().is_empty() && !sub.trim().is_empty() => {
            kind.trim().eq_ignore_ascii_case("application") && sub.trim().eq_ignore_ascii_case("json")
        }
        _ => true,
    }
}

/// Slack's answer to one call as the connector trait reports it (the module's table).
fn read_answer<RS: DeserializeOwned>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ClientResult<RS> {
    let text = || String::from_utf8_lossy(body).into_owned();
    let json = is_json(headers);
    match status {
        StatusCode::OK if json => {
            let envelope: Envelope =
                integration_core::json::from_slice(body).map_err(|e| map_serde_error(e, Some(&text())))?;
            match envelope.error {
                None => {
                    integration_core::json::from_slice(body).map_err(|e| map_serde_error(e, Some(&text())))
                }
                Some(code) => {
                    let details = RefusalDetails::of(body);
                    Err(SlackClientError::ApiError(
                        SlackClientApiError::new(code)
                            .opt_errors(details.errors())
                            .opt_warnings(details.warnings)
                            .with_http_response_body(text()),
                    ))
                }
            }
        }
        StatusCode::OK | StatusCode::NO_CONTENT => {
            serde_json::from_str("{}").map_err(|e| map_serde_error(e, Some("{}")))
        }
        StatusCode::TOO_MANY_REQUESTS => {
            let retry_after = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse().ok())
                .map(Duration::from_secs);
            let (code, warnings) = if json {
                let envelope = integration_core::json::from_slice::<Envelope>(body).ok();
                (envelope.and_then(|e| e.error), RefusalDetails::of(body).warnings)
            } else {
                (None, None)
            };
            Err(SlackClientError::RateLimitError(
                SlackRateLimitError::new()
                    .opt_retry_after(retry_after)
                    .opt_code(code)
                    .opt_warnings(warnings)
                    .with_http_response_body(text()),
            ))
        }
        _ => Err(SlackClientError::HttpError(
            SlackClientHttpError::new(status).with_http_response_body(text()),
        )),
    }
}

/// A boundary no part of a form is likely to hold (RFC 7578; 70 characters at most).
fn multipart_boundary() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("----integrations-slack-{nanos:x}")
}

/// A `multipart/form-data` body (RFC 7578): the file, if any, as the part `file`, then every field
/// that has a value. Quotes and line breaks in names are escaped as browsers do.
fn multipart_body<'p, PT, TS>(boundary: &str, file: Option<FileMultipartData<'p>>, fields: PT) -> Bytes
where
    PT: IntoIterator<Item = (&'p str, Option<TS>)>,
    TS: AsRef<str>,
{
    fn quoted(name: &str) -> String {
        name.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
    }
    let mut body = Vec::with_capacity(file.as_ref().map_or(0, |f| f.data.len()) + 512);
    if let Some(file) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\
                 Content-Type: {}\r\n\r\n",
                quoted(&file.name),
                file.content_type.replace(['\r', '\n'], "")
            )
            .as_bytes(),
        );
        body.extend_from_slice(file.data);
        body.extend_from_slice(b"\r\n");
    }
    for (name, value) in fields {
        if let Some(value) = value {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n", quoted(name))
                    .as_bytes(),
            );
            body.extend_from_slice(value.as_ref().as_bytes());
            body.extend_from_slice(b"\r\n");
        }
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body.into()
}

fn json_content_type() -> HeaderValue {
    HeaderValue::from_static("application/json; charset=utf-8")
}

impl SlackClientHttpConnector for SlackTransport {
    fn create_method_uri_path(&self, method_relative_uri: &str) -> ClientResult<Url> {
        self.url(method_relative_uri)
    }

    fn http_get_uri<'a, RS>(
        &'a self,
        full_uri: Url,
        context: SlackClientApiCallContext<'a>,
    ) -> BoxFuture<'a, ClientResult<RS>>
    where
        RS: for<'de> serde::de::Deserialize<'de> + Send + 'a,
    {
        let request = self.request(Method::GET, &full_uri, context.token, None, Bytes::new());
        Box::pin(async move { self.send(request?).await })
    }

    fn http_get_with_client_secret<'a, RS>(
        &'a self,
        full_uri: Url,
        client_id: &'a SlackClientId,
        client_secret: &'a SlackClientSecret,
    ) -> BoxFuture<'a, ClientResult<RS>>
    where
        RS: for<'de> serde::de::Deserialize<'de> + Send + 'a,
    {
        use base64::Engine as _;
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", client_id.0, client_secret.0));
        let request =
            self.request(Method::GET, &full_uri, None, None, Bytes::new()).and_then(|mut request| {
                let mut value = HeaderValue::try_from(format!("Basic {credentials}"))
                    .map_err(|e| protocol_error(Box::new(e)))?;
                value.set_sensitive(true);
                request.headers_mut().insert(AUTHORIZATION, value);
                Ok(request)
            });
        Box::pin(async move { self.send(request?).await })
    }

    fn http_post_uri<'a, RQ, RS>(
        &'a self,
        full_uri: Url,
        request_body: &'a RQ,
        context: SlackClientApiCallContext<'a>,
    ) -> BoxFuture<'a, ClientResult<RS>>
    where
        RQ: serde::ser::Serialize + Send + Sync,
        RS: for<'de> serde::de::Deserialize<'de> + Send + 'a,
    {
        let request =
            serde_json::to_vec(request_body).map_err(|e| map_serde_error(e, None)).and_then(|body| {
                self.request(Method::POST, &full_uri, context.token, Some(json_content_type()), body.into())
            });
        Box::pin(async move { self.send(request?).await })
    }

    fn http_post_uri_multipart_form<'a, 'p, RS, PT, TS>(
        &'a self,
        full_uri: Url,
        file: Option<FileMultipartData<'p>>,
        params: &'p PT,
        context: SlackClientApiCallContext<'a>,
    ) -> BoxFuture<'a, ClientResult<RS>>
    where
        RS: for<'de> serde::de::Deserialize<'de> + Send + 'a,
        PT: std::iter::IntoIterator<Item = (&'p str, Option<TS>)> + Clone,
        TS: AsRef<str> + 'p + Send,
    {
        let boundary = multipart_boundary();
        let body = multipart_body(&boundary, file, params.clone());
        let request = HeaderValue::try_from(format!("multipart/form-data; boundary={boundary}"))
            .map_err(|e| protocol_error(Box::new(e)))
            .and_then(|content_type| {
                self.request(Method::POST, &full_uri, context.token, Some(content_type), body)
            });
        Box::pin(async move { self.send(request?).await })
    }

    fn http_post_uri_binary<'a, 'p, RS>(
        &'a self,
        full_uri: Url,
        content_type: String,
        data: &'a [u8],
        context: SlackClientApiCallContext<'a>,
    ) -> BoxFuture<'a, ClientResult<RS>>
    where
        RS: for<'de> serde::de::Deserialize<'de> + Send + 'a,
    {
        let request = HeaderValue::try_from(content_type).map_err(|e| protocol_error(Box::new(e))).and_then(
            |content_type| {
                let body = Bytes::copy_from_slice(data);
                self.request(Method::POST, &full_uri, context.token, Some(content_type), body)
            },
        );
        Box::pin(async move { self.send(request?).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn headers(content_type: Option<&str>, retry_after: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(t) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_str(t).expect("header"));
        }
        if let Some(r) = retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from_str(r).expect("header"));
        }
        headers
    }

    fn read(status: u16, content_type: Option<&str>, body: &str) -> ClientResult<Value> {
        read_answer(
            StatusCode::from_u16(status).expect("status"),
            &headers(content_type, None),
            body.as_bytes(),
        )
    }

    #[test]
    fn json_answers_are_parsed_once_checked() {
        let ok = read(200, Some("application/json; charset=utf-8"), r#"{"ok":true,"ts":"1.2"}"#).expect("ok");
        assert_eq!(ok, json!({"ok": true, "ts": "1.2"}));
        // no content type, or one that does not parse, counts as JSON (slack-morphism did the same)
        assert!(read(200, None, r#"{"ok":true}"#).is_ok());
        assert!(read(200, Some("application/json ; charset=utf-8"), r#"{"ok":true}"#).is_ok());
        assert!(read(200, Some("nonsense"), r#"{"ok":true}"#).is_ok());
        // `ok: false` without a code is the caller's to refuse
        assert_eq!(read(200, None, r#"{"ok":false}"#).expect("parsed"), json!({"ok": false}));
    }

    #[test]
    fn a_json_answer_without_ok_is_a_protocol_error() {
        for body in [r#"{"user":{}}"#, r#"{"ok":"true"}"#, "[]", "{", "\u{feff}garbage"] {
            match read(200, Some("application/json"), body) {
                Err(SlackClientError::ProtocolError(_)) => {}
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn refusals_carry_code_errors_warnings_and_body() {
        let body = r#"{"ok":false,"error":"invalid_blocks","errors":["a",{"b":1}],"warnings":["w"]}"#;
        match read(200, Some("application/json"), body) {
            Err(SlackClientError::ApiError(e)) => {
                assert_eq!(e.code, "invalid_blocks");
                assert_eq!(e.errors, Some(vec!["a".to_owned(), r#"{"b":1}"#.to_owned()]));
                assert_eq!(e.warnings, Some(vec!["w".to_owned()]));
                assert_eq!(e.http_response_body.as_deref(), Some(body));
            }
            other => panic!("{other:?}"),
        }
        // details of an unexpected shape do not hide the code
        match read(200, None, r#"{"ok":false,"error":"missing_scope","warnings":"one"}"#) {
            Err(SlackClientError::ApiError(e)) => {
                assert_eq!(e.code, "missing_scope");
                assert_eq!(e.warnings, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_200_or_204_that_is_not_json_is_an_empty_object() {
        assert_eq!(read(200, Some("text/html"), "<html>portal</html>").expect("empty"), json!({}));
        assert_eq!(read(204, None, "").expect("empty"), json!({}));
        assert_eq!(read(204, Some("application/json"), "").expect("empty"), json!({}));
    }

    #[test]
    fn rate_limits_keep_the_wait_and_code() {
        let answer: ClientResult<Value> = read_answer(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(Some("application/json"), Some("7")),
            br#"{"ok":false,"error":"ratelimited"}"#,
        );
        match answer {
            Err(SlackClientError::RateLimitError(e)) => {
                assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
                assert_eq!(e.code.as_deref(), Some("ratelimited"));
            }
            other => panic!("{other:?}"),
        }
        // a 429 whose body is not JSON is still a rate limit
        let answer: ClientResult<Value> = read_answer(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(Some("text/plain"), Some("soon")),
            b"slow down",
        );
        match answer {
            Err(SlackClientError::RateLimitError(e)) => {
                assert_eq!(e.retry_after, None);
                assert_eq!(e.code, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_statuses_are_http_errors() {
        match read(503, Some("text/plain"), "down") {
            Err(SlackClientError::HttpError(e)) => {
                assert_eq!(e.status_code, StatusCode::SERVICE_UNAVAILABLE);
                assert_eq!(e.http_response_body.as_deref(), Some("down"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn multipart_bodies_hold_the_file_and_the_fields_with_values() {
        let file =
            FileMultipartData { name: "a\"b.txt".into(), content_type: "text/plain".into(), data: b"hello" };
        let fields = [("channels", Some("C1")), ("title", None), ("initial_comment", Some("hi"))];
        let body = multipart_body("XYZ", Some(file), fields);
        let expected = "--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a%22b.txt\"\r\n\
                        Content-Type: text/plain\r\n\r\nhello\r\n\
                        --XYZ\r\nContent-Disposition: form-data; name=\"channels\"\r\n\r\nC1\r\n\
                        --XYZ\r\nContent-Disposition: form-data; name=\"initial_comment\"\r\n\r\nhi\r\n\
                        --XYZ--\r\n";
        assert_eq!(String::from_utf8_lossy(&body), expected);
        assert!(multipart_boundary().len() <= 70);
    }

    #[test]
    fn the_authorization_header_is_sensitive_and_a_bad_token_is_refused_unshown() {
        let transport = SlackTransport::new("http://127.0.0.1:9/api").expect("transport");
        let err = transport.clone().for_token("xoxb-\nsecret").expect_err("newline");
        assert!(!err.to_string().contains("secret"), "{err}");
        let transport = transport.for_token("xoxb-1").expect("token");
        let url = transport.url("auth.test").expect("url");
        let token = SlackApiToken::new("xoxb-1".into());
        let request =
            transport.request(Method::GET, &url, Some(&token), None, Bytes::new()).expect("request");
        let auth = request.headers().get(AUTHORIZATION).expect("authorization");
        assert_eq!(auth, "Bearer xoxb-1");
        assert!(auth.is_sensitive());
        // another token than the transport's own is sent as its own
        let other = SlackApiToken::new("xoxb-2".into());
        let request =
            transport.request(Method::GET, &url, Some(&other), None, Bytes::new()).expect("request");
        assert_eq!(request.headers().get(AUTHORIZATION).expect("authorization"), "Bearer xoxb-2");
        assert_eq!(request.uri(), "http://127.0.0.1:9/api/auth.test");
    }
}
