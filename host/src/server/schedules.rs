//! The admin API's schedules: list, add, look at, pause, resume, delete, fire now, backfill.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use reprise_protocol::wire::{BackfillBody, Fired, ScheduleBody, ScheduleView};

use super::errors::json_rejection;
use super::{ApiError, ServerState};
use crate::node::scheduler::ScheduleError;

/// The routes, guarded like the rest of the API.
pub(super) fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/schedules", get(list).post(add))
        .route("/schedules/{name}", get(one).delete(delete))
        .route("/schedules/{name}/pause", post(pause))
        .route("/schedules/{name}/resume", post(resume))
        .route("/schedules/{name}/trigger", post(trigger))
        .route("/schedules/{name}/backfill", post(backfill))
}

impl From<ScheduleError> for ApiError {
    fn from(err: ScheduleError) -> Self {
        match err {
            ScheduleError::Unknown(_) => ApiError::new(StatusCode::NOT_FOUND, err.to_string()),
            ScheduleError::Exists(_) => ApiError::new(StatusCode::CONFLICT, err.to_string()),
            ScheduleError::Invalid(_) => ApiError::new(StatusCode::BAD_REQUEST, err.to_string()),
            ScheduleError::Runtime(err) => err.into(),
            ScheduleError::Store(err) => err.into(),
        }
    }
}

fn view(
    state: &ServerState,
    record: reprise_store::ScheduleRecord,
) -> Result<ScheduleView, ApiError> {
    Ok(state.scheduler.view(record)?)
}

async fn list(State(state): State<Arc<ServerState>>) -> Result<Json<Vec<ScheduleView>>, ApiError> {
    let records = state.runtime.store().schedules().await?;
    let views = records
        .into_iter()
        .map(|r| view(&state, r))
        .collect::<Result<_, _>>()?;
    Ok(Json(views))
}

async fn add(
    State(state): State<Arc<ServerState>>,
    body: Result<Json<ScheduleBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(json_rejection)?;
    let record = state.scheduler.add(body).await?;
    Ok((StatusCode::CREATED, Json(view(&state, record)?)).into_response())
}

async fn one(
    State(state): State<Arc<ServerState>>,
    Path(name): Path<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    let record = state.scheduler.get(&name).await?;
    Ok(Json(view(&state, record)?))
}

async fn delete(
    State(state): State<Arc<ServerState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.scheduler.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pause(
    State(state): State<Arc<ServerState>>,
    Path(name): Path<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    let record = state.scheduler.pause(&name, true).await?;
    Ok(Json(view(&state, record)?))
}

async fn resume(
    State(state): State<Arc<ServerState>>,
    Path(name): Path<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    let record = state.scheduler.pause(&name, false).await?;
    Ok(Json(view(&state, record)?))
}

async fn trigger(
    State(state): State<Arc<ServerState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let id = state.scheduler.trigger(&name).await?;
    let fired = Fired {
        workflow_ids: vec![id],
    };
    Ok((StatusCode::CREATED, Json(fired)).into_response())
}

async fn backfill(
    State(state): State<Arc<ServerState>>,
    Path(name): Path<String>,
    body: Result<Json<BackfillBody>, JsonRejection>,
) -> Result<Json<Fired>, ApiError> {
    let Json(body) = body.map_err(json_rejection)?;
    if body.to <= body.from {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "backfill needs from < to (ms since the epoch)",
        ));
    }
    let workflow_ids = state.scheduler.backfill(&name, body.from, body.to).await?;
    Ok(Json(Fired { workflow_ids }))
}
