//! What a request body may cost the server: at most `max_body` bytes, all of them within
//! `body_timeout`. The body is read here, once, before any handler runs, so a client that
//! dribbles it cannot hold a handler (and its connection) open for as long as it likes.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::ApiError;

/// The `[server]` settings that bound a request body.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest body accepted, in bytes (`max_body`).
    pub max_body: u64,
    /// Longest a client may take to send the whole body (`body_timeout`).
    pub body_timeout: Duration,
}

impl BodyLimits {
    /// `max_body` as a length in memory.
    pub(super) fn max_body_usize(&self) -> usize {
        usize::try_from(self.max_body).unwrap_or(usize::MAX)
    }
}

/// Reads the whole body within the limits and hands the request on with it buffered; answers
/// 408 or 413 itself when the client is too slow or sends too much. A body whose
/// `Content-Length` is over the limit is refused before a byte of it is read: waiting for
/// 100 GB to refuse it would hand the connection to the client for as long as it likes.
pub(super) async fn read_body(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_body) {
        return too_large(limits.max_body);
    }
    let read = Limited::new(body, limits.max_body_usize()).collect();
    let bytes = match tokio::time::timeout(limits.body_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => {
            return too_large(limits.max_body);
        }
        Ok(Err(err)) => {
            let message = format!("cannot read the request body: {err}");
            return closing(ApiError::new(StatusCode::BAD_REQUEST, message));
        }
        Err(_) => {
            let message = format!(
                "the request body did not arrive within {:?} (server.body_timeout)",
                limits.body_timeout
            );
            return closing(ApiError::new(StatusCode::REQUEST_TIMEOUT, message));
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn too_large(max_body: u64) -> Response {
    let message = format!("request body is larger than {max_body} bytes (server.max_body)");
    closing(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message))
}

/// An error answered before the body was read to its end: what is left of it on the
/// connection is not a next request, so the connection closes after the answer.
fn closing(err: ApiError) -> Response {
    let mut response = err.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
