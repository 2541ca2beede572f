//! The rows the store reads and writes, as the runtime sees them.

use serde::{Deserialize, Serialize};

use crate::WorkflowStatus;

/// A workflow about to be created.
#[derive(Debug, Clone)]
pub struct NewWorkflow {
    /// Caller-chosen or generated; starting an existing id joins that workflow.
    pub id: String,
    /// The workflow's name in its component.
    pub name: String,
    /// JSON text.
    pub input: String,
    /// Who owns it for recovery.
    pub executor_id: String,
    /// Content digest of the component (the application version).
    pub app_version: String,
    /// The configured instance it runs on.
    pub instance: String,
    /// JSON object of the instance's config values.
    pub config: String,
    /// Recoveries allowed after the first execution.
    pub max_recovery_attempts: u32,
    /// Begin the first execution in the same commit (executions = 1, `started_at` = now): saves
    /// a round trip when the caller runs the workflow at once. Ignored when `queue_name` is set,
    /// since a queued workflow starts only when an executor claims it.
    pub begin_execution: bool,
    /// Queue to wait on: the workflow is inserted ENQUEUED and runs when claimed with
    /// [`Store::claim_queued`]. `None` starts it directly (PENDING).
    pub queue_name: Option<String>,
    /// Dispatch order within the queue: lower runs first.
    pub priority: i32,
    /// At most one ENQUEUED or PENDING workflow per queue may hold this id; inserting a second
    /// fails with [`StoreError::Duplicate`]. Only meaningful with a queue.
    pub deduplication_id: Option<String>,
    /// The workflow that started this one as a child, so it can be found from its parent.
    pub parent_workflow_id: Option<String>,
    /// Its time limit, counted from its first execution's start; past it, it is cancelled.
    pub timeout_ms: Option<u64>,
    /// A deadline it has from the start: its parent's. The earlier of this and the end of
    /// `timeout_ms` holds.
    pub deadline_at: Option<i64>,
    /// A delayed start: it stays ENQUEUED until this moment (ms), then its queue (or, without
    /// one, [`Store::claim_due`]) starts it.
    pub not_before: Option<i64>,
    /// For a schedule's firing: the time it was due (ms).
    pub scheduled_at: Option<i64>,
    /// Its partition of a partitioned queue (a tenant, say): the queue's limits hold per
    /// partition. `None` is a partition of its own.
    pub partition_key: Option<String>,
}

impl NewWorkflow {
    /// A workflow `name` of the component `app_version` with `input` (JSON text), owned by
    /// `executor_id`: on the `default` instance with no config values, 100 recoveries, started
    /// directly and not yet begun. Set the rest with struct update syntax.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        input: impl Into<String>,
        executor_id: impl Into<String>,
        app_version: impl Into<String>,
    ) -> Self {
        NewWorkflow {
            id: id.into(),
            name: name.into(),
            input: input.into(),
            executor_id: executor_id.into(),
            app_version: app_version.into(),
            instance: "default".into(),
            config: "{}".into(),
            max_recovery_attempts: 100,
            begin_execution: false,
            queue_name: None,
            priority: 0,
            deduplication_id: None,
            parent_workflow_id: None,
            timeout_ms: None,
            deadline_at: None,
            not_before: None,
            scheduled_at: None,
            partition_key: None,
        }
    }
}

impl NewWorkflow {
    /// The row [`ExecutionStore::insert_workflow_at`] writes for this workflow at `at` (ms)
    /// with no ending: what a start can run on before its row is written.
    ///
    /// [`ExecutionStore::insert_workflow_at`]: crate::ExecutionStore::insert_workflow_at
    pub fn record_at(&self, at: i64) -> WorkflowRecord {
        let initial = crate::written::initial_state(self, at);
        WorkflowRecord {
            id: self.id.clone(),
            name: self.name.clone(),
            status: initial.status,
            input: self.input.clone(),
            output: None,
            error: None,
            trap_class: None,
            trap_message: None,
            executor_id: self.executor_id.clone(),
            app_version: self.app_version.clone(),
            instance: self.instance.clone(),
            config: self.config.clone(),
            executions: u32::try_from(initial.executions).unwrap_or(0),
            traps: 0,
            max_recovery_attempts: self.max_recovery_attempts,
            created_at: at,
            updated_at: at,
            queue_name: self.queue_name.clone(),
            priority: self.priority,
            deduplication_id: self.deduplication_id.clone(),
            started_at: initial.started_at,
            parent_workflow_id: self.parent_workflow_id.clone(),
            trap_streak: 0,
            memory_limit: None,
            timeout_ms: self.timeout_ms,
            deadline_at: initial.deadline_at,
            not_before: self.not_before,
            scheduled_at: self.scheduled_at,
            epoch: 0,
            partition_key: self.partition_key.clone(),
            run: 0,
        }
    }
}

/// A workflow's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRecord {
    /// The workflow's id.
    pub id: String,
    /// The workflow's name in its component.
    pub name: String,
    /// Where it is in its lifecycle.
    pub status: WorkflowStatus,
    /// JSON text of the input.
    pub input: String,
    /// JSON text of the output, once it succeeded.
    pub output: Option<String>,
    /// The error, once it failed.
    pub error: Option<String>,
    /// Class of the last trap (`out_of_memory`, `stack_overflow`, `panic`, …), if any.
    pub trap_class: Option<String>,
    /// The last trap's message.
    pub trap_message: Option<String>,
    /// Who owns it for recovery.
    pub executor_id: String,
    /// Content digest of the component it runs on.
    pub app_version: String,
    /// The configured instance it runs on.
    pub instance: String,
    /// JSON object of the config values captured at its start.
    pub config: String,
    /// How many executions have begun (1 after the first start; n+1 after n recoveries).
    pub executions: u32,
    /// How many executions ended in a trap of the workflow's own instance; the rest of the
    /// recoveries followed a host crash or restart.
    pub traps: u32,
    /// Recoveries allowed after the first execution.
    pub max_recovery_attempts: u32,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Milliseconds since the Unix epoch of the last change.
    pub updated_at: i64,
    /// The queue the workflow was started on, kept after it is dispatched.
    pub queue_name: Option<String>,
    /// Dispatch order within its queue: lower first.
    pub priority: i32,
    /// At most one active workflow per queue holds it.
    pub deduplication_id: Option<String>,
    /// When the first execution began (ms): `None` while ENQUEUED or not yet started.
    pub started_at: Option<i64>,
    /// The workflow that started this one, for children.
    pub parent_workflow_id: Option<String>,
    /// Traps of `trap_class` in a row, ended by a trap of another class or a resume: what a
    /// trap policy's per-class bound counts.
    pub trap_streak: u32,
    /// The workflow's own memory limit, when its trap policy grew it or an operator set it on
    /// resume: the limit that finally worked stays recorded. `None`: its instance's limit.
    pub memory_limit: Option<u64>,
    /// Its time limit (ms), counted from its first execution's start.
    pub timeout_ms: Option<u64>,
    /// When it is cancelled if it has not ended (ms): set when its first execution began, or
    /// inherited from its parent.
    pub deadline_at: Option<i64>,
    /// A delayed start: not started before this moment (ms).
    pub not_before: Option<i64>,
    /// For a schedule's firing: the time it was due (ms).
    pub scheduled_at: Option<i64>,
    /// Its ownership epoch: one more on every execution begun, claim, adoption and resume.
    /// An execution's writes carry the epoch it began under and are refused once it moved on.
    pub epoch: u64,
    /// Its partition of a partitioned queue.
    pub partition_key: Option<String>,
    /// Its current run: 0, one more at each `continue_as_new`.
    #[serde(default)]
    pub run: u32,
}

impl WorkflowRecord {
    /// A row with `id` and `status` and plain values elsewhere, for tests to adjust.
    pub fn example(id: &str, status: WorkflowStatus) -> Self {
        WorkflowRecord {
            id: id.into(),
            name: "flow".into(),
            status,
            input: "null".into(),
            output: None,
            error: None,
            trap_class: None,
            trap_message: None,
            executor_id: "local".into(),
            app_version: "digest".into(),
            instance: "default".into(),
            config: "{}".into(),
            executions: 1,
            traps: 0,
            max_recovery_attempts: 1,
            created_at: 0,
            updated_at: 0,
            queue_name: None,
            priority: 0,
            deduplication_id: None,
            started_at: None,
            parent_workflow_id: None,
            trap_streak: 0,
            memory_limit: None,
            timeout_ms: None,
            deadline_at: None,
            not_before: None,
            scheduled_at: None,
            epoch: 0,
            partition_key: None,
            run: 0,
        }
    }
}

/// The final failure of a step, as stored (JSON) and replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFailureRecord {
    /// The last attempt's error.
    pub message: String,
    /// Every attempt's error, oldest first.
    pub attempt_errors: Vec<String>,
    /// Whether it failed because its attempts ran out.
    pub retries_exhausted: bool,
}

/// A step's recorded outcome at one position of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The workflow.
    pub workflow_id: String,
    /// Position in call order, from 0.
    pub function_id: u32,
    /// The step's recorded name.
    pub name: String,
    /// JSON text of the value, when the step succeeded.
    pub output: Option<String>,
    /// The failure, when it did not.
    pub error: Option<StepFailureRecord>,
    /// Attempts made in the execution that recorded it.
    pub attempts: u32,
    /// When its first attempt began (ms since the epoch).
    pub started_at: i64,
    /// When its outcome was committed (ms since the epoch).
    pub completed_at: i64,
    /// The ownership epoch of the execution writing it: the write is refused
    /// ([`StoreError::Fenced`]) once the workflow has another. `None` on rows read back and on
    /// writes no execution makes (tools, tests).
    #[serde(skip)]
    pub epoch: Option<u64>,
    /// Read back only: the epoch its workflow had when it was committed (`None` when a fork
    /// copied it). Older than the workflow's epoch means its latest execution replayed it.
    #[serde(skip)]
    pub committed_epoch: Option<u64>,
    /// The digest of the call's arguments the host saw (a child's workflow and input, a
    /// send's destination and topic, a wait's key, a sleep's length), checked on replay; none
    /// for a step and for rows written before digests were stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
}

/// How a workflow ended.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkflowEnd {
    /// JSON text of the output.
    Success(String),
    /// The error it returned.
    Error(String),
    /// The last trap, after too many recoveries.
    MaxRecoveryAttemptsExceeded(String),
    /// Not an end: its trap policy paused it for an operator, who resumes it (with new limits).
    Paused(String),
}

/// An execution begun: what [`Store::begin_execution`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Began {
    /// Executions begun so far, this one included.
    pub executions: u32,
    /// The ownership epoch this execution's writes carry.
    pub epoch: u64,
}

/// A trap that ended an execution, as recorded.
#[derive(Debug, Clone, Copy)]
pub struct TrapRecord<'a> {
    /// Its class (`out_of_memory`, …).
    pub class: &'a str,
    /// What the engine said.
    pub message: &'a str,
    /// The memory limit the next execution gets, when the trap policy grew it.
    pub memory_limit: Option<u64>,
    /// The ownership epoch of the execution that trapped (see [`StepRecord::epoch`]).
    pub epoch: Option<u64>,
}

/// Filter for listings; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct WorkflowFilter {
    /// Only this status.
    pub status: Option<WorkflowStatus>,
    /// Only this workflow name.
    pub name: Option<String>,
    /// At most this many rows.
    pub limit: Option<u32>,
    /// Only workflows started on this queue.
    pub queue: Option<String>,
    /// Only workflows created at or after this moment (ms since the Unix epoch).
    pub created_after: Option<i64>,
    /// Only workflows created before this moment (ms since the Unix epoch), exclusive, so
    /// consecutive windows do not overlap.
    pub created_before: Option<i64>,
    /// Rows to skip, for paging through a long listing.
    pub offset: Option<u32>,
    /// Only workflows on this instance.
    pub instance: Option<String>,
    /// Only workflows whose id contains this text.
    pub id_contains: Option<String>,
    /// Only the children of this workflow.
    pub parent: Option<String>,
    /// Only workflows running a component version whose digest starts with this.
    pub app_version: Option<String>,
}

/// A request to dispatch workflows waiting on one queue to one executor.
#[derive(Debug, Clone)]
pub struct QueueClaim {
    /// The queue.
    pub queue: String,
    /// The executor that will run what it claims; it becomes their owner for recovery.
    pub executor_id: String,
    /// Free local slots: the most workflows to claim.
    pub max: u32,
    /// Global limit on PENDING workflows of this queue across every executor.
    pub concurrency: Option<u32>,
    /// Global limit on how many workflows of this queue may start per window.
    pub rate_limit: Option<RateLimit>,
    /// The limits hold per partition, and partitions are served in turn.
    pub partitioned: bool,
}

/// At most `limit` starts in any window of `period_ms` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Starts allowed per window.
    pub limit: u32,
    /// The window's length.
    pub period_ms: i64,
}

/// How many workflows of a queue wait and run, for metrics and the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    /// The queue.
    pub queue: String,
    /// Workflows waiting.
    pub enqueued: u64,
    /// Workflows running (anywhere).
    pub pending: u64,
}

/// The result of an idempotent insert.
#[derive(Debug, Clone)]
pub struct Inserted {
    /// False when a workflow with that id already existed; `record` is then the existing one.
    pub created: bool,
    /// The new row, or the existing one.
    pub record: WorkflowRecord,
}
