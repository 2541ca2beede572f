//! The storage contract, split by role: what each part of the host needs from a database.
//! Every backend implements all of them; [`Store`] is the whole.

use async_trait::async_trait;

use crate::*;

/// The runtime's hot path: components, workflow rows, their history and checkpoints.
#[async_trait]
pub trait ExecutionStore: Send + Sync + 'static {
    /// Stores a component's bytes once, with the JSON of the message types it declares.
    async fn put_component(
        &self,
        digest: &str,
        bytes: &[u8],
        topics: Option<&str>,
    ) -> Result<(), StoreError>;
    /// The JSON of the message types a stored component declares; `None` when it declares
    /// none (or was stored before components kept them). What a send to its workflows is
    /// checked against.
    async fn component_topics(&self, digest: &str) -> Result<Option<String>, StoreError>;
    /// The bytes of a stored component.
    async fn get_component(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Creates the workflow unless its id exists (idempotency).
    async fn insert_workflow(&self, new: &NewWorkflow) -> Result<Inserted, StoreError>;
    /// Creates the workflow as it was at `at` (ms): the row [`NewWorkflow::record_at`] says,
    /// already ended with `end` when given, in one commit. An existing id is returned untouched.
    /// For a start whose code ran before its row was written: its first durable call writes
    /// the row, or, when it made none, its ending does.
    async fn insert_workflow_at(
        &self,
        new: &NewWorkflow,
        at: i64,
        end: Option<&WorkflowEnd>,
    ) -> Result<Inserted, StoreError>;
    /// A workflow's row, if it exists.
    async fn get_workflow(&self, id: &str) -> Result<Option<WorkflowRecord>, StoreError>;
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
    /// Cancels an active workflow whose deadline passed, with `reason` as its error; an ended
    /// one is left as it is. Returns its row.
    async fn expire_workflow(&self, id: &str, reason: &str) -> Result<WorkflowRecord, StoreError>;
    /// The rows of the given workflows in the order asked (missing ones left out): one query to
    /// wait on many workflows, including ones other processes run.
    async fn workflow_statuses(&self, ids: &[String]) -> Result<Vec<WorkflowRecord>, StoreError>;
    /// The ids of the workflows cancelled at `since` (ms) or later, by anyone: how a process
    /// finds, at a cost of what was cancelled, which of its executions to stop.
    async fn cancelled_since(&self, since: i64) -> Result<Vec<String>, StoreError>;
}

/// Who runs what: queue claims, delayed starts, executors' leases, adoption of a dead
/// executor's work.
#[async_trait]
pub trait DispatchStore: Send + Sync + 'static {
    /// PENDING workflows owned by an executor, oldest first.
    async fn pending_workflows(&self, executor_id: &str)
    -> Result<Vec<WorkflowRecord>, StoreError>;
    /// Dispatches up to `claim.max` ENQUEUED workflows of a queue to an executor, lowest
    /// priority value first, then oldest first, within the queue's global concurrency and rate
    /// limits. Atomic across processes sharing the database: no workflow is claimed twice. The
    /// claimed workflows are PENDING with their first execution begun (executions = 1), so the
    /// caller runs them without calling `begin_execution`.
    async fn claim_queued(&self, claim: &QueueClaim) -> Result<Vec<WorkflowRecord>, StoreError>;
    /// Starts up to `max` delayed workflows of no queue whose time has come (all of them, or
    /// just `only`), for `executor_id`: PENDING with their first execution begun, as a claim
    /// from a queue is. Atomic across processes: none is started twice.
    async fn claim_due(
        &self,
        executor_id: &str,
        max: u32,
        only: Option<&str>,
    ) -> Result<Vec<WorkflowRecord>, StoreError>;
    /// Takes or renews an executor's lease; `started_at` is when its process took it (ms).
    async fn renew_lease(
        &self,
        executor_id: &str,
        started_at: i64,
        lease_ms: i64,
    ) -> Result<(), StoreError>;
    /// Every executor that took a lease, with its lease and its `PENDING` workflows, and every
    /// executor that owns PENDING workflows but never took a lease (as long expired). With
    /// `lapsed`, PENDING workflows are counted only for leases run out at its `now` (0 for the
    /// others), and executors without a lease are listed only if it asks.
    async fn executors(&self, lapsed: Option<Lapsed>) -> Result<Vec<ExecutorRecord>, StoreError>;
    /// Takes up to `max` PENDING workflows of `dead` (all, or just `only`), an executor whose
    /// lease has run out or that never took one (the store checks it again), for `adopter`,
    /// oldest first: each gets `adopter` as its executor and a new epoch, so what `dead` still
    /// writes for them is refused. Atomic across processes: no workflow is adopted twice, and
    /// none if `dead` renewed its lease.
    async fn adopt_workflows(
        &self,
        dead: &str,
        adopter: &str,
        max: u32,
        only: Option<&str>,
    ) -> Result<Vec<WorkflowRecord>, StoreError>;
    /// The earliest time a delayed workflow of no queue is due, if any waits.
    async fn next_due(&self) -> Result<Option<i64>, StoreError>;
}

/// Messages, events and streams, and the changes that wake their waiters.
#[async_trait]
pub trait MailboxStore: Send + Sync + 'static {
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
    /// The version (component digest) a workflow runs; `None` for an unknown workflow.
    async fn workflow_version(&self, workflow_id: &str) -> Result<Option<String>, StoreError>;
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
    /// Bytes a workflow holds in the messages it sent, its events' values and its streams:
    /// what its quota bounds.
    async fn bytes_held(&self, workflow_id: &str) -> Result<u64, StoreError>;
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

/// Schedules and how far each has fired.
#[async_trait]
pub trait ScheduleStore: Send + Sync + 'static {
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
}

/// What operators do: list and count, cancel, resume, fork, delete past retention.
#[async_trait]
pub trait AdminStore: Send + Sync + 'static {
    /// Newest first.
    async fn list_workflows(
        &self,
        filter: &WorkflowFilter,
    ) -> Result<Vec<WorkflowRecord>, StoreError>;
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
}

/// Everything a backend stores, role by role: each part of the host takes the role it needs
/// (`&dyn MailboxStore`, say), and [`open_store`] hands out the whole. Implemented for every type
/// that implements all the roles.
pub trait Store:
    ExecutionStore
    + DispatchStore
    + MailboxStore
    + ScheduleStore
    + AdminStore
    + VersionStore
    + LimitStore
{
}

/// Step limits: the slots of steps whose concurrency or rate an instance bounds.
#[async_trait]
pub trait LimitStore: Send + Sync + 'static {
    /// Takes a slot for one execution of a limited step if its limits leave one now: the
    /// slot's id, or `None` (nothing written).
    async fn take_step_slot(&self, request: &StepSlotRequest) -> Result<Option<i64>, StoreError>;
    /// Gives a slot back: it no longer counts against the concurrency (it still counts against
    /// the rate until it is older than the window).
    async fn release_step_slot(&self, slot: i64) -> Result<(), StoreError>;
    /// Whether a take would find a slot now; writes nothing.
    async fn step_slot_free(&self, request: &StepSlotRequest) -> Result<bool, StoreError>;
}

/// The versions of components: which workflows run on which, and moving a workflow to another.
#[async_trait]
pub trait VersionStore: Send + Sync + 'static {
    /// Moves a PENDING or ENQUEUED workflow to component version `to`, if it still has
    /// ownership `epoch` and nothing recorded at or after `at`: in one transaction its version
    /// is switched, its epoch taken (any execution of it stops at its next write), and a
    /// `reprise.upgrade` record saying from and to which version is put at position `at`.
    /// Otherwise [`StoreError::ChangedWhileChecked`] and nothing changes.
    async fn upgrade_workflow(
        &self,
        id: &str,
        epoch: u64,
        at: u32,
        to: &str,
    ) -> Result<WorkflowRecord, StoreError>;
    /// Creates `workflow` as it is (its status, owner, creation time, memory limit) with its
    /// recorded `steps`, in one transaction: a workflow brought over from another database.
    /// An id that exists here is [`StoreError::WorkflowExists`] and nothing is written.
    async fn import_workflow(
        &self,
        workflow: &WorkflowRecord,
        steps: &[StepRecord],
    ) -> Result<(), StoreError>;
    /// Ends the current run of a PENDING workflow held under `epoch` and starts the next
    /// under the same id, in one transaction: the run's history is kept in `workflow_runs` (no
    /// longer replayed) and removed from its steps, the workflow gets `input`, version `to`,
    /// the next run number, a new epoch and a fresh count of executions and traps. Another
    /// epoch is [`StoreError::Fenced`] and nothing changes.
    async fn continue_as_new(
        &self,
        id: &str,
        epoch: u64,
        input: &str,
        to: &str,
    ) -> Result<WorkflowRecord, StoreError>;
    /// The finished runs of a workflow, oldest first.
    async fn runs(&self, id: &str) -> Result<Vec<RunRecord>, StoreError>;
    /// Names a stored component (the configured component it is a version of); a version
    /// keeps the first name it was given.
    async fn name_component(&self, digest: &str, name: &str) -> Result<(), StoreError>;
    /// Every stored component version, oldest first, with how many workflows in flight
    /// (PENDING or ENQUEUED) run on it.
    async fn component_versions(&self) -> Result<Vec<ComponentVersion>, StoreError>;
}

impl<T> Store for T where
    T: ExecutionStore
        + DispatchStore
        + MailboxStore
        + ScheduleStore
        + AdminStore
        + VersionStore
        + LimitStore
{
}

/// The roles, to bring their methods into scope: `use reprise_store::roles::*`.
pub mod roles {
    pub use crate::{
        AdminStore, DispatchStore, ExecutionStore, LimitStore, MailboxStore, ScheduleStore, Store,
        VersionStore,
    };
}
