//! Who may talk to the server, and how: the bearer token, the `Host` a request names (so a page
//! that rebinds its own name to this address gets nothing), a JSON content type on every request
//! that changes state (so no "simple" cross-site form or beacon changes anything), and the
//! headers every answer carries.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ServerState;
use super::errors::ApiError;

/// The `Host` names a server answers to.
#[derive(Debug, Clone, Default)]
pub enum AllowedHosts {
    /// Any: the server listens on every address and no names were configured.
    #[default]
    Any,
    /// Only these (lower case, without port or trailing dot).
    Only(Vec<String>),
}

impl AllowedHosts {
    /// The names a server on `listen` answers to: its own address, `localhost` when it is a
    /// loopback address, and `configured`. A wildcard address with nothing configured answers
    /// to any name: a token guards it then.
    pub fn for_listen(listen: std::net::SocketAddr, configured: &[String]) -> AllowedHosts {
        let ip = listen.ip();
        if ip.is_unspecified() && configured.is_empty() {
            return AllowedHosts::Any;
        }
        let mut names: Vec<String> = configured.iter().map(|n| normalize(n)).collect();
        if !ip.is_unspecified() {
            names.push(match ip {
                std::net::IpAddr::V4(v4) => v4.to_string(),
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            });
        }
        if ip.is_loopback() {
            names.extend(["localhost", "127.0.0.1", "[::1]"].map(String::from));
        }
        AllowedHosts::Only(names)
    }

    /// Whether a request naming `host` (a `Host` header, with or without port) is served.
    pub fn allows(&self, host: &str) -> bool {
        match self {
            AllowedHosts::Any => true,
            AllowedHosts::Only(names) => {
                let name = normalize(strip_port(host));
                names.contains(&name)
            }
        }
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // `[::1]:8080` keeps its brackets.
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Refuses a request whose `Host` is not one this server answers to (421): a page that points
/// a name of its own at this address (DNS rebinding) reaches nothing.
pub(super) async fn require_host(
    State(state): State<Arc<ServerState>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    match host {
        Some(host) if state.allowed_hosts.allows(host) => next.run(request).await,
        Some(host) => ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this server does not answer to host {:?}: add it to server.allowed_hosts",
                super::errors::clip(host)
            ),
        )
        .into_response(),
        None => ApiError::new(StatusCode::BAD_REQUEST, "the request names no Host").into_response(),
    }
}

/// Refuses a request that changes state unless it says `Content-Type: application/json` or
/// carries an `Authorization` header: a browser sends neither cross-site without asking the
/// server first (a preflight this server never answers yes to).
pub(super) async fn require_json_for_changes(request: Request, next: Next) -> Response {
    let reads = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let headers = request.headers();
    if reads || headers.contains_key(header::AUTHORIZATION) || is_json(headers) {
        return next.run(request).await;
    }
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "{} requests must say Content-Type: application/json",
            request.method()
        ),
    )
    .into_response()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Refuses a request without the configured bearer token (401).
pub(super) async fn require_token(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(expected) = &state.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        let matches =
            given.is_some_and(|given| constant_time_eq(given.as_bytes(), expected.as_bytes()));
        if !matches {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token (Authorization: Bearer <token>)",
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// The token of an `Authorization: Bearer <token>` value; the scheme's case does not matter
/// (RFC 9110 §11.1), nor do extra spaces around the token.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// Headers every answer carries: nothing the API sends is to be sniffed into another type,
/// framed, cached or sent on as a referrer.
pub(super) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers
            .entry(name)
            .or_insert(header::HeaderValue::from_static(value));
    }
    response
}

/// Compares without an early exit, so response time does not leak how much of a guess matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        assert_eq!(bearer_token("Bearer s3cret"), Some("s3cret"));
        assert_eq!(bearer_token("bearer s3cret"), Some("s3cret"));
        assert_eq!(bearer_token("BEARER  s3cret "), Some("s3cret"));
        assert_eq!(bearer_token("Basic s3cret"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer  "), None);
    }

    #[test]
    fn a_loopback_server_answers_to_its_own_names_only() {
        let hosts = AllowedHosts::for_listen("127.0.0.1:8080".parse().unwrap(), &[]);
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST.",
            "[::1]:8080",
            "localhost",
        ] {
            assert!(hosts.allows(host), "{host}");
        }
        for host in ["evil.example:8080", "127.0.0.2", "localhost.evil.example"] {
            assert!(!hosts.allows(host), "{host}");
        }
    }

    #[test]
    fn a_wildcard_server_answers_to_any_name_unless_names_are_configured() {
        let any = AllowedHosts::for_listen("0.0.0.0:80".parse().unwrap(), &[]);
        assert!(any.allows("whatever.example"));
        let named = AllowedHosts::for_listen(
            "0.0.0.0:80".parse().unwrap(),
            &["Reprise.Internal".to_string()],
        );
        assert!(named.allows("reprise.internal:80"));
        assert!(!named.allows("whatever.example"));
    }
}
