//! The admin API's replays, executing nothing: new code checked against every workflow in
//! flight, patches counted, one workflow replayed, and repro bundles out and in.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::errors::{json_rejection, query_rejection};
use super::extract::WorkflowId;
use super::{ApiError, ServerState};
use crate::runtime::replay::bundle::Bundle;
use crate::runtime::replay::check::CheckFilter;

/// The routes, guarded like the rest of the API.
pub(super) fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/upgrade-check", post(upgrade_check))
        .route("/patches", get(patches))
        .route("/workflows/{id}/replay", get(replay))
        .route("/workflows/{id}/export", get(export))
        .route("/workflows/import", post(import))
}

/// Which workflows `/upgrade-check` checks.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckQuery {
    instance: Option<String>,
    from: Option<String>,
}

/// `POST /upgrade-check`: the body is the new component's bytes; the answer every verdict,
/// grouped. 200 whatever the verdicts (`clean` says how many are).
async fn upgrade_check(
    State(state): State<Arc<ServerState>>,
    query: Result<Query<CheckQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(query_rejection)?;
    let component = state.runtime.load(&body).await?;
    let filter = CheckFilter {
        instance: query.instance,
        from: query.from,
    };
    let report = state.runtime.upgrade_check(component, &filter).await?;
    Ok(Json(report).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchesQuery {
    instance: Option<String>,
}

/// `GET /patches`: per patch and version, who took which branch.
async fn patches(
    State(state): State<Arc<ServerState>>,
    query: Result<Query<PatchesQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(query_rejection)?;
    let uses = state.runtime.patches(query.instance).await?;
    Ok(Json(serde_json::json!({ "patches": uses })).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayQuery {
    /// A stored version to replay on instead of the workflow's own.
    to: Option<String>,
    until: Option<u32>,
}

/// `GET /workflows/{id}/replay`: the workflow replayed with nothing executed or written: its
/// timeline, the guest's log lines, and how the replay ended.
async fn replay(
    State(state): State<Arc<ServerState>>,
    WorkflowId(id): WorkflowId,
    query: Result<Query<ReplayQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(query_rejection)?;
    let to = match &query.to {
        Some(digest) => Some(state.runtime.component(digest).await?),
        None => None,
    };
    let replayed = state.runtime.replay(&id, to, query.until).await?;
    let lines: Vec<_> = replayed
        .replay
        .seen
        .lines
        .iter()
        .map(|l| {
            serde_json::json!({
                "position": l.position, "level": l.level, "step": l.step,
                "message": l.message, "replayed": true,
            })
        })
        .collect();
    let answer = serde_json::json!({
        "id": replayed.workflow.id,
        "component": replayed.component,
        "timeline": replayed.steps,
        "logs": lines,
        "result": replayed.replay.verdict,
    });
    Ok(Json(answer).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    #[serde(default)]
    children: bool,
}

/// `GET /workflows/{id}/export`: the workflow's repro bundle.
async fn export(
    State(state): State<Arc<ServerState>>,
    WorkflowId(id): WorkflowId,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(query_rejection)?;
    let bundle = state.runtime.export(&id, query.children).await?;
    Ok(Json(bundle).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    #[serde(default)]
    paused: bool,
}

/// `POST /workflows/import`: loads a bundle (the body); 201 with the workflow, 409 for an id
/// that exists here.
async fn import(
    State(state): State<Arc<ServerState>>,
    query: Result<Query<ImportQuery>, QueryRejection>,
    body: Result<Json<Bundle>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(query_rejection)?;
    let Json(bundle) = body.map_err(json_rejection)?;
    if bundle.format != crate::runtime::replay::bundle::FORMAT {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("a bundle of format {:?}", bundle.format),
        ));
    }
    let imported = state.runtime.import(&bundle, query.paused).await?;
    Ok((StatusCode::CREATED, super::view(imported)?).into_response())
}
