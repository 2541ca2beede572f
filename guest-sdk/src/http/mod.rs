//! A small blocking HTTP client for steps, over the standard `wasi:http` interface.
//!
//! ```ignore
//! #[step(max_attempts = 4, interval_ms = 200)]
//! fn charge(order: Order) -> Result<String, String> {
//!     let key = reprise_guest::secret("PAYMENT_KEY")?;
//!     let response = http::Request::post("https://api.payments.example/charges")
//!         .header("authorization", format!("Bearer {key}"))
//!         .json(&order)?
//!         .timeout(Duration::from_secs(5))
//!         .send()?;
//!     if !response.is_success() {
//!         return Err(format!("payment API answered {}", response.status)); // retried
//!     }
//!     Ok(response.json::<Charge>()?.id)
//! }
//! ```
//!
//! A request goes out only from a step and only to a host the instance is granted
//! (`allow_http`); otherwise `send` fails with the host's reason. Any other `wasi:http`
//! client crate works in steps too. Under `cargo test` requests go to the stubs of
//! [`crate::testing::Harness`].

#[cfg(not(target_family = "wasm"))]
pub(crate) mod native;
#[cfg(target_family = "wasm")]
mod wasi;

use std::fmt;
use std::time::Duration;

use reprise_protocol::redact::redacted_url;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::runtime::in_step;

/// An HTTP method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// PATCH
    Patch,
    /// OPTIONS
    Options,
    /// Any other method, by name.
    Other(String),
}

impl Method {
    /// The method's name, as sent.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Options => "OPTIONS",
            Method::Other(name) => name,
        }
    }
}

/// A request being built; [`Request::send`] sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// `http://` or `https://` URL, with any query string.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body; empty for none.
    pub body: Vec<u8>,
    /// Connect, first-byte and between-bytes timeout; the instance's `http_timeout` if none.
    pub timeout: Option<Duration>,
    /// The header that carries the step's [`crate::idempotency_key`] (`Idempotency-Key`
    /// unless renamed); `None` sends none. A header of that name set by hand wins.
    pub idempotency_header: Option<String>,
}

impl Request {
    /// A request of `method` to `url`.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
            idempotency_header: Some(IDEMPOTENCY_HEADER.to_string()),
        }
    }

    /// A GET of `url`.
    pub fn get(url: impl Into<String>) -> Self {
        Request::new(Method::Get, url)
    }

    /// A POST to `url`.
    pub fn post(url: impl Into<String>) -> Self {
        Request::new(Method::Post, url)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the body to `value` as JSON, and `content-type: application/json`.
    pub fn json(self, value: &impl Serialize) -> Result<Self, HttpError> {
        let body = serde_json::to_vec(value).map_err(|e| HttpError::Body(e.to_string()))?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// Sets the timeout of each phase: connecting, the first byte, and between bytes.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the step's idempotency key in header `name` instead of `Idempotency-Key` (some
    /// services call it `X-Request-Id` or `Idempotency-Token`).
    pub fn idempotency_header(mut self, name: impl Into<String>) -> Self {
        self.idempotency_header = Some(name.into());
        self
    }

    /// Sends no idempotency key: for a service that rejects unknown headers.
    pub fn without_idempotency_key(mut self) -> Self {
        self.idempotency_header = None;
        self
    }

    /// Sends the request and reads the whole response. Only inside a step. Unless told
    /// otherwise it carries the step's idempotency key, the same on every retry and every
    /// recovery of the step: a service that honours it makes the effect once.
    pub fn send(mut self) -> Result<Response, HttpError> {
        if !in_step() {
            return Err(HttpError::NotInStep);
        }
        if let Some(name) = self.idempotency_header.clone()
            && self.header_value(&name).is_none()
            && let Some(key) = crate::idempotency_key()
        {
            self.headers.push((name, key));
        }
        transport(&self)
    }

    /// The request's header named `name` (case-insensitive), if any.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// The header a request carries its step's idempotency key in, by default.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// A GET of `url`.
pub fn get(url: impl Into<String>) -> Result<Response, HttpError> {
    Request::get(url).send()
}

/// A POST of `value` as JSON to `url`.
pub fn post_json(url: impl Into<String>, value: &impl Serialize) -> Result<Response, HttpError> {
    Request::post(url).json(value)?.send()
}

/// A whole response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response of `status` with `body`, e.g. for a test's stub.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A response of `status` with `value` as its JSON body.
    pub fn json_body(status: u16, value: &impl Serialize) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_default();
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        }
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The header named `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<String, HttpError> {
        String::from_utf8(self.body.clone())
            .map_err(|e| HttpError::Body(format!("the body is not UTF-8: {e}")))
    }

    /// The body decoded from JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            HttpError::Body(format!(
                "the body is not the JSON of {}: {e}",
                std::any::type_name::<T>()
            ))
        })
    }
}

fn find_header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Why a request produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Called from workflow code, which is replayed: HTTP belongs in a step.
    NotInStep,
    /// The URL is not `http(s)://host[:port][/path][?query]`.
    InvalidUrl {
        /// The URL, its user info, query and fragment shown as `…`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request failed: refused by the host (with its reason: a host not granted, say),
    /// or a connection, TLS, DNS or protocol error, or a timeout.
    Failed {
        /// The request's method and URL, its query and fragment shown as `…`: an API key in
        /// a query must not reach the step's stored error, the API or spans.
        request: String,
        /// Why.
        message: String,
    },
    /// A body could not be encoded or decoded.
    Body(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::NotInStep => f.write_str(crate::runtime::IO_OUTSIDE_STEP),
            HttpError::InvalidUrl { url, reason } => write!(f, "invalid URL {url:?}: {reason}"),
            HttpError::Failed { request, message } => write!(f, "{request} failed: {message}"),
            HttpError::Body(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for HttpError {}

/// Lets `?` work in steps returning `Result<_, String>`.
impl From<HttpError> for String {
    fn from(e: HttpError) -> String {
        e.to_string()
    }
}

/// A URL's parts, as `wasi:http` takes them.
#[derive(Debug, PartialEq, Eq)]
struct Url<'u> {
    https: bool,
    authority: &'u str,
    path_with_query: String,
}

fn parse_url(url: &str) -> Result<Url<'_>, HttpError> {
    let invalid = |reason: &str| HttpError::InvalidUrl {
        url: redacted_url(url),
        reason: reason.to_string(),
    };
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(invalid("only http:// and https:// URLs"));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.is_empty() || authority.contains('@') {
        return Err(invalid("no host (or user info, which is not supported)"));
    }
    let rest = &rest[end..];
    let rest = rest.split('#').next().unwrap_or_default();
    let path_with_query = match rest.chars().next() {
        None => "/".to_string(),
        Some('?') => format!("/{rest}"),
        Some(_) => rest.to_string(),
    };
    Ok(Url {
        https,
        authority,
        path_with_query,
    })
}

#[cfg(target_family = "wasm")]
fn transport(request: &Request) -> Result<Response, HttpError> {
    wasi::send(request)
}

#[cfg(not(target_family = "wasm"))]
fn transport(request: &Request) -> Result<Response, HttpError> {
    native::send(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_what_wasi_http_takes() {
        let url = parse_url("https://api.example.com:8443/v1/charges?x=1#frag").unwrap();
        assert_eq!(
            url,
            Url {
                https: true,
                authority: "api.example.com:8443",
                path_with_query: "/v1/charges?x=1".into()
            }
        );
        assert_eq!(parse_url("http://h").unwrap().path_with_query, "/");
        assert_eq!(parse_url("http://h?q=1").unwrap().path_with_query, "/?q=1");
        for bad in ["ftp://h/", "h/path", "http:///x", "http://u:p@h/"] {
            assert!(
                matches!(parse_url(bad), Err(HttpError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn headers_are_found_whatever_their_case() {
        let r = Response {
            headers: vec![("Content-Type".into(), "text/plain".into())],
            ..Response::default()
        };
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("x"), None);
    }

    #[test]
    fn sending_from_workflow_code_is_refused_without_any_io() {
        let err = get("http://127.0.0.1:1/").unwrap_err();
        assert_eq!(err, HttpError::NotInStep);
        assert_eq!(err.to_string(), crate::runtime::IO_OUTSIDE_STEP);
    }
}
