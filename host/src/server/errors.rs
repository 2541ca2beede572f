//! The API's one error type: every failure, whoever detects it, leaves as the JSON body
//! `{"error": "..."}` with a status that says whose fault it was.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use reprise_protocol::wire::ErrorBody;

use crate::runtime::RuntimeError;
use reprise_store::StoreError;

/// An error response: a status and a message, rendered as JSON.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    pub(super) body: ErrorBody,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error: message.into(),
                choose_instance: Vec::new(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<RuntimeError> for ApiError {
    fn from(err: RuntimeError) -> Self {
        let status = match &err {
            RuntimeError::UnknownWorkflow { .. }
            | RuntimeError::Engine(_)
            | RuntimeError::InvalidInput(_)
            | RuntimeError::MessageRefused(_)
            | RuntimeError::UnknownQueue { .. }
            | RuntimeError::UnknownInstance(_)
            | RuntimeError::MemoryLimitTooLarge { .. }
            | RuntimeError::MemoryLimitTooSmall { .. }
            | RuntimeError::InvalidId(_) => StatusCode::BAD_REQUEST,
            RuntimeError::UnknownWorkflowId(_) | RuntimeError::MissingComponent(_) => {
                StatusCode::NOT_FOUND
            }
            RuntimeError::IdTaken { .. } | RuntimeError::Diverges(_) => StatusCode::CONFLICT,
            RuntimeError::QuotaExceeded(_) => StatusCode::TOO_MANY_REQUESTS,
            RuntimeError::Store(store) => return store_error(store, err.to_string()),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, err.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        let message = err.to_string();
        store_error(&err, message)
    }
}

fn store_error(err: &StoreError, message: String) -> ApiError {
    let status = match err {
        StoreError::UnknownWorkflow(_) => StatusCode::NOT_FOUND,
        StoreError::Duplicate { .. }
        | StoreError::NotResumable { .. }
        | StoreError::ChangedWhileChecked(_)
        | StoreError::WorkflowExists(_) => StatusCode::CONFLICT,
        StoreError::Locked(_) => StatusCode::SERVICE_UNAVAILABLE,
        StoreError::Storage(_) => StatusCode::INSUFFICIENT_STORAGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, message)
}

/// A body that is not the JSON the endpoint takes is bad input (400), whether it does not parse
/// or has the wrong shape; a missing content type (415) or a body over the limit (413) keep
/// their own statuses.
pub(super) fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = match &rejection {
        JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_) => {
            StatusCode::BAD_REQUEST
        }
        other => other.status(),
    };
    ApiError::new(status, rejection.body_text())
}

pub(super) fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text())
}

/// The router's fallback: no endpoint has this path.
pub(super) async fn no_endpoint(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no endpoint {method} {}", clip(uri.path())),
    )
}

/// The path exists, but not with this method (axum still sets `Allow`).
pub(super) async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} does not take {method}", clip(uri.path())),
    )
}

/// A path as an error message shows it: a 60 KiB path is not worth echoing whole.
pub(super) fn clip(path: &str) -> String {
    const SHOWN: usize = 200;
    match path.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &path[..end]),
        None => path.to_string(),
    }
}

/// Longest error text of someone else's making that is turned into a JSON message.
const MAX_FOREIGN_ERROR: usize = 64 * 1024;

/// The last resort behind every route: an error answer that is not JSON yet (a rejection of an
/// extractor no handler maps, say) gets the JSON body, its text as the message, so the API
/// keeps its promise even for answers added later.
pub(super) async fn json_error_bodies(response: Response) -> Response {
    let status = response.status();
    let failed = status.is_client_error() || status.is_server_error();
    if !failed || is_json(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_FOREIGN_ERROR)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    let json = ApiError::new(status, message).into_response();
    let (json_parts, json_body) = json.into_parts();
    parts.headers.extend(json_parts.headers);
    Response::from_parts(parts, json_body)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}
