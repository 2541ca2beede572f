//! Extractors whose rejections are [`ApiError`]s, so a request the router cannot take apart is
//! answered in the API's JSON like any other mistake.

use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::ApiError;
use crate::runtime::validate_workflow_id;

/// The `{id}` of a `/workflows/{id}/…` path, checked against the id rule: a bad id is the
/// caller's mistake (400), not a workflow that happens not to exist (404). axum's own `Path`
/// would answer a percent-encoded id that is not UTF-8 in plain text.
pub(super) struct WorkflowId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for WorkflowId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text()))?;
        validate_workflow_id(&id)
            .map_err(|err| ApiError::new(StatusCode::BAD_REQUEST, err.to_string()))?;
        Ok(WorkflowId(id))
    }
}

/// The `{id}` and `{key}` of a `/workflows/{id}/events/{key}` or `…/streams/{key}` path; the
/// id checked as [`WorkflowId`] is.
pub(super) struct WorkflowKey(pub String, pub String);

impl<S: Send + Sync> FromRequestParts<S> for WorkflowKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((id, key)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text()))?;
        validate_workflow_id(&id)
            .map_err(|err| ApiError::new(StatusCode::BAD_REQUEST, err.to_string()))?;
        Ok(WorkflowKey(id, key))
    }
}
