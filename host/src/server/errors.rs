//! The API's one error type: every failure, whoever detects it, leaves as the JSON body
//! `{"error": "..."}` with a status that says whose fault it was.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use reprise_client::wire::ErrorBody;

use crate::runtime::RuntimeError;
use crate::store::StoreError;

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
            | RuntimeError::InvalidInput(_)
            | RuntimeError::UnknownQueue { .. }
            | RuntimeError::UnknownInstance(_) => StatusCode::BAD_REQUEST,
            RuntimeError::UnknownWorkflowId(_) => StatusCode::NOT_FOUND,
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
        StoreError::Duplicate { .. } | StoreError::NotResumable { .. } => StatusCode::CONFLICT,
        StoreError::Locked(_) => StatusCode::SERVICE_UNAVAILABLE,
        StoreError::Storage(_) => StatusCode::INSUFFICIENT_STORAGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, message)
}

pub(super) fn json_rejection(rejection: JsonRejection) -> ApiError {
    ApiError::new(rejection.status(), rejection.body_text())
}

pub(super) fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text())
}
