//! The admin API's component versions: list them with the workflows in flight on each, add a
//! version without a restart, and move a workflow to another version when its history replays
//! cleanly on it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::errors::json_rejection;
use super::extract::WorkflowId;
use super::{ApiError, ServerState};
use reprise_store::ComponentVersion;

/// The routes, guarded like the rest of the API.
pub(super) fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/components", get(list))
        .route("/components/{name}", post(add))
        .route("/workflows/{id}/upgrade", post(upgrade))
        .route("/workflows/{id}/runs", get(runs))
}

/// A stored version, and whether new starts of its component get it here.
#[derive(Debug, Serialize)]
struct VersionView {
    #[serde(flatten)]
    version: ComponentVersion,
    serving: bool,
}

async fn list(State(state): State<Arc<ServerState>>) -> Result<Response, ApiError> {
    let serving = state.serving.instances();
    let versions: Vec<VersionView> = state
        .runtime
        .store()
        .component_versions()
        .await?
        .into_iter()
        .map(|version| VersionView {
            serving: serving.values().any(|c| c.digest == version.digest),
            version,
        })
        .collect();
    Ok(Json(serde_json::json!({ "versions": versions })).into_response())
}

/// `POST /components/{name}`: the body is the new version's bytes (`application/wasm`).
async fn add(
    State(state): State<Arc<ServerState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !state.serving.serves(&name) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no configured component named {name:?}"),
        ));
    }
    let (loaded, new) = state
        .serving
        .add_version(&state.runtime, &name, &body)
        .await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let answer = serde_json::json!({
        "name": name,
        "digest": loaded.digest,
        "serving": true,
        "workflows": loaded.definitions.workflows,
    });
    Ok((status, Json(answer)).into_response())
}

/// `GET /workflows/{id}/runs`: the finished runs of a workflow that continued as new.
async fn runs(
    State(state): State<Arc<ServerState>>,
    WorkflowId(id): WorkflowId,
) -> Result<Response, ApiError> {
    let store = state.runtime.store();
    if store.get_workflow(&id).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no workflow with id {id}"),
        ));
    }
    Ok(Json(serde_json::json!({ "runs": store.runs(&id).await? })).into_response())
}

/// What to move a workflow to: a stored version by digest, or the version a configured
/// component serves now.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpgradeBody {
    to: Option<String>,
    component: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

async fn upgrade(
    State(state): State<Arc<ServerState>>,
    WorkflowId(id): WorkflowId,
    body: Result<Json<UpgradeBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(json_rejection)?;
    let component = match (&body.to, &body.component) {
        (Some(digest), None) => state.runtime.component(digest).await?,
        (None, Some(name)) => state.serving.newest(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no configured component named {name:?}"),
            )
        })?,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "name the version to move to: \"to\" (a stored digest) or \"component\" (the \
                 version a configured component serves now)",
            ));
        }
    };
    let moved = state.runtime.upgrade(&id, component, body.dry_run).await?;
    let status = if moved.verdict.is_clean() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok((status, Json(moved)).into_response())
}
