//! The storage contract: what the runtime needs from a database, and nothing about WebAssembly.
//!
//! Tables mirror DBOS's system database (`workflow_status`, `operation_outputs`) plus the
//! components table that pins code by content digest. Every value is stored as JSON text so it
//! stays readable with `sqlite3`.

mod executors;
mod filter;
mod partitions;
pub mod postgres;
mod rows;
mod schedules;
mod shared;
mod sqlite;
mod waits;
mod waits_sql;
mod written;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use executors::ExecutorRecord;
pub use postgres::PostgresStore;
pub use schedules::{CatchUp, ScheduleRecord};
pub use sqlite::{Durability, SqliteStore};
pub use waits::{
    Change, EventRecord, MessageRecord, NewMessage, StreamEntry, StreamInfo, StreamRead, Waited,
};

/// Opens the store a database URL names: `postgres://…` or `postgresql://…` is a
/// [`PostgresStore`] (whose durability is Postgres's own `synchronous_commit`, so `durability`
/// is ignored); anything else (`sqlite:…` or a file path) is a [`SqliteStore`] with
/// `durability`.
pub async fn open_store(url: &str, durability: Durability) -> Result<Arc<dyn Store>, StoreError> {
    if is_postgres_url(url) {
        Ok(Arc::new(PostgresStore::open(url).await?))
    } else {
        Ok(Arc::new(SqliteStore::open(url, durability).await?))
    }
}

/// Whether `url` names a Postgres database rather than a SQLite file.
pub fn is_postgres_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// Errors from the storage layer; each names what failed so the CLI can say it plainly.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or created at all.
    #[error("cannot open database {url}: {source}")]
    Open {
        /// The database URL or path.
        url: String,
        #[source]
        /// Why.
        source: sqlx::Error,
    },
    /// Schema migration failed (a newer or foreign database).
    #[error("cannot migrate database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Another process holds the write lock longer than the busy timeout.
    #[error("database is locked by another process (busy timeout exceeded): {0}")]
    Locked(sqlx::Error),
    /// The database cannot be written: the disk is full, a size or file-size limit was reached,
    /// or the disk failed. What was being written is not stored.
    #[error("cannot write the database (disk full, size limit or I/O error): {0}")]
    Storage(sqlx::Error),
    /// The database file was deleted or replaced while the store had it open: commits since
    /// then went to a file that no name leads to and are lost when the process exits.
    #[error(
        "the database file {} was deleted or replaced while in use; what was written since is lost with it",
        .0.display()
    )]
    FileGone(std::path::PathBuf),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// A step outcome is already recorded at this position: another execution of the same
    /// workflow got there first.
    #[error("workflow {workflow_id}: step {function_id} is already recorded by another execution")]
    StepAlreadyRecorded {
        /// The workflow.
        workflow_id: String,
        /// The position.
        function_id: u32,
    },
    /// The write was made under an ownership epoch the workflow no longer has: another
    /// execution took it over (a host adopted it after this one's lease expired, or an
    /// operator resumed it). Nothing was written; the execution that holds `epoch` must stop.
    #[error(
        "workflow {workflow_id} was taken over by another execution (epoch {current}; this one \
         holds {epoch}): its write is refused and this execution stops"
    )]
    Fenced {
        /// The workflow.
        workflow_id: String,
        /// The epoch the refused write was made under.
        epoch: u64,
        /// The workflow's epoch now.
        current: u64,
    },
    /// The workflow does not exist.
    #[error("no workflow with id {0}")]
    UnknownWorkflow(String),
    /// A new workflow's id is taken where reusing it would be wrong (a fork must not join an
    /// existing workflow the way an idempotent start does).
    #[error("a workflow with id {0} already exists")]
    WorkflowExists(String),
    /// Another workflow holding this deduplication id is still ENQUEUED or PENDING on the queue:
    /// the caller asked for at most one at a time.
    #[error("deduplication id {deduplication_id} is already active on queue {queue}")]
    Duplicate {
        /// The queue.
        queue: String,
        /// The deduplication id.
        deduplication_id: String,
    },
    /// The workflow cannot be resumed from its status (it succeeded: running it again would
    /// repeat its effects for nothing).
    #[error("workflow {workflow_id} is {status} and cannot be resumed")]
    NotResumable {
        /// The workflow.
        workflow_id: String,
        /// Its status.
        status: WorkflowStatus,
    },
    /// A stored value does not parse (a hand-edited or corrupted row).
    #[error("corrupt row in {table}: {message}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A stored value does not decode as its column's type (a hand-edited or corrupted row);
    /// the source names the column.
    #[error("corrupt row in {table}: a stored value cannot be read")]
    CorruptValue {
        /// The table.
        table: &'static str,
        #[source]
        /// Why the value did not decode.
        source: sqlx::Error,
    },
    /// The workflow closed this stream: nothing more can be written to it.
    #[error("stream {key:?} of workflow {workflow_id} is closed")]
    StreamClosed {
        /// The workflow.
        workflow_id: String,
        /// The stream's key.
        key: String,
    },
    /// The background writer stopped (the store was closed or its task panicked).
    #[error("database writer has stopped")]
    WriterGone,
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            let message = db.message();
            if message.contains("database is locked") || message.contains("database is busy") {
                return StoreError::Locked(err);
            }
            if cannot_write(db.code().as_deref()) {
                return StoreError::Storage(err);
            }
        }
        StoreError::Database(err)
    }
}

/// Whether a database error code says the storage refused a write. SQLite's codes are numbers
/// (primary code in the low byte): SQLITE_IOERR (10, with its extended codes) and SQLITE_FULL
/// (13). Postgres's are SQLSTATEs: `53100` disk full, `58030` I/O error.
fn cannot_write(code: Option<&str>) -> bool {
    match code {
        Some("53100" | "58030") => true,
        Some(code) => code
            .parse::<i32>()
            .is_ok_and(|code| matches!(code & 0xff, 10 | 13)),
        None => false,
    }
}

/// Lifecycle of a workflow, named as in DBOS: one type for the database, the runtime and the
/// admin API, defined with the API's other types so the spellings cannot drift apart.
pub use reprise_client::wire::WorkflowStatus;

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

/// A workflow's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
}

#[cfg(test)]
impl WorkflowRecord {
    /// A row with `id` and `status` and plain values elsewhere, for unit tests to adjust.
    pub(crate) fn example(id: &str, status: WorkflowStatus) -> Self {
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// What the runtime needs from a database. One implementation per backend.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a component's bytes by digest; storing the same digest twice is a no-op.
    async fn put_component(&self, digest: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// The bytes of a stored component.
    async fn get_component(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Creates the workflow unless its id exists (idempotency).
    async fn insert_workflow(&self, new: &NewWorkflow) -> Result<Inserted, StoreError>;
    /// A workflow's row, if it exists.
    async fn get_workflow(&self, id: &str) -> Result<Option<WorkflowRecord>, StoreError>;
    /// Newest first.
    async fn list_workflows(
        &self,
        filter: &WorkflowFilter,
    ) -> Result<Vec<WorkflowRecord>, StoreError>;
    /// A workflow's recorded steps in call order.
    async fn steps(&self, workflow_id: &str) -> Result<Vec<StepRecord>, StoreError>;
    /// Marks the start of an execution (first run or recovery) by `executor_id`, durably, if
    /// the workflow still has ownership epoch `epoch` (the one its caller read); returns the new
    /// execution count and epoch. Sets status PENDING. Another owner meanwhile (an adoption, a
    /// second recovery) is [`StoreError::Fenced`]: exactly one of them runs it.
    async fn begin_execution(
        &self,
        workflow_id: &str,
        executor_id: &str,
        epoch: u64,
    ) -> Result<Began, StoreError>;
    /// Commits a step outcome. Concurrent calls share one commit.
    async fn record_step(&self, step: &StepRecord) -> Result<(), StoreError>;
    /// Records the class and message of the trap that ended an execution and counts it (and
    /// the run of traps of its class); a grown memory limit is kept for the next execution.
    async fn record_trap(&self, workflow_id: &str, trap: &TrapRecord<'_>)
    -> Result<(), StoreError>;
    /// Ends a workflow and returns its final row. A workflow that already ended keeps its first
    /// ending, which is returned. With `epoch`, an active workflow that has another epoch is
    /// [`StoreError::Fenced`] and stays as it is.
    async fn finish_workflow(
        &self,
        workflow_id: &str,
        end: &WorkflowEnd,
        epoch: Option<u64>,
    ) -> Result<WorkflowRecord, StoreError>;
    /// PENDING workflows owned by an executor, oldest first.
    async fn pending_workflows(&self, executor_id: &str)
    -> Result<Vec<WorkflowRecord>, StoreError>;
    /// Dispatches up to `claim.max` ENQUEUED workflows of a queue to an executor, lowest
    /// priority value first, then oldest first, within the queue's global concurrency and rate
    /// limits. Atomic across processes sharing the database: no workflow is claimed twice. The
    /// claimed workflows are PENDING with their first execution begun (executions = 1), so the
    /// caller runs them without calling `begin_execution`.
    async fn claim_queued(&self, claim: &QueueClaim) -> Result<Vec<WorkflowRecord>, StoreError>;
    /// ENQUEUED and PENDING counts of every queue that has any, by queue name.
    async fn queue_depths(&self) -> Result<Vec<QueueDepth>, StoreError>;
    /// How many workflows are in each status; statuses with none are left out.
    async fn count_by_status(&self) -> Result<Vec<(WorkflowStatus, u64)>, StoreError>;
    /// Cancels an ENQUEUED or PENDING workflow and returns its row. A workflow that already
    /// ended is left as it is (its row is returned), so cancelling twice is harmless. A running
    /// execution notices on its next checkpoint.
    async fn cancel_workflow(&self, id: &str) -> Result<WorkflowRecord, StoreError>;
    /// Deletes up to `max` ended workflows (SUCCESS, ERROR, CANCELLED,
    /// MAX_RECOVERY_ATTEMPTS_EXCEEDED) last changed before `cutoff` (ms since the epoch), with
    /// their steps, in one short transaction; returns how many. Never an active one, nor a
    /// child whose parent is active. An id deleted can be started again as a new workflow.
    async fn delete_ended(&self, cutoff: i64, max: u32) -> Result<u32, StoreError>;
    /// Makes a cancelled, failed, paused or stuck workflow PENDING again under `executor_id`,
    /// with its execution and trap counts and error reset, so the caller can run it from its
    /// recorded steps; `memory_limit` replaces its memory limit. An ENQUEUED one is started at
    /// once, skipping its queue. A SUCCESS is [`StoreError::NotResumable`].
    async fn resume_workflow(
        &self,
        id: &str,
        executor_id: &str,
        memory_limit: Option<u64>,
    ) -> Result<WorkflowRecord, StoreError>;
    /// Copies a workflow to `new_id` as a fresh PENDING workflow that keeps the recorded steps
    /// before `from_step`, so it replays them and runs the rest anew. Off any queue.
    async fn fork_workflow(
        &self,
        id: &str,
        new_id: &str,
        from_step: u32,
    ) -> Result<WorkflowRecord, StoreError>;
    /// Starts up to `max` delayed workflows of no queue whose time has come (all of them, or
    /// just `only`), for `executor_id`: PENDING with their first execution begun, as a claim
    /// from a queue is. Atomic across processes: none is started twice.
    async fn claim_due(
        &self,
        executor_id: &str,
        max: u32,
        only: Option<&str>,
    ) -> Result<Vec<WorkflowRecord>, StoreError>;
    /// Adds a schedule; false when one of its name exists. With `replace` (a config's
    /// schedules at start), an existing one takes the new definition, keeping its pause and
    /// its last firing.
    async fn put_schedule(
        &self,
        schedule: &ScheduleRecord,
        replace: bool,
    ) -> Result<bool, StoreError>;
    /// Every schedule, by name.
    async fn schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError>;
    /// One schedule.
    async fn get_schedule(&self, name: &str) -> Result<Option<ScheduleRecord>, StoreError>;
    /// Pauses or resumes a schedule; false when there is none of that name.
    async fn pause_schedule(&self, name: &str, paused: bool) -> Result<bool, StoreError>;
    /// Deletes a schedule, leaving its firings' workflows; false when there is none.
    async fn delete_schedule(&self, name: &str) -> Result<bool, StoreError>;
    /// Records that a schedule fired for `fired` (ms): its last firing moves forward only.
    async fn advance_schedule(&self, name: &str, fired: i64) -> Result<(), StoreError>;
    /// Takes or renews an executor's lease; `started_at` is when its process took it (ms).
    async fn renew_lease(
        &self,
        executor_id: &str,
        started_at: i64,
        lease_ms: i64,
    ) -> Result<(), StoreError>;
    /// Every executor that took a lease, with its lease and its `PENDING` workflows.
    async fn executors(&self) -> Result<Vec<ExecutorRecord>, StoreError>;
    /// Takes up to `max` PENDING workflows of `dead`, an executor whose lease has run out (the
    /// store checks it again), for `adopter`, oldest first: each gets `adopter` as its
    /// executor and a new epoch, so what `dead` still writes for them is refused. Atomic across
    /// processes: no workflow is adopted twice, and none if `dead` renewed its lease.
    async fn adopt_workflows(
        &self,
        dead: &str,
        adopter: &str,
        max: u32,
    ) -> Result<Vec<WorkflowRecord>, StoreError>;
    /// The earliest time a delayed workflow of no queue is due, if any waits.
    async fn next_due(&self) -> Result<Option<i64>, StoreError>;
    /// Cancels an active workflow whose deadline passed, with `reason` as its error; an ended
    /// one is left as it is. Returns its row.
    async fn expire_workflow(&self, id: &str, reason: &str) -> Result<WorkflowRecord, StoreError>;
    /// The rows of the given workflows in the order asked (missing ones left out): one query to
    /// wait on many workflows, including ones other processes run.
    async fn workflow_statuses(&self, ids: &[String]) -> Result<Vec<WorkflowRecord>, StoreError>;

    /// Sends a message unless one with its `message_id` was sent to its destination before;
    /// returns whether it is new. With `record`, the sending workflow's position is recorded
    /// in the same commit. An unknown destination is [`StoreError::UnknownWorkflow`] and
    /// nothing is written.
    async fn send_message(
        &self,
        message: &NewMessage,
        record: Option<&StepRecord>,
    ) -> Result<bool, StoreError>;
    /// Consumes the oldest message on a workflow's topic and records it at `at` (its output
    /// becomes [`Waited::Value`]) in one commit, so a message is received once. With none
    /// waiting: when `timed_out`, records [`Waited::TimedOut`] at `at`; otherwise writes
    /// nothing.
    async fn receive_message(
        &self,
        workflow_id: &str,
        topic: &str,
        at: &StepRecord,
        timed_out: bool,
    ) -> Result<Option<String>, StoreError>;
    /// Whether a message waits unconsumed on the workflow's topic.
    async fn has_message(&self, workflow_id: &str, topic: &str) -> Result<bool, StoreError>;
    /// Every message sent to the workflow, consumed or not, in send order.
    async fn messages(&self, workflow_id: &str) -> Result<Vec<MessageRecord>, StoreError>;
    /// Sets the latest value (JSON text) of a workflow's event, with `record` in the same
    /// commit.
    async fn set_event(
        &self,
        workflow_id: &str,
        key: &str,
        value: &str,
        record: Option<&StepRecord>,
    ) -> Result<(), StoreError>;
    /// The latest value of a workflow's event; `None` while it was never set.
    async fn get_event(
        &self,
        workflow_id: &str,
        key: &str,
    ) -> Result<Option<EventRecord>, StoreError>;
    /// Every event of a workflow, by key.
    async fn events(&self, workflow_id: &str) -> Result<Vec<EventRecord>, StoreError>;
    /// Appends a value (JSON text) to a workflow's stream, or closes it with `None`, with
    /// `record` in the same commit; returns the offset written. A closed stream refuses
    /// ([`StoreError::StreamClosed`]).
    async fn write_stream(
        &self,
        workflow_id: &str,
        key: &str,
        value: Option<&str>,
        record: Option<&StepRecord>,
    ) -> Result<u64, StoreError>;
    /// Up to `max` values of a stream from `offset`, and whether the stream has ended there
    /// (closed, or its workflow ended).
    async fn read_stream(
        &self,
        workflow_id: &str,
        key: &str,
        offset: u64,
        max: u32,
    ) -> Result<StreamRead, StoreError>;
    /// The streams a workflow wrote.
    async fn streams(&self, workflow_id: &str) -> Result<Vec<StreamInfo>, StoreError>;
    /// Messages sent, events set and stream values written since `since` (ms), by anyone:
    /// how waiters in this process hear of another's writes.
    async fn changes_since(&self, since: i64) -> Result<Vec<Change>, StoreError>;
    /// Other processes' changes as they commit, where the database pushes them (Postgres's
    /// `LISTEN`); `None` where waiters must poll [`Store::changes_since`] instead.
    fn change_feed(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Change>> {
        None
    }
}

/// Milliseconds since the Unix epoch, the unit of every stored timestamp.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::is_postgres_url;

    #[test]
    fn postgres_urls_are_told_from_sqlite_locations() {
        assert!(is_postgres_url("postgres://u@h/db"));
        assert!(is_postgres_url("postgresql://h:5432/db"));
        assert!(is_postgres_url("PostgreSQL://h/db"));
        assert!(!is_postgres_url("sqlite://reprise.db"));
        assert!(!is_postgres_url("reprise.db"));
        assert!(!is_postgres_url("postgres.db"));
    }
}
