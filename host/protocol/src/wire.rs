//! The admin API's request and response bodies. `reprise serve` answers with these types, this
//! client reads them and the CLI's `--json` output prints them, so the ends cannot drift apart.
//!
//! Workflow and step values (`input`, `output`) are the JSON values themselves, not JSON text.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Lifecycle of a workflow, named as in DBOS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", try_from = "String")]
pub enum WorkflowStatus {
    /// Waiting on a queue.
    Enqueued,
    /// Running, or interrupted and awaiting recovery.
    Pending,
    Success,
    Error,
    Cancelled,
    MaxRecoveryAttemptsExceeded,
    /// Stopped by its trap policy for an operator, who resumes it (with new limits). Not an
    /// end: waiters keep waiting.
    Paused,
}

impl WorkflowStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [WorkflowStatus; 7] = [
        WorkflowStatus::Enqueued,
        WorkflowStatus::Pending,
        WorkflowStatus::Success,
        WorkflowStatus::Error,
        WorkflowStatus::Cancelled,
        WorkflowStatus::MaxRecoveryAttemptsExceeded,
        WorkflowStatus::Paused,
    ];

    /// Terminal statuses are final: the workflow ended and never runs again on its own.
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            WorkflowStatus::Enqueued | WorkflowStatus::Pending | WorkflowStatus::Paused
        )
    }

    /// Whether nothing will run the workflow until someone acts: it ended, or it is paused.
    pub fn is_settled(self) -> bool {
        self.is_terminal() || self == WorkflowStatus::Paused
    }

    /// The spelling on the wire and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowStatus::Enqueued => "ENQUEUED",
            WorkflowStatus::Pending => "PENDING",
            WorkflowStatus::Success => "SUCCESS",
            WorkflowStatus::Error => "ERROR",
            WorkflowStatus::Cancelled => "CANCELLED",
            WorkflowStatus::MaxRecoveryAttemptsExceeded => "MAX_RECOVERY_ATTEMPTS_EXCEEDED",
            WorkflowStatus::Paused => "PAUSED",
        }
    }
}

impl fmt::Display for WorkflowStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is none of [`WorkflowStatus::ALL`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "unknown workflow status {0:?} (one of ENQUEUED, PENDING, SUCCESS, ERROR, CANCELLED, MAX_RECOVERY_ATTEMPTS_EXCEEDED, PAUSED)"
)]
pub struct UnknownStatus(pub String);

/// Case-insensitive, so `--status success` and `?status=success` work.
impl FromStr for WorkflowStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WorkflowStatus::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

impl TryFrom<String> for WorkflowStatus {
    type Error = UnknownStatus;
    fn try_from(s: String) -> Result<Self, UnknownStatus> {
        s.parse()
    }
}

/// `POST /workflows`: start a workflow, or enqueue it when `queue` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    pub workflow: String,
    #[serde(default)]
    pub input: Value,
    /// The configured instance to run on; needed when several define the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// An existing id joins that workflow instead of starting another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Dispatch order within the queue: lower runs first.
    #[serde(default)]
    pub priority: i32,
    /// At most one enqueued or running workflow per queue may hold it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplication_id: Option<String>,
    /// Its partition of a partitioned queue (a tenant, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<String>,
    /// A time limit from its first execution's start: past it, it ends CANCELLED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Start no sooner than this many milliseconds from now (it stays ENQUEUED until then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Start no sooner than this moment (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<i64>,
}

/// `POST /workflows/{id}/resume`; the body is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeBody {
    /// The workflow's memory limit from now on, in bytes (its instance's when never set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<u64>,
}

/// `POST /workflows/{id}/fork`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkBody {
    /// Steps before this position are replayed from the original; the rest run anew.
    pub from_step: u32,
    /// The new workflow's id (generated when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A stored component version (digest) the fork runs on instead of the original's; the
    /// positions it keeps must replay cleanly on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// `GET /workflows` filters, all optional; times in milliseconds since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<WorkflowStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_after: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_before: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Only workflows whose id contains this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Only the children of this workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Only workflows on a component version whose digest starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
}

/// A workflow as the API and `--json` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowView {
    pub id: String,
    pub name: String,
    pub status: WorkflowStatus,
    pub input: Value,
    /// The workflow's return value once it succeeded.
    pub output: Option<Value>,
    pub error: Option<String>,
    /// Class of the last trap (`out_of_memory`, `stack_overflow`, `panic`, …), if any.
    pub trap_class: Option<String>,
    pub trap_message: Option<String>,
    pub executor_id: String,
    /// Content digest of the component it runs on.
    pub app_version: String,
    pub instance: String,
    /// The instance's config values, captured at the start.
    pub config: BTreeMap<String, String>,
    /// How many executions have begun (1 after the first start; n+1 after n recoveries).
    pub executions: u32,
    /// How many executions ended in a trap of the workflow's own instance (the rest of the
    /// recoveries followed a host crash or restart).
    #[serde(default)]
    pub traps: u32,
    /// The workflow's own memory limit in bytes, when its trap policy grew it or a resume set
    /// it (the limit that finally worked); `None`: its instance's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<u64>,
    pub max_recovery_attempts: u32,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
    /// When the first execution began: `None` while enqueued.
    pub started_at: Option<i64>,
    /// The queue it was started on, kept after it is dispatched.
    pub queue_name: Option<String>,
    pub priority: i32,
    pub deduplication_id: Option<String>,
    /// Its partition of a partitioned queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<String>,
    /// Its current run: 0, one more each time it continued as new.
    #[serde(default)]
    pub run: u32,
    pub parent_workflow_id: Option<String>,
    /// Its time limit in ms, counted from its first execution's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// When it is cancelled unless it ended: its timeout's end, or its parent's deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_at: Option<i64>,
    /// A delayed start: not started before this moment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<i64>,
}

/// A step's recorded outcome at one position of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    pub workflow_id: String,
    /// Position in call order, from 0.
    pub function_id: u32,
    pub name: String,
    /// The step's return value, when it succeeded.
    pub output: Option<Value>,
    /// The failure, when it did not.
    pub error: Option<StepFailure>,
    /// Attempts made in the execution that recorded it.
    pub attempts: u32,
    pub started_at: i64,
    pub completed_at: i64,
    /// Whether the workflow's latest execution replayed this recorded outcome rather than ran
    /// it (it ran in an earlier execution, or a fork copied it).
    #[serde(default)]
    pub replayed: bool,
}

/// How a step finally failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFailure {
    pub message: String,
    /// Each attempt's error, in order.
    pub attempt_errors: Vec<String>,
    pub retries_exhausted: bool,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    /// Whether the rest of the API asks for the bearer token.
    #[serde(default)]
    pub token_required: bool,
    pub executor_id: String,
    /// Workflows running in this process (or waiting for an instance to run on).
    pub in_flight: u64,
    /// Workflows parked in a durable wait (a sleep, a child's end): they hold no instance.
    pub parked: u64,
    /// The instance pool.
    pub instances: InstanceHealth,
    /// Every configured queue (and any other holding workflows), by name.
    pub queues: Vec<QueueHealth>,
    /// Every executor that took a lease on this database, by id.
    #[serde(default)]
    pub executors: Vec<ExecutorView>,
}

/// An executor's lease and what it owns, as `/healthz` and `reprise executors` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorView {
    pub executor_id: String,
    /// When its process took the lease, in ms since the epoch.
    pub started_at: i64,
    /// How long ago it last renewed the lease, in ms.
    pub lease_age_ms: i64,
    /// How long its lease lasts unrenewed, in ms.
    pub lease_ms: i64,
    /// Whether its lease ran out: presumed dead.
    pub expired: bool,
    /// Its `PENDING` workflows.
    pub pending: u64,
}

/// The instance pool: executions beyond its capacity wait their turn (`waiting` is the
/// backlog).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceHealth {
    pub capacity: u64,
    pub in_use: u64,
    pub waiting: u64,
}

/// Whether the server takes new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    /// Shutting down: running work drains, new work is refused.
    Draining,
}

/// One queue's depth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueHealth {
    pub queue: String,
    pub enqueued: u64,
    pub pending: u64,
}

/// What a queue view from before `count_waiting` means: waiting workflows keep their slot.
fn kept() -> bool {
    true
}

/// `GET /queues`: a configured queue's limits and depth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueView {
    pub queue: String,
    /// Most running at once across all executors (per partition when partitioned).
    pub concurrency: Option<u32>,
    /// Most running at once in one process.
    pub worker_concurrency: Option<u32>,
    pub rate_limit: Option<RateLimitView>,
    pub partitioned: bool,
    /// Whether a workflow parked in a wait keeps its worker slot.
    #[serde(default = "kept")]
    pub count_waiting: bool,
    /// Waiting to start.
    pub enqueued: u64,
    /// Running, on any executor.
    pub pending: u64,
    /// Started by this server's dispatcher since it began (a counter: its rate is the queue's).
    pub started_here: u64,
    /// Mean wait from enqueue to start of those, in milliseconds.
    pub mean_wait_ms: Option<f64>,
}

/// At most `limit` starts per `period_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimitView {
    pub limit: u32,
    pub period_ms: u64,
}

/// `POST /workflows/{id}/messages`: a message to the workflow's topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    pub topic: String,
    pub message: Value,
    /// A second send with the same key to the same workflow stores nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// The answer to a send: 201 when stored, 200 when the idempotency key was seen before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageSent {
    pub workflow_id: String,
    pub topic: String,
    /// False when an earlier send with the same idempotency key stored it.
    pub stored: bool,
}

/// A message sent to a workflow, as `GET /workflows/{id}/messages` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageView {
    pub topic: String,
    pub message: Value,
    pub created_at: i64,
    /// When the workflow received it; `None` while it waits.
    pub consumed_at: Option<i64>,
    /// The position of the workflow's `recv` that received it.
    pub consumed_by: Option<u32>,
}

/// `GET /workflows/{id}/events/{key}`: 200 with the value once set, 202 without one when the
/// wait timed out first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventView {
    pub workflow_id: String,
    pub key: String,
    pub value: Option<Value>,
    pub updated_at: Option<i64>,
}

/// One value of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamValue {
    pub offset: u64,
    pub value: Value,
}

/// `GET /workflows/{id}/streams/{key}?offset=`: the values from the offset, where to read
/// next, and whether the stream has ended (closed, or its workflow ended).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamChunk {
    pub workflow_id: String,
    pub key: String,
    pub values: Vec<StreamValue>,
    pub next_offset: u64,
    pub closed: bool,
}

/// A stream of a workflow, as `GET /workflows/{id}/streams` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamInfoView {
    pub key: String,
    pub values: u64,
    pub closed: bool,
}

/// What a schedule does after downtime with the firings it missed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Skip them: the next firing is the next time to come.
    #[default]
    Skip,
    /// Run every one of them, oldest first.
    All,
}

impl CatchUp {
    /// The spelling in config, on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::Skip => "skip",
            CatchUp::All => "all",
        }
    }
}

impl FromStr for CatchUp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "skip" => Ok(CatchUp::Skip),
            "all" => Ok(CatchUp::All),
            other => Err(format!("catch_up {other:?}: expected \"skip\" or \"all\"")),
        }
    }
}

/// `POST /schedules`: a schedule to add.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    pub name: String,
    /// A cron expression with seconds (`sec min hour day month weekday [year]`), in UTC.
    pub cron: String,
    pub workflow: String,
    /// The configured instance to run on; needed when several define the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The input every firing gets.
    #[serde(default)]
    pub input: Value,
    /// Enqueue each firing on this queue instead of starting it at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default)]
    pub catch_up: CatchUp,
}

/// A schedule as the API and `reprise schedule list` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleView {
    pub name: String,
    pub cron: String,
    pub workflow: String,
    pub instance: String,
    pub input: Value,
    pub queue: Option<String>,
    pub catch_up: CatchUp,
    pub paused: bool,
    /// The scheduled time of its latest firing (ms since the epoch).
    pub last_fired: Option<i64>,
    /// When it fires next, unless paused.
    pub next_fire: Option<i64>,
}

/// `POST /schedules/{name}/backfill`: fire every time of the schedule in `[from, to)` (ms
/// since the epoch). Firings that already ran are not run again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillBody {
    pub from: i64,
    pub to: i64,
}

/// The workflows a trigger or a backfill started (or found started).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fired {
    pub workflow_ids: Vec<String>,
}

/// Every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    /// When a start named no instance and several define the workflow: their names, so a
    /// caller can ask its user to choose in its own terms (a CLI flag, a form field).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choose_instance: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_text_and_json() {
        for status in WorkflowStatus::ALL {
            assert_eq!(status.to_string().parse(), Ok(status));
            assert_eq!(status.as_str().to_lowercase().parse(), Ok(status));
            let json = serde_json::to_string(&status).expect("serialize");
            assert_eq!(json, format!("\"{status}\""));
            assert_eq!(
                serde_json::from_str::<WorkflowStatus>(&json).ok(),
                Some(status)
            );
        }
        let err = "DONE".parse::<WorkflowStatus>().expect_err("unknown");
        assert!(err.to_string().contains("\"DONE\""), "{err}");
    }

    #[test]
    fn a_start_body_with_an_unknown_field_is_refused() {
        let body = r#"{"workflow": "fib", "input": 3, "queues": "fib"}"#;
        let err = serde_json::from_str::<StartBody>(body).expect_err("typo");
        assert!(err.to_string().contains("queues"), "{err}");
    }
}
