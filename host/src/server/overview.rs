//! The admin API's overview of the whole system, which the web UI's header and queues page
//! read: workflows counted by status, and each queue's limits, depth and starts.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use reprise_protocol::wire::{QueueView, RateLimitView};

use super::{ApiError, ServerState};
use crate::node::queue::QueueOptions;

/// The routes, guarded like the rest of the API.
pub(super) fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/counts", get(counts))
        .route("/queues", get(queues))
}

/// Workflows by status, every status present (zero when none has it).
async fn counts(
    State(state): State<Arc<ServerState>>,
) -> Result<Json<BTreeMap<String, u64>>, ApiError> {
    let mut counts: BTreeMap<String, u64> = reprise_store::WorkflowStatus::ALL
        .iter()
        .map(|status| (status.as_str().to_string(), 0))
        .collect();
    for (status, workflows) in state.runtime.store().count_by_status().await? {
        counts.insert(status.as_str().to_string(), workflows);
    }
    Ok(Json(counts))
}

/// The configured queues, and any other queue the database holds work for (another host's).
async fn queues(State(state): State<Arc<ServerState>>) -> Result<Json<Vec<QueueView>>, ApiError> {
    let unlimited = QueueOptions::default();
    let mut views: BTreeMap<String, QueueView> = state
        .queues
        .iter()
        .map(|(name, config)| (name.clone(), queue_view(&state, name, config)))
        .collect();
    for depth in state.runtime.store().queue_depths().await? {
        let view = views
            .entry(depth.queue.clone())
            .or_insert_with(|| queue_view(&state, &depth.queue, &unlimited));
        view.enqueued = depth.enqueued;
        view.pending = depth.pending;
    }
    Ok(Json(views.into_values().collect()))
}

/// A queue's view with no depth yet.
fn queue_view(state: &ServerState, name: &str, config: &QueueOptions) -> QueueView {
    let starts = state.runtime.metrics().queue_starts(name);
    QueueView {
        queue: name.to_string(),
        concurrency: config.concurrency,
        worker_concurrency: config.worker_concurrency,
        rate_limit: config.rate_limit.as_ref().map(|rate| RateLimitView {
            limit: rate.limit,
            period_ms: u64::try_from(rate.period_ms).unwrap_or(0),
        }),
        partitioned: config.partitioned,
        count_waiting: config.count_waiting,
        enqueued: 0,
        pending: 0,
        started_here: starts.map_or(0, |(count, _)| count),
        mean_wait_ms: starts.map(|(_, mean)| mean.as_secs_f64() * 1e3),
    }
}
