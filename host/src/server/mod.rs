//! The admin HTTP API of `reprise serve`: health, start and enqueue, status and results,
//! listings, steps, cancel, resume, fork, and Prometheus metrics. Every error is a JSON body
//! `{"error": "..."}` with a 4xx status that says whose fault it was. The bodies are the types of
//! `reprise_protocol::wire`, which the client reads.

mod convert;
mod errors;
mod extract;
mod guard;
mod http;
mod hyper_errors;
mod limits;
mod overview;
mod replays;
mod schedules;
mod ui;
mod versions;
mod waits;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use reprise_protocol::wire::{
    ForkBody, Health, HealthStatus, InstanceHealth, ListQuery, QueueHealth, ResumeBody, StartBody,
    StepView, WorkflowView,
};
use serde::Deserialize;

pub use convert::{ToView, executor_views, views};
pub use errors::ApiError;
use errors::{json_rejection, query_rejection};
use extract::WorkflowId;
pub use guard::AllowedHosts;
pub use http::serve;
pub use limits::BodyLimits;

use crate::node::queue::QueueOptions;
use crate::runtime::LoadedComponent;
use crate::runtime::{DEFAULT_INSTANCE, Runtime, StartRequest};
use reprise_store::{WorkflowFilter, WorkflowRecord};

/// Longest a single `/result` request waits before answering 202 (the client asks again).
const MAX_RESULT_WAIT: Duration = Duration::from_secs(60);

/// What the handlers share.
pub struct ServerState {
    /// The runtime the API drives.
    pub runtime: Runtime,
    /// The component version new starts get, by instance.
    pub serving: Arc<crate::node::serving::Serving>,
    /// Bearer token required on every endpoint but `/healthz`.
    pub token: Option<String>,
    /// The `Host` names the server answers to.
    pub allowed_hosts: guard::AllowedHosts,
    /// The configured queues, which `/healthz` and `/queues` list even when they are empty.
    pub queues: BTreeMap<String, QueueOptions>,
    /// Set at shutdown: new work is refused with 503 while running work drains.
    pub draining: AtomicBool,
    /// The schedules this server fires.
    pub scheduler: Arc<crate::node::scheduler::Scheduler>,
}

/// The router. Every request must name a `Host` this server answers to; every endpoint but
/// `/healthz` and the UI's files then checks the token, that a change of state comes as JSON
/// (or with a token), and the body limits: a request without the token is refused before its
/// body is read.
pub fn router(state: Arc<ServerState>, limits: BodyLimits) -> Router {
    let guarded = Router::new()
        .route("/workflows", post(start_workflow).get(list_workflows))
        .route("/workflows/{id}", get(get_workflow))
        .route("/workflows/{id}/result", get(workflow_result))
        .route("/workflows/{id}/steps", get(workflow_steps))
        .route("/workflows/{id}/cancel", post(cancel_workflow))
        .route("/workflows/{id}/resume", post(resume_workflow))
        .route("/workflows/{id}/fork", post(fork_workflow))
        .route("/metrics", get(metrics))
        .merge(waits::routes())
        .merge(schedules::routes())
        .merge(overview::routes())
        .merge(versions::routes())
        .merge(replays::routes())
        .route_layer(middleware::from_fn_with_state(limits, limits::read_body))
        .route_layer(middleware::from_fn(guard::require_json_for_changes))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            guard::require_token,
        ));
    Router::new()
        .route("/healthz", get(health))
        .merge(ui::routes())
        .merge(guarded)
        .fallback(errors::no_endpoint)
        .method_not_allowed_fallback(errors::wrong_method)
        .layer(DefaultBodyLimit::max(limits.max_body_usize()))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::require_host,
        ))
        .layer(middleware::map_response(errors::json_error_bodies))
        .layer(middleware::map_response(guard::security_headers))
        .with_state(state)
}

async fn health(State(state): State<Arc<ServerState>>) -> Result<Response, ApiError> {
    // Configured queues with nothing in them have no row in the database: start from zero.
    let mut queues: BTreeMap<String, QueueHealth> = state
        .queues
        .keys()
        .map(|name| {
            let empty = QueueHealth {
                queue: name.clone(),
                enqueued: 0,
                pending: 0,
            };
            (name.clone(), empty)
        })
        .collect();
    for depth in state.runtime.store().queue_depths().await? {
        let queue = QueueHealth {
            queue: depth.queue.clone(),
            enqueued: depth.enqueued,
            pending: depth.pending,
        };
        queues.insert(depth.queue, queue);
    }
    let draining = state.draining.load(Ordering::Relaxed);
    let usage = state.runtime.instance_usage();
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    let body = Health {
        status: if draining {
            HealthStatus::Draining
        } else {
            HealthStatus::Ok
        },
        token_required: state.token.is_some(),
        executor_id: state.runtime.options().executor_id.clone(),
        in_flight: count(state.runtime.in_flight()),
        parked: count(usage.parked),
        instances: InstanceHealth {
            capacity: count(usage.capacity),
            in_use: count(usage.in_use),
            waiting: count(usage.waiting),
        },
        queues: queues.into_values().collect(),
        executors: executor_views(state.runtime.store().executors(None).await?),
    };
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok((status, Json(body)).into_response())
}

impl ServerState {
    /// The instance to run a workflow on: the named one, or the only one that defines it.
    fn resolve_instance(
        &self,
        instance: Option<&str>,
        workflow: &str,
    ) -> Result<(String, Arc<LoadedComponent>), ApiError> {
        let instances = self.serving.instances();
        if let Some(name) = instance {
            return instances
                .get(name)
                .map(|c| (name.to_string(), c.clone()))
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("no instance named {name:?}"),
                    )
                });
        }
        let defining: Vec<_> = instances
            .iter()
            .filter(|(_, c)| c.has_workflow(workflow))
            .collect();
        match defining.as_slice() {
            [] => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("no configured component defines a workflow named {workflow:?}"),
            )),
            [(name, component)] => Ok(((*name).clone(), (*component).clone())),
            many => match many
                .iter()
                .find(|(name, _)| name.as_str() == DEFAULT_INSTANCE)
            {
                Some((name, component)) => Ok(((*name).clone(), (*component).clone())),
                None => {
                    let names: Vec<String> = many.iter().map(|(n, _)| (*n).clone()).collect();
                    let mut err = ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "workflow {workflow:?} is defined by instances {}: name one with \"instance\"",
                            names.join(", ")
                        ),
                    );
                    err.body.choose_instance = names;
                    Err(err)
                }
            },
        }
    }
}

async fn start_workflow(
    State(state): State<Arc<ServerState>>,
    body: Result<Json<StartBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(json_rejection)?;
    if state.draining.load(Ordering::Relaxed) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down: not taking new workflows",
        ));
    }
    let (instance, component) = state.resolve_instance(body.instance.as_deref(), &body.workflow)?;
    let request = StartRequest {
        workflow: body.workflow,
        input: body.input.to_string(),
        instance,
        id: body.id,
        queue: body.queue,
        priority: body.priority,
        deduplication_id: body.deduplication_id,
        partition_key: body.partition_key,
        parent: None,
        timeout: body.timeout_ms.map(Duration::from_millis),
        deadline_at: None,
        not_before: not_before(body.delay_ms, body.start_at),
        scheduled_at: None,
    };
    let inserted = state.runtime.submit(&component, request).await?;
    let status = if inserted.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, view(inserted.record)?).into_response())
}

/// When a start with a delay or a start time may begin: the later of the two.
fn not_before(delay_ms: Option<u64>, start_at: Option<i64>) -> Option<i64> {
    let delayed = delay_ms
        .map(|ms| reprise_store::now_ms().saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)));
    delayed.max(start_at)
}

/// The API's form of a workflow record.
fn view(record: WorkflowRecord) -> Result<Json<WorkflowView>, ApiError> {
    Ok(Json(record.to_view()?))
}

async fn list_workflows(
    State(state): State<Arc<ServerState>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<WorkflowView>>, ApiError> {
    let Query(query) = query.map_err(query_rejection)?;
    let filter = WorkflowFilter {
        status: query.status,
        name: query.name,
        queue: query.queue,
        created_after: query.created_after,
        created_before: query.created_before,
        limit: Some(query.limit.unwrap_or(100).min(10_000)),
        offset: query.offset,
        instance: query.instance,
        id_contains: query.id,
        parent: query.parent,
        app_version: query.app_version,
    };
    let records = state.runtime.store().list_workflows(&filter).await?;
    Ok(Json(views(records)?))
}

async fn get_workflow(
    State(state): State<Arc<ServerState>>,
    WorkflowId(id): WorkflowId,
) -> Result<Json<WorkflowView>, ApiError> {
    let record = state.runtime.store().get_workflow(&id).await?;
    view(
        record.ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, format!("no workflow with id {id}"))
        })?,
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultQuery {
    timeout_ms: Option<u64>,
}

/// Waits for the workflow to end: 200 with the final record, or 202 with the current one when
/// the wait times out (ask again).
async fn workflow_result(
    State(state): State<Arc<ServerState>>,
    WorkflowId(id): WorkflowId,
    query: Result<Query<ResultQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(query_rejection)?;
    let timeout = query
        .timeout_ms
        .map_or(MAX_RESULT_WAIT, Duration::from_millis)
        .min(MAX_RESULT_WAIT);
    match state.runtime.wait(&id, Some(timeout)).await? {
        Some(record) => Ok((StatusCode::OK, view(record)?).into_response()),
        None => {
            let record = state.runtime.store().get_workflow(&id).await?;
            let record = record.ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, format!("no workflow with id {id}"))
            })?;
            Ok((StatusCode::ACCEPTED, view(record)?).into_response())
        }
    }
}

async fn workflow_steps(
    State(state): State<Arc<ServerState>>,
    WorkflowId(id): WorkflowId,
) -> Result<Response, ApiError> {
    let Some(workflow) = state.runtime.store().get_workflow(&id).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no workflow with id {id}"),
        ));
    };
    let records = state.runtime.store().steps(&id).await?;
    // Committed under an older epoch (or copied by a fork): the latest execution replayed it.
    let replayed: Vec<bool> = records
        .iter()
        .map(|step| {
            step.committed_epoch
                .is_none_or(|epoch| epoch < workflow.epoch)
        })
        .collect();
    let mut steps: Vec<StepView> = views(records)?;
    for (step, replayed) in steps.iter_mut().zip(replayed) {
        step.replayed = replayed;
    }
    Ok(Json(steps).into_response())
}

async fn cancel_workflow(
    State(state): State<Arc<ServerState>>,
    WorkflowId(id): WorkflowId,
) -> Result<Json<WorkflowView>, ApiError> {
    view(state.runtime.cancel(&id).await?)
}

async fn resume_workflow(
    State(state): State<Arc<ServerState>>,
    WorkflowId(id): WorkflowId,
    body: axum::body::Bytes,
) -> Result<Json<WorkflowView>, ApiError> {
    // No body resumes with the limits the workflow had.
    let body: ResumeBody = if body.iter().all(u8::is_ascii_whitespace) {
        ResumeBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("invalid resume body: {e}"))
        })?
    };
    if state.draining.load(Ordering::Relaxed) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down",
        ));
    }
    view(state.runtime.resume(&id, body.memory_limit).await?)
}

async fn fork_workflow(
    State(state): State<Arc<ServerState>>,
    WorkflowId(id): WorkflowId,
    body: Result<Json<ForkBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(json_rejection)?;
    if state.draining.load(Ordering::Relaxed) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down",
        ));
    }
    let to = match &body.to {
        Some(digest) => Some(state.runtime.component(digest).await?),
        None => None,
    };
    let record = state.runtime.fork(&id, body.from_step, body.id, to).await?;
    Ok((StatusCode::CREATED, view(record)?).into_response())
}

async fn metrics(State(state): State<Arc<ServerState>>) -> Result<Response, ApiError> {
    let store = state.runtime.store();
    let by_status = store.count_by_status().await?;
    let queues = store.queue_depths().await?;
    let text = state.runtime.metrics().render(&by_status, &queues);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}
