//! The admin API's messages, events and streams: send to a workflow's topic, read (or wait
//! for) its events, and read its streams by long poll or as server-sent events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use reprise_protocol::wire::{
    EventView, MessageBody, MessageSent, MessageView, StreamChunk, StreamInfoView,
};
use serde::Deserialize;

use super::ToView;
use super::convert::{stream_chunk, stream_info_view};
use super::errors::{json_rejection, query_rejection};
use super::extract::{WorkflowId, WorkflowKey};
use super::{ApiError, ServerState, views};

/// Longest one request waits for an event or a stream value (the caller asks again).
const MAX_WAIT: Duration = Duration::from_secs(60);

/// The routes, guarded like the rest of the API.
pub(super) fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/workflows/{id}/messages", post(send).get(messages))
        .route("/workflows/{id}/events", get(events))
        .route("/workflows/{id}/events/{key}", get(event))
        .route("/workflows/{id}/streams", get(streams))
        .route("/workflows/{id}/streams/{key}", get(stream))
}

/// 404 unless the workflow exists.
async fn existing(state: &ServerState, id: &str) -> Result<(), ApiError> {
    match state.runtime.store().get_workflow(id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no workflow with id {id}"),
        )),
    }
}

async fn send(
    State(state): State<Arc<ServerState>>,
    WorkflowId(id): WorkflowId,
    body: Result<Json<MessageBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(json_rejection)?;
    let message = body.message.to_string();
    let key = body.idempotency_key.as_deref();
    let stored = state
        .runtime
        .mailbox()
        .send_message(&id, &body.topic, &message, key)
        .await?;
    let status = if stored {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let sent = MessageSent {
        workflow_id: id,
        topic: body.topic,
        stored,
    };
    Ok((status, Json(sent)).into_response())
}

async fn messages(
    State(state): State<Arc<ServerState>>,
    WorkflowId(id): WorkflowId,
) -> Result<Json<Vec<MessageView>>, ApiError> {
    existing(&state, &id).await?;
    Ok(Json(views(state.runtime.store().messages(&id).await?)?))
}

async fn events(
    State(state): State<Arc<ServerState>>,
    WorkflowId(id): WorkflowId,
) -> Result<Json<Vec<EventView>>, ApiError> {
    existing(&state, &id).await?;
    Ok(Json(views(state.runtime.store().events(&id).await?)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    timeout_ms: Option<u64>,
}

/// 200 with the event's value, or 202 without one when `timeout_ms` (default 0) passed first.
async fn event(
    State(state): State<Arc<ServerState>>,
    WorkflowKey(id, key): WorkflowKey,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(query_rejection)?;
    let timeout = Duration::from_millis(query.timeout_ms.unwrap_or(0)).min(MAX_WAIT);
    match state
        .runtime
        .mailbox()
        .get_event(&id, &key, timeout)
        .await?
    {
        Some(event) => Ok((StatusCode::OK, Json(event.to_view()?)).into_response()),
        None => {
            let unset = EventView {
                workflow_id: id,
                key,
                value: None,
                updated_at: None,
            };
            Ok((StatusCode::ACCEPTED, Json(unset)).into_response())
        }
    }
}

async fn streams(
    State(state): State<Arc<ServerState>>,
    WorkflowId(id): WorkflowId,
) -> Result<Json<Vec<StreamInfoView>>, ApiError> {
    existing(&state, &id).await?;
    let streams = state.runtime.store().streams(&id).await?;
    Ok(Json(streams.into_iter().map(stream_info_view).collect()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    offset: Option<u64>,
    timeout_ms: Option<u64>,
}

/// The values from `offset`: at once, or after waiting up to `timeout_ms` for one (a long
/// poll). With `Accept: text/event-stream`, every value as a server-sent event (`id` its
/// offset, `data` its JSON) until the stream ends, then an event `closed`.
async fn stream(
    State(state): State<Arc<ServerState>>,
    WorkflowKey(id, key): WorkflowKey,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(query_rejection)?;
    let offset = query.offset.unwrap_or(0);
    let wants_events = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"));
    if wants_events {
        existing(&state, &id).await?;
        return Ok(server_sent(state, id, key, offset).into_response());
    }
    let timeout = Duration::from_millis(query.timeout_ms.unwrap_or(0)).min(MAX_WAIT);
    let read = state
        .runtime
        .mailbox()
        .read_stream(&id, &key, offset, timeout)
        .await?;
    let chunk: StreamChunk = stream_chunk(&id, &key, offset, read)?;
    Ok(Json(chunk).into_response())
}

/// The stream as server-sent events, read in long polls until it ends.
fn server_sent(
    state: Arc<ServerState>,
    id: String,
    key: String,
    offset: u64,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    /// Where the reading stands: the next offset, values read and not yet sent, the end.
    struct Reading {
        state: Arc<ServerState>,
        id: String,
        key: String,
        next: u64,
        ready: std::collections::VecDeque<Event>,
        ended: bool,
    }
    let start = Reading {
        state,
        id,
        key,
        next: offset,
        ready: Default::default(),
        ended: false,
    };
    let events = futures_util::stream::unfold(start, |mut r| async move {
        loop {
            if let Some(event) = r.ready.pop_front() {
                return Some((Ok(event), r));
            }
            if r.ended {
                return None;
            }
            let read = r
                .state
                .runtime
                .mailbox()
                .read_stream(&r.id, &r.key, r.next, MAX_WAIT)
                .await;
            let chunk = read
                .map_err(ApiError::from)
                .and_then(|read| Ok(stream_chunk(&r.id, &r.key, r.next, read)?));
            match chunk {
                Ok(chunk) => {
                    r.next = chunk.next_offset;
                    for value in chunk.values {
                        let event = Event::default()
                            .id(value.offset.to_string())
                            .data(value.value.to_string());
                        r.ready.push_back(event);
                    }
                    if chunk.closed {
                        r.ready
                            .push_back(Event::default().event("closed").data("{}"));
                        r.ended = true;
                    }
                }
                Err(err) => {
                    let message = serde_json::json!({ "error": err.body.error }).to_string();
                    r.ready
                        .push_back(Event::default().event("error").data(message));
                    r.ended = true;
                }
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
