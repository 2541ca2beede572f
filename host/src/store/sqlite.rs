//! The embedded SQLite backend: one file, no server, checkpoints that survive a crash.
//!
//! SQLite allows one writer at a time and a commit costs an fsync, so every write goes through a
//! single background task that owns the only writing connection. It takes whatever requests are
//! queued (up to [`MAX_BATCH`]), runs them in one transaction and commits once: concurrent
//! workflows' checkpoints share one fsync (group commit) instead of queueing on the file lock.
//! A request that arrives alone runs in autocommit mode, which saves the BEGIN and COMMIT round
//! trips on the sequential path. Reads go through a small pool of read-only connections, which
//! WAL lets run beside the writer.

use std::fmt;
use std::io;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Row, Sqlite};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::filter::push_filter_clauses;
use super::rows::{Columns, step_from_row, to_u32, to_u64, workflow_from_row};
use super::{
    Inserted, NewWorkflow, QueueClaim, QueueDepth, StepRecord, Store, StoreError, WorkflowEnd,
    WorkflowFilter, WorkflowRecord, WorkflowStatus, now_ms,
};

/// Most requests committed together: bounds the time one transaction holds the write lock and
/// the memory of one batch, while still letting hundreds of workflows share an fsync.
const MAX_BATCH: usize = 512;
/// How long to wait for another process's write lock before reporting `StoreError::Locked`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Readers needed at once are few (CLI listings, recovery scans, replays).
const READ_POOL_SIZE: u32 = 4;
/// Requests that may wait for the writer before callers feel back-pressure.
const QUEUE_DEPTH: usize = 4 * MAX_BATCH;

/// Embedded migrations; the path is relative to host/Cargo.toml.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// How much of a commit must reach the disk before a step counts as recorded: the trade between
/// surviving a power cut and per-step latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Every commit is fsynced (`synchronous=FULL`): a recorded step survives a power cut or an
    /// OS crash. Costs one fsync per commit, shared by all requests of a batch.
    #[default]
    Synced,
    /// Commits survive the process crashing but not the machine (`synchronous=NORMAL` in WAL):
    /// the last commits before a power cut may be lost. Much faster on slow disks.
    Process,
}

impl Durability {
    /// The spelling used in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Synced => "synced",
            Durability::Process => "process",
        }
    }

    fn synchronous(self) -> SqliteSynchronous {
        match self {
            Durability::Synced => SqliteSynchronous::Full,
            Durability::Process => SqliteSynchronous::Normal,
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "synced" => Ok(Durability::Synced),
            "process" => Ok(Durability::Process),
            other => Err(format!(
                "unknown durability {other:?}: expected \"synced\" or \"process\""
            )),
        }
    }
}

/// A [`Store`] in one SQLite file, for a single host process (or a few on one machine).
///
/// Dropping it stops the writer once the requests already queued are done; use
/// [`SqliteStore::close`] to wait for that.
pub struct SqliteStore {
    reads: SqlitePool,
    writes: mpsc::Sender<Request>,
    writer: JoinHandle<()>,
    commits: Arc<AtomicU64>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("commits", &self.commits())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating on first use) the database at `url_or_path` and brings its schema up to
    /// date, so a fresh path is all a user needs to start.
    ///
    /// Accepts `sqlite://path`, `sqlite:path` or a plain file path. Must be called inside a Tokio
    /// runtime: it spawns the writer task there.
    pub async fn open(url_or_path: &str, durability: Durability) -> Result<Self, StoreError> {
        let base = if url_or_path.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url_or_path).map_err(|source| StoreError::Open {
                url: url_or_path.to_owned(),
                source,
            })?
        } else {
            SqliteConnectOptions::new().filename(url_or_path)
        };
        Self::open_with(url_or_path, base, durability).await
    }

    /// `open` once the location is parsed; tests add pragmas to `base` here.
    async fn open_with(
        url_or_path: &str,
        base: SqliteConnectOptions,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            url: url_or_path.to_owned(),
            source,
        };
        let options = base
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(durability.synchronous())
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        check_parent_directory(options.get_filename()).map_err(open_error)?;

        let mut writer = SqliteConnection::connect_with(&options)
            .await
            .map_err(open_error)?;
        MIGRATOR.run(&mut writer).await?;

        // Readers can never take the write lock by accident, so they never contend with the
        // writer for it.
        let options = options.create_if_missing(false);
        let reads = SqlitePoolOptions::new()
            .max_connections(READ_POOL_SIZE)
            .min_connections(0)
            .connect_with(options.clone().pragma("query_only", "ON"))
            .await
            .map_err(open_error)?;

        let commits = Arc::new(AtomicU64::new(0));
        let (writes, queue) = mpsc::channel(QUEUE_DEPTH);
        let writer = Writer {
            options,
            conn: Some(writer),
            commits: Arc::clone(&commits),
        };
        let writer = tokio::spawn(writer.run(queue));
        tracing::debug!(url = url_or_path, %durability, "opened sqlite store");
        Ok(SqliteStore {
            reads,
            writes,
            writer,
            commits,
        })
    }

    /// Transactions committed by the writer so far. Requests per commit shows how well group
    /// commit is working; useful for tests and metrics.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Finishes the queued writes, then closes every connection, so the WAL is checkpointed and
    /// the file is left tidy before the process exits.
    pub async fn close(self) {
        let SqliteStore {
            reads,
            writes,
            writer,
            ..
        } = self;
        drop(writes);
        if let Err(err) = writer.await {
            tracing::error!(error = %err, "sqlite writer task failed");
        }
        reads.close().await;
    }

    /// Sends a request to the writer and waits until it is committed (or failed).
    async fn write<T>(&self, request: impl FnOnce(Reply<T>) -> Request) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writes
            .send(request(reply))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// Refuses a path whose directory is missing up front: SQLite would only say "unable to open
/// database file", which does not tell the user what is wrong.
fn check_parent_directory(file: &Path) -> Result<(), sqlx::Error> {
    let Some(parent) = file.parent() else {
        return Ok(());
    };
    if parent.as_os_str().is_empty() || parent.is_dir() {
        return Ok(());
    }
    Err(sqlx::Error::InvalidArgument(format!(
        "directory {} does not exist",
        parent.display()
    )))
}

// ---------------------------------------------------------------------------------------------
// The writer
// ---------------------------------------------------------------------------------------------

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A write, owning its data so it can cross to the writer task.
enum Request {
    PutComponent {
        digest: String,
        bytes: Vec<u8>,
        reply: Reply<()>,
    },
    InsertWorkflow {
        // Boxed: a new workflow is the largest request by far, and every slot of the queue
        // (filled mostly with steps) would otherwise be as large.
        new: Box<NewWorkflow>,
        reply: Reply<Inserted>,
    },
    BeginExecution {
        workflow_id: String,
        executor_id: String,
        reply: Reply<u32>,
    },
    RecordStep {
        step: StepRow,
        reply: Reply<()>,
    },
    RecordTrap {
        workflow_id: String,
        class: String,
        message: String,
        reply: Reply<()>,
    },
    Finish {
        workflow_id: String,
        end: WorkflowEnd,
        reply: Reply<WorkflowRecord>,
    },
    ClaimQueued {
        claim: QueueClaim,
        reply: Reply<Vec<WorkflowRecord>>,
    },
    Cancel {
        workflow_id: String,
        reply: Reply<WorkflowRecord>,
    },
    Resume {
        workflow_id: String,
        executor_id: String,
        reply: Reply<WorkflowRecord>,
    },
    Fork {
        workflow_id: String,
        new_id: String,
        from_step: u32,
        reply: Reply<WorkflowRecord>,
    },
}

/// A step as stored: the failure already serialised by the caller, off the writer's path.
struct StepRow {
    workflow_id: String,
    function_id: u32,
    name: String,
    output: Option<String>,
    error: Option<String>,
    attempts: u32,
    started_at: i64,
    completed_at: i64,
}

/// A request that has run inside the open transaction; its answer is held back until the
/// commit decides whether it stands.
enum Outcome {
    Unit(Reply<()>, Result<(), StoreError>),
    Count(Reply<u32>, Result<u32, StoreError>),
    // Boxed: an insert's record is large and rare next to the steps that fill most batches.
    Inserted(Reply<Inserted>, Box<Result<Inserted, StoreError>>),
    Record(
        Reply<WorkflowRecord>,
        Box<Result<WorkflowRecord, StoreError>>,
    ),
    Records(
        Reply<Vec<WorkflowRecord>>,
        Result<Vec<WorkflowRecord>, StoreError>,
    ),
}

impl Outcome {
    fn error(&self) -> Option<&StoreError> {
        match self {
            Outcome::Unit(_, Err(e)) | Outcome::Count(_, Err(e)) | Outcome::Records(_, Err(e)) => {
                Some(e)
            }
            Outcome::Inserted(_, result) => result.as_ref().as_ref().err(),
            Outcome::Record(_, result) => result.as_ref().as_ref().err(),
            _ => None,
        }
    }

    /// Replaces a success with `err`: the transaction that held it did not commit. A request
    /// that had already failed keeps its own, more precise error.
    fn fail(&mut self, err: impl FnOnce() -> StoreError) {
        match self {
            Outcome::Unit(_, r @ Ok(_)) => *r = Err(err()),
            Outcome::Count(_, r @ Ok(_)) => *r = Err(err()),
            Outcome::Records(_, r @ Ok(_)) => *r = Err(err()),
            Outcome::Inserted(_, r) if r.is_ok() => **r = Err(err()),
            Outcome::Record(_, r) if r.is_ok() => **r = Err(err()),
            _ => {}
        }
    }

    /// A caller that stopped waiting does not matter to anyone else, so send errors are ignored.
    fn send(self) {
        match self {
            Outcome::Unit(reply, result) => drop(reply.send(result)),
            Outcome::Count(reply, result) => drop(reply.send(result)),
            Outcome::Inserted(reply, result) => drop(reply.send(*result)),
            Outcome::Record(reply, result) => drop(reply.send(*result)),
            Outcome::Records(reply, result) => drop(reply.send(result)),
        }
    }
}

impl Request {
    /// Answers without running: the batch failed before this request's turn.
    fn reject(self, err: StoreError) {
        match self {
            Request::PutComponent { reply, .. }
            | Request::RecordStep { reply, .. }
            | Request::RecordTrap { reply, .. } => drop(reply.send(Err(err))),
            Request::Finish { reply, .. }
            | Request::Cancel { reply, .. }
            | Request::Resume { reply, .. }
            | Request::Fork { reply, .. } => drop(reply.send(Err(err))),
            Request::ClaimQueued { reply, .. } => drop(reply.send(Err(err))),
            Request::InsertWorkflow { reply, .. } => drop(reply.send(Err(err))),
            Request::BeginExecution { reply, .. } => drop(reply.send(Err(err))),
        }
    }

    /// Whether the request must run inside a transaction even when it arrives alone: its
    /// statements only make sense together (a fork's row and its copied steps), or a read
    /// that explains a write that matched nothing must see the same state. All are rare admin
    /// operations, so the BEGIN and COMMIT round trips do not matter there.
    fn needs_transaction(&self) -> bool {
        matches!(
            self,
            Request::Cancel { .. } | Request::Resume { .. } | Request::Fork { .. }
        )
    }

    /// Runs the request's statements in the writer's open transaction.
    async fn apply(self, conn: &mut SqliteConnection) -> Outcome {
        match self {
            Request::PutComponent {
                digest,
                bytes,
                reply,
            } => Outcome::Unit(reply, put_component(conn, digest, bytes).await),
            Request::InsertWorkflow { new, reply } => {
                Outcome::Inserted(reply, Box::new(insert_workflow(conn, new).await))
            }
            Request::BeginExecution {
                workflow_id,
                executor_id,
                reply,
            } => Outcome::Count(reply, begin_execution(conn, workflow_id, executor_id).await),
            Request::RecordStep { step, reply } => {
                Outcome::Unit(reply, record_step(conn, step).await)
            }
            Request::RecordTrap {
                workflow_id,
                class,
                message,
                reply,
            } => Outcome::Unit(reply, record_trap(conn, workflow_id, class, message).await),
            Request::Finish {
                workflow_id,
                end,
                reply,
            } => Outcome::Record(
                reply,
                Box::new(finish_workflow(conn, workflow_id, end).await),
            ),
            Request::ClaimQueued { claim, reply } => {
                Outcome::Records(reply, claim_queued(conn, claim).await)
            }
            Request::Cancel { workflow_id, reply } => {
                Outcome::Record(reply, Box::new(cancel_workflow(conn, workflow_id).await))
            }
            Request::Resume {
                workflow_id,
                executor_id,
                reply,
            } => Outcome::Record(
                reply,
                Box::new(resume_workflow(conn, workflow_id, executor_id).await),
            ),
            Request::Fork {
                workflow_id,
                new_id,
                from_step,
                reply,
            } => Outcome::Record(
                reply,
                Box::new(fork_workflow(conn, workflow_id, new_id, from_step).await),
            ),
        }
    }
}

/// The background task that owns the writing connection until every sender is gone.
struct Writer {
    /// To reconnect when the connection can no longer be trusted.
    options: SqliteConnectOptions,
    /// `None` after a failure, until the next batch reconnects.
    conn: Option<SqliteConnection>,
    commits: Arc<AtomicU64>,
}

impl Writer {
    async fn run(mut self, mut queue: mpsc::Receiver<Request>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        // `recv_many` waits for the first request, then takes whatever else is already queued.
        while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
            if self.conn.is_none() {
                match SqliteConnection::connect_with(&self.options).await {
                    Ok(conn) => self.conn = Some(conn),
                    Err(err) => {
                        tracing::error!(error = %err, "cannot reopen the sqlite writer connection");
                        reject_all(&mut batch, StoreError::from(err));
                        continue;
                    }
                }
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            if !write_batch(conn, &mut batch, &self.commits).await {
                // A transaction SQLite rolled back on its own leaves sqlx believing it is
                // still open, and a crashed worker stays crashed: start afresh rather than fail
                // every later write.
                tracing::warn!("reopening the sqlite writer connection after a failure");
                if let Some(conn) = self.conn.take() {
                    drop(conn.close().await);
                }
            }
        }
        if let Some(conn) = self.conn.take()
            && let Err(err) = conn.close().await
        {
            tracing::warn!(error = %err, "closing the sqlite writer connection failed");
        }
        tracing::debug!("sqlite writer stopped");
    }
}

/// Answers every request of `batch` with `cause` (one gets the original, the others a copy).
fn reject_all(batch: &mut Vec<Request>, cause: StoreError) {
    let copy = echo(&cause);
    if let Some(last) = batch.pop() {
        for request in batch.drain(..) {
            request.reject(copy());
        }
        last.reject(cause);
    }
}

/// Whether the connection is still fit for the next batch: no transaction left open, worker
/// alive.
fn still_usable(conn: &SqliteConnection, errors: &[Option<&StoreError>]) -> bool {
    !errors.iter().flatten().any(|err| is_crash(err)) && !conn.is_in_transaction()
}

/// Whether the connection's worker thread is gone, taking the connection with it.
fn is_crash(err: &StoreError) -> bool {
    matches!(
        err,
        StoreError::Database(sqlx::Error::WorkerCrashed)
            | StoreError::Locked(sqlx::Error::WorkerCrashed)
    )
}

/// Runs `batch` in one transaction with one commit, then answers every request. Returns whether
/// the connection is still usable.
/// A batch in the order it is written: new workflows first (so a request that follows its
/// workflow's creation in the same batch finds the row), then the other requests in arrival
/// order, then step checkpoints, then endings. The bulk kinds go in as one statement each — a
/// statement per batch instead of a round trip to SQLite's worker thread per request. Moving
/// steps and endings last is safe: a step is only written after its workflow's row was
/// committed, and an ending only after its last step was.
enum Phase {
    Inserts(Vec<(Box<NewWorkflow>, Reply<Inserted>)>),
    One(Request),
    Steps(Vec<(StepRow, Reply<()>)>),
    Finishes(Vec<(String, WorkflowEnd, Reply<WorkflowRecord>)>),
}

fn plan(requests: impl Iterator<Item = Request>) -> Vec<Phase> {
    let (mut inserts, mut steps, mut finishes, mut phases) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for request in requests {
        match request {
            Request::InsertWorkflow { new, reply } => inserts.push((new, reply)),
            Request::RecordStep { step, reply } => steps.push((step, reply)),
            Request::Finish {
                workflow_id,
                end,
                reply,
            } => finishes.push((workflow_id, end, reply)),
            other => phases.push(Phase::One(other)),
        }
    }
    if !inserts.is_empty() {
        phases.insert(0, Phase::Inserts(inserts));
    }
    if !steps.is_empty() {
        phases.push(Phase::Steps(steps));
    }
    if !finishes.is_empty() {
        phases.push(Phase::Finishes(finishes));
    }
    phases
}

impl Phase {
    async fn apply(self, conn: &mut SqliteConnection) -> Vec<Outcome> {
        match self {
            Phase::Inserts(inserts) => insert_together(conn, inserts).await,
            Phase::One(request) => vec![request.apply(conn).await],
            Phase::Steps(steps) => record_steps_together(conn, steps).await,
            Phase::Finishes(finishes) => finish_together(conn, finishes).await,
        }
    }

    /// Answers without running: an earlier statement of the batch poisoned it.
    fn reject(self, copy: &impl Fn() -> StoreError) {
        match self {
            Phase::Inserts(inserts) => {
                for (_, reply) in inserts {
                    let _ = reply.send(Err(copy()));
                }
            }
            Phase::One(request) => request.reject(copy()),
            Phase::Steps(steps) => {
                for (_, reply) in steps {
                    let _ = reply.send(Err(copy()));
                }
            }
            Phase::Finishes(finishes) => {
                for (_, _, reply) in finishes {
                    let _ = reply.send(Err(copy()));
                }
            }
        }
    }
}

async fn write_batch(
    conn: &mut SqliteConnection,
    batch: &mut Vec<Request>,
    commits: &AtomicU64,
) -> bool {
    let size = batch.len();
    if size == 1
        && !batch[0].needs_transaction()
        && let Some(request) = batch.pop()
    {
        return write_alone(conn, request, commits).await;
    }
    // IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so a statement
    // in the middle of the batch never meets a lock it cannot wait for.
    let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(err) => {
            tracing::warn!(error = %err, size, "cannot begin a write transaction");
            let cause = StoreError::from(err);
            // A failed BEGIN leaves no transaction behind; only a dead worker needs a reconnect.
            let usable = !is_crash(&cause);
            reject_all(batch, cause);
            return usable;
        }
    };

    let mut outcomes = Vec::with_capacity(size);
    let mut poisoned = None;
    for phase in plan(batch.drain(..)) {
        if let Some(copy) = &poisoned {
            phase.reject(copy);
            continue;
        }
        for outcome in phase.apply(&mut tx).await {
            // A constraint error only undoes its own statement; anything else (I/O, disk full,
            // out of memory) may have rolled back the whole transaction behind our back.
            if poisoned.is_none()
                && let Some(err) = outcome.error().filter(|e| poisons_transaction(e))
            {
                poisoned = Some(echo(err));
            }
            outcomes.push(outcome);
        }
    }

    if let Some(copy) = poisoned {
        tracing::warn!(error = %copy(), size, "write batch failed; rolling it back");
        if let Err(err) = tx.rollback().await {
            tracing::debug!(error = %err, "rollback after a failed batch");
        }
        let usable = still_usable(
            conn,
            &outcomes.iter().map(Outcome::error).collect::<Vec<_>>(),
        );
        // The request that failed keeps its own error; `fail` only replaces successes.
        for mut outcome in outcomes {
            outcome.fail(&copy);
            outcome.send();
        }
        return usable;
    }
    match tx.commit().await {
        Ok(()) => {
            commits.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(size, "committed write batch");
            for outcome in outcomes {
                outcome.send();
            }
            true
        }
        Err(err) => {
            tracing::warn!(error = %err, size, "commit failed; every write in the batch is lost");
            let cause = StoreError::from(err);
            let copy = echo(&cause);
            let mut original = Some(cause);
            // One request gets the original error, the others a copy.
            let last_ok = outcomes
                .iter()
                .rposition(|outcome| outcome.error().is_none());
            for (i, mut outcome) in outcomes.into_iter().enumerate() {
                if Some(i) == last_ok {
                    outcome.fail(|| original.take().unwrap_or_else(&copy));
                } else {
                    outcome.fail(&copy);
                }
                outcome.send();
            }
            // Whether SQLite kept the transaction open after a failed COMMIT depends on the
            // error; the connection is not worth the doubt.
            false
        }
    }
}

/// Runs a lone request in autocommit mode: each statement is its own transaction and commit.
///
/// Same durability as an explicit transaction, but without the BEGIN and COMMIT round trips to
/// the connection's worker thread, which would dominate a sequential workflow's step latency.
/// Only for requests whose statements are safe on their own (at most one of them writes); the
/// others say so with [`Request::needs_transaction`].
async fn write_alone(conn: &mut SqliteConnection, request: Request, commits: &AtomicU64) -> bool {
    let outcome = request.apply(conn).await;
    let error = outcome.error();
    if error.is_none() {
        commits.fetch_add(1, Ordering::Relaxed);
    }
    let usable = still_usable(conn, &[error]);
    outcome.send();
    usable
}

/// Whether `err` may have ended the writer's transaction rather than just its own statement.
fn poisons_transaction(err: &StoreError) -> bool {
    let (StoreError::Database(err) | StoreError::Locked(err)) = err else {
        // Our own verdicts (unknown workflow, duplicate step, corrupt row) change nothing.
        return false;
    };
    match err {
        // SQLite documents that these primary codes leave the transaction open: SQLITE_ERROR,
        // SQLITE_TOOBIG, SQLITE_CONSTRAINT, SQLITE_MISMATCH, SQLITE_RANGE.
        sqlx::Error::Database(db) => {
            !matches!(primary_code(db.as_ref()), Some(1 | 18 | 19 | 20 | 25))
        }
        // Failures while binding or decoding happen on our side of the connection.
        sqlx::Error::Encode(_)
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::RowNotFound => false,
        _ => true,
    }
}

fn primary_code(db: &dyn DatabaseError) -> Option<i32> {
    db.code()?.parse::<i32>().ok().map(|code| code & 0xff)
}

/// Makes copies of a batch-wide failure, one for each request it affects (`sqlx::Error` is not
/// `Clone`), keeping the `Locked` classification so callers can still tell contention from
/// damage.
fn echo(cause: &StoreError) -> impl Fn() -> StoreError + use<> {
    let (locked, text) = match cause {
        StoreError::Locked(err) => (true, err.to_string()),
        StoreError::Database(err) => (false, err.to_string()),
        other => (false, other.to_string()),
    };
    move || {
        let copy = sqlx::Error::Io(io::Error::other(format!("write batch failed: {text}")));
        if locked {
            StoreError::Locked(copy)
        } else {
            StoreError::Database(copy)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Statements
// ---------------------------------------------------------------------------------------------

/// The `workflow_status` columns in the order [`workflow_from_row`] reads them by name.
macro_rules! workflow_columns {
    () => {
        "workflow_id, name, status, input, output, error, trap_class, trap_message, executor_id, \
         app_version, instance, config, executions, max_recovery_attempts, created_at, updated_at, \
         queue_name, priority, deduplication_id, started_at, parent_workflow_id"
    };
}

macro_rules! step_columns {
    () => {
        "workflow_id, function_id, name, output, error, attempts, started_at, completed_at"
    };
}

async fn put_component(
    conn: &mut SqliteConnection,
    digest: String,
    bytes: Vec<u8>,
) -> Result<(), StoreError> {
    let size = bytes.len() as i64;
    sqlx::query(
        "INSERT OR IGNORE INTO components (digest, bytes, size, created_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .bind(digest)
    .bind(bytes)
    .bind(size)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// Most new workflows one INSERT carries (16 bound values each).
const INSERTS_PER_STATEMENT: usize = 64;

/// The status, execution count and start time a new workflow's row begins with: a queued
/// workflow waits for a claim, whatever the caller asked.
fn initial_state(new: &NewWorkflow, now: i64) -> (WorkflowStatus, i64, Option<i64>) {
    match (&new.queue_name, new.begin_execution) {
        (Some(_), _) => (WorkflowStatus::Enqueued, 0, None),
        (None, true) => (WorkflowStatus::Pending, 1, Some(now)),
        (None, false) => (WorkflowStatus::Pending, 0, None),
    }
}

/// Creates many workflows with one statement per [`INSERTS_PER_STATEMENT`]. Rows the statement
/// did not create (an existing id) or could not (a deduplication clash fails the whole
/// statement) go through [`insert_workflow`], which gives each its own answer.
async fn insert_together(
    conn: &mut SqliteConnection,
    mut inserts: Vec<(Box<NewWorkflow>, Reply<Inserted>)>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(inserts.len());
    while !inserts.is_empty() {
        let chunk: Vec<_> = inserts
            .drain(..inserts.len().min(INSERTS_PER_STATEMENT))
            .collect();
        if chunk.len() == 1 {
            for (new, reply) in chunk {
                let result = insert_workflow(conn, new).await;
                outcomes.push(Outcome::Inserted(reply, Box::new(result)));
            }
            continue;
        }
        let now = now_ms();
        let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO workflow_status (workflow_id, name, status, input, executor_id, \
             app_version, instance, config, executions, max_recovery_attempts, created_at, \
             updated_at, queue_name, priority, deduplication_id, started_at, parent_workflow_id) ",
        );
        insert.push_values(chunk.iter(), |mut row, (new, _)| {
            let (status, executions, started_at) = initial_state(new, now);
            row.push_bind(new.id.as_str())
                .push_bind(new.name.as_str())
                .push_bind(status.as_str())
                .push_bind(new.input.as_str())
                .push_bind(new.executor_id.as_str())
                .push_bind(new.app_version.as_str())
                .push_bind(new.instance.as_str())
                .push_bind(new.config.as_str())
                .push_bind(executions)
                .push_bind(i64::from(new.max_recovery_attempts))
                .push_bind(now)
                .push_bind(now)
                .push_bind(new.queue_name.as_deref())
                .push_bind(new.priority)
                .push_bind(new.deduplication_id.as_deref())
                .push_bind(started_at)
                .push_bind(new.parent_workflow_id.as_deref());
        });
        insert.push(concat!(
            " ON CONFLICT (workflow_id) DO NOTHING RETURNING ",
            workflow_columns!()
        ));
        let result = insert.build().fetch_all(&mut *conn).await;
        drop(insert);
        match result {
            Ok(created) => {
                let mut by_id = std::collections::HashMap::with_capacity(created.len());
                for row in &created {
                    if let Ok(record) = workflow_from_row(row) {
                        by_id.insert(record.id.clone(), record);
                    }
                }
                for (new, reply) in chunk {
                    let result = match by_id.remove(&new.id) {
                        Some(record) => Ok(Inserted {
                            created: true,
                            record,
                        }),
                        None => insert_workflow(conn, new).await,
                    };
                    outcomes.push(Outcome::Inserted(reply, Box::new(result)));
                }
            }
            Err(err) => {
                let cause = StoreError::from(err);
                if poisons_transaction(&cause) {
                    let copy = echo(&cause);
                    outcomes.extend(
                        chunk
                            .into_iter()
                            .map(|(_, reply)| Outcome::Inserted(reply, Box::new(Err(copy())))),
                    );
                    continue;
                }
                for (new, reply) in chunk {
                    let result = insert_workflow(conn, new).await;
                    outcomes.push(Outcome::Inserted(reply, Box::new(result)));
                }
            }
        }
    }
    outcomes
}

async fn insert_workflow(
    conn: &mut SqliteConnection,
    new: Box<NewWorkflow>,
) -> Result<Inserted, StoreError> {
    let now = now_ms();
    let (status, executions, started_at) = initial_state(&new, now);
    let NewWorkflow {
        id,
        name,
        input,
        executor_id,
        app_version,
        instance,
        config,
        max_recovery_attempts,
        begin_execution: _,
        queue_name,
        priority,
        deduplication_id,
        parent_workflow_id,
    } = *new;
    // RETURNING yields the row only when it was inserted, so the common case is one statement.
    // The conflict target is the id alone: a clash on the deduplication index is an error.
    let inserted = sqlx::query(concat!(
        "INSERT INTO workflow_status (workflow_id, name, status, input, executor_id, app_version, \
         instance, config, executions, max_recovery_attempts, created_at, updated_at, \
         queue_name, priority, deduplication_id, started_at, parent_workflow_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13, ?14, ?15, ?16) \
         ON CONFLICT (workflow_id) DO NOTHING RETURNING ",
        workflow_columns!()
    ))
    .bind(id.as_str())
    .bind(name)
    .bind(status.as_str())
    .bind(input)
    .bind(executor_id)
    .bind(app_version)
    .bind(instance)
    .bind(config)
    .bind(executions)
    .bind(i64::from(max_recovery_attempts))
    .bind(now)
    .bind(queue_name.as_deref())
    .bind(priority)
    .bind(deduplication_id.as_deref())
    .bind(started_at)
    .bind(parent_workflow_id)
    .fetch_optional(&mut *conn)
    .await;
    let inserted = match inserted {
        Ok(inserted) => inserted,
        Err(sqlx::Error::Database(db)) if db.kind() == ErrorKind::UniqueViolation => {
            return Err(duplicate_or(queue_name, deduplication_id, db));
        }
        Err(err) => return Err(err.into()),
    };
    if let Some(row) = inserted {
        return Ok(Inserted {
            created: true,
            record: workflow_from_row(&row)?,
        });
    }
    match select_workflow(conn, &id).await? {
        Some(record) => Ok(Inserted {
            created: false,
            record,
        }),
        // Only possible if the row vanished between the two statements of one transaction.
        None => Err(StoreError::Corrupt {
            table: "workflow_status",
            message: format!("workflow {id} conflicts on insert but cannot be read"),
        }),
    }
}

/// A unique violation other than the id's is the deduplication index's: the only other unique
/// index on `workflow_status`. Without a deduplication id it cannot be, so it stays a database
/// error.
fn duplicate_or(
    queue: Option<String>,
    deduplication_id: Option<String>,
    db: Box<dyn DatabaseError>,
) -> StoreError {
    match (queue, deduplication_id) {
        (Some(queue), Some(deduplication_id)) => StoreError::Duplicate {
            queue,
            deduplication_id,
        },
        _ => StoreError::from(sqlx::Error::Database(db)),
    }
}

/// One workflow's row, read on the writer's connection (so inside its transaction).
async fn select_workflow(
    conn: &mut SqliteConnection,
    workflow_id: &str,
) -> Result<Option<WorkflowRecord>, StoreError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        workflow_columns!(),
        " FROM workflow_status WHERE workflow_id = ?1"
    ))
    .bind(workflow_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(workflow_from_row).transpose()
}

async fn begin_execution(
    conn: &mut SqliteConnection,
    workflow_id: String,
    executor_id: String,
) -> Result<u32, StoreError> {
    // `started_at` marks the first execution only; recoveries keep it.
    let row = sqlx::query(
        "UPDATE workflow_status SET executions = executions + 1, executor_id = ?1, \
         status = 'PENDING', started_at = coalesce(started_at, ?2), updated_at = ?2 \
         WHERE workflow_id = ?3 RETURNING executions",
    )
    .bind(executor_id)
    .bind(now_ms())
    .bind(workflow_id.as_str())
    .fetch_optional(conn)
    .await?;
    match row {
        Some(row) => to_u32(
            get(&row, "workflow_status", "executions")?,
            "workflow_status",
            "executions",
        ),
        None => Err(StoreError::UnknownWorkflow(workflow_id)),
    }
}

/// Most rows one multi-row INSERT carries (8 bound values each, well under SQLite's limit).
const STEPS_PER_STATEMENT: usize = 256;

/// Inserts many steps with one statement per [`STEPS_PER_STATEMENT`]; when a statement fails
/// on a constraint (a duplicate position, a vanished workflow) its rows are retried one by one
/// so each request gets its own verdict.
async fn record_steps_together(
    conn: &mut SqliteConnection,
    mut steps: Vec<(StepRow, Reply<()>)>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(steps.len());
    while !steps.is_empty() {
        let chunk: Vec<_> = steps
            .drain(..steps.len().min(STEPS_PER_STATEMENT))
            .collect();
        if chunk.len() == 1 {
            for (step, reply) in chunk {
                outcomes.push(Outcome::Unit(reply, record_step(conn, step).await));
            }
            continue;
        }
        let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO operation_outputs (workflow_id, function_id, name, output, error, \
             attempts, started_at, completed_at) ",
        );
        insert.push_values(chunk.iter(), |mut row, (step, _)| {
            row.push_bind(step.workflow_id.as_str())
                .push_bind(i64::from(step.function_id))
                .push_bind(step.name.as_str())
                .push_bind(step.output.as_deref())
                .push_bind(step.error.as_deref())
                .push_bind(i64::from(step.attempts))
                .push_bind(step.started_at)
                .push_bind(step.completed_at);
        });
        let result = insert.build().execute(&mut *conn).await;
        drop(insert);
        match result {
            Ok(_) => outcomes.extend(
                chunk
                    .into_iter()
                    .map(|(_, reply)| Outcome::Unit(reply, Ok(()))),
            ),
            Err(err) => {
                let cause = StoreError::from(err);
                if poisons_transaction(&cause) {
                    let copy = echo(&cause);
                    outcomes.extend(
                        chunk
                            .into_iter()
                            .map(|(_, reply)| Outcome::Unit(reply, Err(copy()))),
                    );
                    continue;
                }
                // A constraint failure undid only that statement: find the culprit(s).
                for (step, reply) in chunk {
                    outcomes.push(Outcome::Unit(reply, record_step(conn, step).await));
                }
            }
        }
    }
    outcomes
}

async fn record_step(conn: &mut SqliteConnection, step: StepRow) -> Result<(), StoreError> {
    let workflow_id = step.workflow_id.clone();
    let function_id = step.function_id;
    let result = sqlx::query(
        "INSERT INTO operation_outputs (workflow_id, function_id, name, output, error, attempts, \
         started_at, completed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind(step.workflow_id)
    .bind(i64::from(step.function_id))
    .bind(step.name)
    .bind(step.output)
    .bind(step.error)
    .bind(i64::from(step.attempts))
    .bind(step.started_at)
    .bind(step.completed_at)
    .execute(conn)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(db)) if db.kind() == ErrorKind::UniqueViolation => {
            Err(StoreError::StepAlreadyRecorded {
                workflow_id,
                function_id,
            })
        }
        Err(sqlx::Error::Database(db)) if db.kind() == ErrorKind::ForeignKeyViolation => {
            Err(StoreError::UnknownWorkflow(workflow_id))
        }
        Err(err) => Err(err.into()),
    }
}

async fn record_trap(
    conn: &mut SqliteConnection,
    workflow_id: String,
    class: String,
    message: String,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE workflow_status SET trap_class = ?1, trap_message = ?2, updated_at = ?3 \
         WHERE workflow_id = ?4",
    )
    .bind(class)
    .bind(message)
    .bind(now_ms())
    .bind(workflow_id.as_str())
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::UnknownWorkflow(workflow_id));
    }
    Ok(())
}

/// Most endings one UPDATE carries.
const FINISHES_PER_STATEMENT: usize = 128;

/// The status, output and error columns of an ending.
fn ending_columns(end: WorkflowEnd) -> (WorkflowStatus, Option<String>, Option<String>) {
    match end {
        WorkflowEnd::Success(output) => (WorkflowStatus::Success, Some(output), None),
        WorkflowEnd::Error(error) => (WorkflowStatus::Error, None, Some(error)),
        WorkflowEnd::MaxRecoveryAttemptsExceeded(error) => (
            WorkflowStatus::MaxRecoveryAttemptsExceeded,
            None,
            Some(error),
        ),
    }
}

/// Ends many workflows with one statement per [`FINISHES_PER_STATEMENT`]. A workflow the
/// statement did not change (already ended, or missing) goes through [`finish_workflow`],
/// which returns its first ending or says it does not exist.
async fn finish_together(
    conn: &mut SqliteConnection,
    mut finishes: Vec<(String, WorkflowEnd, Reply<WorkflowRecord>)>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(finishes.len());
    while !finishes.is_empty() {
        let chunk: Vec<_> = finishes
            .drain(..finishes.len().min(FINISHES_PER_STATEMENT))
            .collect();
        if chunk.len() == 1 {
            for (id, end, reply) in chunk {
                let result = finish_workflow(conn, id, end).await;
                outcomes.push(Outcome::Record(reply, Box::new(result)));
            }
            continue;
        }
        let rows: Vec<_> = chunk
            .into_iter()
            .map(|(id, end, reply)| {
                let (status, output, error) = ending_columns(end.clone());
                (id, status, output, error, end, reply)
            })
            .collect();
        let mut update = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "UPDATE workflow_status SET status = v.column2, output = v.column3, \
             error = v.column4, updated_at = ",
        );
        update.push_bind(now_ms()).push(" FROM (");
        update.push_values(rows.iter(), |mut row, (id, status, output, error, _, _)| {
            row.push_bind(id.as_str())
                .push_bind(status.as_str())
                .push_bind(output.as_deref())
                .push_bind(error.as_deref());
        });
        update.push(concat!(
            ") AS v WHERE workflow_status.workflow_id = v.column1 \
             AND workflow_status.status IN ('ENQUEUED', 'PENDING') RETURNING ",
            workflow_columns!()
        ));
        let result = update.build().fetch_all(&mut *conn).await;
        drop(update);
        match result {
            Ok(changed) => {
                let mut by_id = std::collections::HashMap::with_capacity(changed.len());
                for row in &changed {
                    if let Ok(record) = workflow_from_row(row) {
                        by_id.insert(record.id.clone(), record);
                    }
                }
                for (id, _, _, _, end, reply) in rows {
                    let result = match by_id.get(&id) {
                        Some(record) => Ok(record.clone()),
                        None => finish_workflow(conn, id, end).await,
                    };
                    outcomes.push(Outcome::Record(reply, Box::new(result)));
                }
            }
            Err(err) => {
                let cause = StoreError::from(err);
                if poisons_transaction(&cause) {
                    let copy = echo(&cause);
                    outcomes.extend(
                        rows.into_iter()
                            .map(|(.., reply)| Outcome::Record(reply, Box::new(Err(copy())))),
                    );
                    continue;
                }
                for (id, _, _, _, end, reply) in rows {
                    let result = finish_workflow(conn, id, end).await;
                    outcomes.push(Outcome::Record(reply, Box::new(result)));
                }
            }
        }
    }
    outcomes
}

async fn finish_workflow(
    conn: &mut SqliteConnection,
    workflow_id: String,
    end: WorkflowEnd,
) -> Result<WorkflowRecord, StoreError> {
    let (status, output, error) = match end {
        WorkflowEnd::Success(output) => (WorkflowStatus::Success, Some(output), None),
        WorkflowEnd::Error(error) => (WorkflowStatus::Error, None, Some(error)),
        WorkflowEnd::MaxRecoveryAttemptsExceeded(error) => (
            WorkflowStatus::MaxRecoveryAttemptsExceeded,
            None,
            Some(error),
        ),
    };
    // The first ending wins: a late duplicate execution must not rewrite a finished workflow.
    let finished = sqlx::query(concat!(
        "UPDATE workflow_status SET status = ?1, output = ?2, error = ?3, updated_at = ?4 \
         WHERE workflow_id = ?5 AND status IN ('ENQUEUED', 'PENDING') RETURNING ",
        workflow_columns!()
    ))
    .bind(status.as_str())
    .bind(output)
    .bind(error)
    .bind(now_ms())
    .bind(workflow_id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = finished {
        return workflow_from_row(&row);
    }
    let Some(record) = select_workflow(conn, &workflow_id).await? else {
        return Err(StoreError::UnknownWorkflow(workflow_id));
    };
    tracing::debug!(workflow_id, %status, "workflow already finished; keeping its first ending");
    Ok(record)
}

async fn claim_queued(
    conn: &mut SqliteConnection,
    claim: QueueClaim,
) -> Result<Vec<WorkflowRecord>, StoreError> {
    let now = now_ms();
    let (rate_limit, window_start) = match claim.rate_limit {
        Some(rate) => (
            Some(i64::from(rate.limit)),
            now.saturating_sub(rate.period_ms),
        ),
        None => (None, now),
    };
    // One statement, so it is atomic even in autocommit mode: an UPDATE takes the write lock
    // before it reads, which serialises claimers across processes. The LIMIT is the number of
    // free slots: local ones, the queue's global concurrency left (PENDING rows count against
    // it) and its rate limit left (starts in the window); a NULL limit falls back to `max`, and
    // `max(0, …)` keeps a full queue from meaning "no limit" (a negative LIMIT). The dispatch
    // index yields rows already in priority, then FIFO order.
    let rows = sqlx::query(concat!(
        "UPDATE workflow_status SET status = 'PENDING', executor_id = ?2, executions = 1, \
         started_at = ?3, updated_at = ?3 \
         WHERE rowid IN (SELECT rowid FROM workflow_status \
             WHERE queue_name = ?1 AND status = 'ENQUEUED' \
             ORDER BY priority, created_at, rowid \
             LIMIT max(0, min(?4, \
                 coalesce(?5 - (SELECT count(*) FROM workflow_status \
                     WHERE queue_name = ?1 AND status = 'PENDING'), ?4), \
                 coalesce(?6 - (SELECT count(*) FROM workflow_status \
                     WHERE queue_name = ?1 AND started_at >= ?7), ?4)))) \
         RETURNING rowid AS claim_order, ",
        workflow_columns!()
    ))
    .bind(claim.queue.as_str())
    .bind(claim.executor_id)
    .bind(now)
    .bind(i64::from(claim.max))
    .bind(claim.concurrency.map(i64::from))
    .bind(rate_limit)
    .bind(window_start)
    .fetch_all(conn)
    .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        let order: i64 = get(row, "workflow_status", "claim_order")?;
        claimed.push((order, workflow_from_row(row)?));
    }
    // RETURNING follows no order: restore the dispatch order for the caller.
    claimed.sort_by_key(|(order, record)| (record.priority, record.created_at, *order));
    if !claimed.is_empty() {
        tracing::debug!(
            queue = claim.queue,
            count = claimed.len(),
            "claimed queued workflows"
        );
    }
    Ok(claimed.into_iter().map(|(_, record)| record).collect())
}

async fn cancel_workflow(
    conn: &mut SqliteConnection,
    workflow_id: String,
) -> Result<WorkflowRecord, StoreError> {
    let cancelled = sqlx::query(concat!(
        "UPDATE workflow_status SET status = 'CANCELLED', updated_at = ?1 \
         WHERE workflow_id = ?2 AND status IN ('ENQUEUED', 'PENDING') RETURNING ",
        workflow_columns!()
    ))
    .bind(now_ms())
    .bind(workflow_id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = cancelled {
        return workflow_from_row(&row);
    }
    // Already ended: cancelling is a no-op, and the row says how it ended.
    select_workflow(conn, &workflow_id)
        .await?
        .ok_or(StoreError::UnknownWorkflow(workflow_id))
}

async fn resume_workflow(
    conn: &mut SqliteConnection,
    workflow_id: String,
    executor_id: String,
) -> Result<WorkflowRecord, StoreError> {
    // executions = 0 gives the resumed workflow a fresh budget of recovery attempts; the trap
    // columns stay as a record of what went wrong last time.
    let resumed = sqlx::query(concat!(
        "UPDATE workflow_status SET status = 'PENDING', executions = 0, error = NULL, \
         executor_id = ?1, started_at = coalesce(started_at, ?2), updated_at = ?2 \
         WHERE workflow_id = ?3 AND status <> 'SUCCESS' RETURNING ",
        workflow_columns!()
    ))
    .bind(executor_id)
    .bind(now_ms())
    .bind(workflow_id.as_str())
    .fetch_optional(&mut *conn)
    .await;
    let resumed = match resumed {
        Ok(resumed) => resumed,
        // A cancelled workflow's deduplication id was taken by a newer one meanwhile.
        Err(sqlx::Error::Database(db)) if db.kind() == ErrorKind::UniqueViolation => {
            let (queue, deduplication_id) = match select_workflow(conn, &workflow_id).await? {
                Some(record) => (record.queue_name, record.deduplication_id),
                None => (None, None),
            };
            return Err(duplicate_or(queue, deduplication_id, db));
        }
        Err(err) => return Err(err.into()),
    };
    if let Some(row) = resumed {
        return workflow_from_row(&row);
    }
    match select_workflow(conn, &workflow_id).await? {
        Some(record) => Err(StoreError::NotResumable {
            workflow_id,
            status: record.status,
        }),
        None => Err(StoreError::UnknownWorkflow(workflow_id)),
    }
}

async fn fork_workflow(
    conn: &mut SqliteConnection,
    workflow_id: String,
    new_id: String,
    from_step: u32,
) -> Result<WorkflowRecord, StoreError> {
    // The writer runs this inside a transaction (see `Request::needs_transaction`); the
    // savepoint also undoes a half-done fork when a later request of the batch commits.
    let mut savepoint = conn.begin().await?;
    let result = fork_statements(&mut savepoint, workflow_id, new_id, from_step).await;
    match result {
        Ok(record) => {
            savepoint.commit().await?;
            Ok(record)
        }
        Err(err) => {
            if let Err(rollback) = savepoint.rollback().await {
                tracing::debug!(error = %rollback, "rollback of a failed fork");
            }
            Err(err)
        }
    }
}

async fn fork_statements(
    conn: &mut SqliteConnection,
    workflow_id: String,
    new_id: String,
    from_step: u32,
) -> Result<WorkflowRecord, StoreError> {
    // `WHERE` before `ON CONFLICT` also settles the parsing ambiguity of an upsert from SELECT.
    let forked = sqlx::query(concat!(
        "INSERT INTO workflow_status (workflow_id, name, status, input, executor_id, app_version, \
         instance, config, executions, max_recovery_attempts, created_at, updated_at, priority) \
         SELECT ?1, name, 'PENDING', input, executor_id, app_version, instance, config, 0, \
         max_recovery_attempts, ?2, ?2, 0 FROM workflow_status WHERE workflow_id = ?3 \
         ON CONFLICT (workflow_id) DO NOTHING RETURNING ",
        workflow_columns!()
    ))
    .bind(new_id.as_str())
    .bind(now_ms())
    .bind(workflow_id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = forked else {
        // Nothing inserted: either there is nothing to copy or the new id is taken.
        return Err(match select_workflow(conn, &workflow_id).await? {
            None => StoreError::UnknownWorkflow(workflow_id),
            Some(_) => StoreError::WorkflowExists(new_id),
        });
    };
    let record = workflow_from_row(&row)?;
    sqlx::query(concat!(
        "INSERT INTO operation_outputs (",
        step_columns!(),
        ") SELECT ?1, function_id, name, output, error, attempts, started_at, completed_at \
         FROM operation_outputs WHERE workflow_id = ?2 AND function_id < ?3"
    ))
    .bind(new_id.as_str())
    .bind(workflow_id.as_str())
    .bind(i64::from(from_step))
    .execute(&mut *conn)
    .await?;
    tracing::debug!(workflow_id, new_id, from_step, "forked workflow");
    Ok(record)
}

// ---------------------------------------------------------------------------------------------
// Row mapping
// ---------------------------------------------------------------------------------------------

/// Reads one column; a value of the wrong type is a corrupt row, not a database failure.
fn get<'r, T>(row: &'r SqliteRow, table: &'static str, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column).map_err(|err| StoreError::Corrupt {
        table,
        message: format!("column {column}: {err}"),
    })
}

impl Columns for SqliteRow {
    fn text(&self, table: &'static str, column: &str) -> Result<String, StoreError> {
        get(self, table, column)
    }
    fn opt_text(&self, table: &'static str, column: &str) -> Result<Option<String>, StoreError> {
        get(self, table, column)
    }
    fn int(&self, table: &'static str, column: &str) -> Result<i64, StoreError> {
        get(self, table, column)
    }
    fn opt_int(&self, table: &'static str, column: &str) -> Result<Option<i64>, StoreError> {
        get(self, table, column)
    }
    /// SQLite stores every integer as 64 bits.
    fn small_int(&self, table: &'static str, column: &str) -> Result<i32, StoreError> {
        let value: i64 = get(self, table, column)?;
        i32::try_from(value).map_err(|_| StoreError::Corrupt {
            table,
            message: format!("column {column}: {value} is out of range"),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The trait
// ---------------------------------------------------------------------------------------------

#[async_trait]
impl Store for SqliteStore {
    async fn put_component(&self, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let (digest, bytes) = (digest.to_owned(), bytes.to_vec());
        self.write(|reply| Request::PutComponent {
            digest,
            bytes,
            reply,
        })
        .await
    }

    async fn get_component(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT bytes FROM components WHERE digest = ?1")
            .bind(digest)
            .fetch_optional(&self.reads)
            .await?;
        row.map(|row| get(&row, "components", "bytes")).transpose()
    }

    async fn insert_workflow(&self, new: &NewWorkflow) -> Result<Inserted, StoreError> {
        let new = Box::new(new.clone());
        self.write(|reply| Request::InsertWorkflow { new, reply })
            .await
    }

    async fn get_workflow(&self, id: &str) -> Result<Option<WorkflowRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflow_status WHERE workflow_id = ?1"
        ))
        .bind(id)
        .fetch_optional(&self.reads)
        .await?;
        row.as_ref().map(workflow_from_row).transpose()
    }

    async fn list_workflows(
        &self,
        filter: &WorkflowFilter,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        // Built per filter shape, binding every value; each shape is prepared once and cached.
        let mut query = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflow_status"
        ));
        push_filter_clauses(&mut query, filter);
        // A negative LIMIT means no limit in SQLite, and OFFSET needs a LIMIT before it.
        query
            .push(" ORDER BY created_at DESC, rowid DESC LIMIT ")
            .push_bind(filter.limit.map_or(-1, i64::from));
        if let Some(offset) = filter.offset {
            query.push(" OFFSET ").push_bind(i64::from(offset));
        }
        let rows = query.build().fetch_all(&self.reads).await?;
        rows.iter().map(workflow_from_row).collect()
    }

    async fn steps(&self, workflow_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            step_columns!(),
            " FROM operation_outputs WHERE workflow_id = ?1 ORDER BY function_id"
        ))
        .bind(workflow_id)
        .fetch_all(&self.reads)
        .await?;
        rows.iter().map(step_from_row).collect()
    }

    async fn begin_execution(
        &self,
        workflow_id: &str,
        executor_id: &str,
    ) -> Result<u32, StoreError> {
        let (workflow_id, executor_id) = (workflow_id.to_owned(), executor_id.to_owned());
        self.write(|reply| Request::BeginExecution {
            workflow_id,
            executor_id,
            reply,
        })
        .await
    }

    async fn record_step(&self, step: &StepRecord) -> Result<(), StoreError> {
        let error = match &step.error {
            Some(failure) => {
                Some(
                    serde_json::to_string(failure).map_err(|err| StoreError::Corrupt {
                        table: "operation_outputs",
                        message: format!("cannot encode step failure: {err}"),
                    })?,
                )
            }
            None => None,
        };
        let step = StepRow {
            workflow_id: step.workflow_id.clone(),
            function_id: step.function_id,
            name: step.name.clone(),
            output: step.output.clone(),
            error,
            attempts: step.attempts,
            started_at: step.started_at,
            completed_at: step.completed_at,
        };
        self.write(|reply| Request::RecordStep { step, reply })
            .await
    }

    async fn record_trap(
        &self,
        workflow_id: &str,
        class: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        let (workflow_id, class, message) =
            (workflow_id.to_owned(), class.to_owned(), message.to_owned());
        self.write(|reply| Request::RecordTrap {
            workflow_id,
            class,
            message,
            reply,
        })
        .await
    }

    async fn finish_workflow(
        &self,
        workflow_id: &str,
        end: &WorkflowEnd,
    ) -> Result<WorkflowRecord, StoreError> {
        let (workflow_id, end) = (workflow_id.to_owned(), end.clone());
        self.write(|reply| Request::Finish {
            workflow_id,
            end,
            reply,
        })
        .await
    }

    async fn pending_workflows(
        &self,
        executor_id: &str,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflow_status WHERE status = 'PENDING' AND executor_id = ?1 \
             ORDER BY created_at, rowid"
        ))
        .bind(executor_id)
        .fetch_all(&self.reads)
        .await?;
        rows.iter().map(workflow_from_row).collect()
    }

    async fn claim_queued(&self, claim: &QueueClaim) -> Result<Vec<WorkflowRecord>, StoreError> {
        if claim.max == 0 {
            return Ok(Vec::new());
        }
        let claim = claim.clone();
        self.write(|reply| Request::ClaimQueued { claim, reply })
            .await
    }

    async fn queue_depths(&self) -> Result<Vec<QueueDepth>, StoreError> {
        const T: &str = "workflow_status";
        // Only active rows: the dispatch index answers without touching finished workflows.
        let rows = sqlx::query(
            "SELECT queue_name, sum(status = 'ENQUEUED') AS enqueued, \
             sum(status = 'PENDING') AS pending FROM workflow_status \
             WHERE queue_name IS NOT NULL AND status IN ('ENQUEUED', 'PENDING') \
             GROUP BY queue_name ORDER BY queue_name",
        )
        .fetch_all(&self.reads)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(QueueDepth {
                    queue: get(row, T, "queue_name")?,
                    enqueued: to_u64(get(row, T, "enqueued")?, T, "enqueued")?,
                    pending: to_u64(get(row, T, "pending")?, T, "pending")?,
                })
            })
            .collect()
    }

    async fn count_by_status(&self) -> Result<Vec<(WorkflowStatus, u64)>, StoreError> {
        const T: &str = "workflow_status";
        let rows = sqlx::query(
            "SELECT status, count(*) AS workflows FROM workflow_status \
             GROUP BY status ORDER BY status",
        )
        .fetch_all(&self.reads)
        .await?;
        rows.iter()
            .map(|row| {
                let status: String = get(row, T, "status")?;
                let status = WorkflowStatus::from_str(&status)
                    .map_err(|message| StoreError::Corrupt { table: T, message })?;
                Ok((status, to_u64(get(row, T, "workflows")?, T, "workflows")?))
            })
            .collect()
    }

    async fn cancel_workflow(&self, id: &str) -> Result<WorkflowRecord, StoreError> {
        let workflow_id = id.to_owned();
        self.write(|reply| Request::Cancel { workflow_id, reply })
            .await
    }

    async fn resume_workflow(
        &self,
        id: &str,
        executor_id: &str,
    ) -> Result<WorkflowRecord, StoreError> {
        let (workflow_id, executor_id) = (id.to_owned(), executor_id.to_owned());
        self.write(|reply| Request::Resume {
            workflow_id,
            executor_id,
            reply,
        })
        .await
    }

    async fn fork_workflow(
        &self,
        id: &str,
        new_id: &str,
        from_step: u32,
    ) -> Result<WorkflowRecord, StoreError> {
        let (workflow_id, new_id) = (id.to_owned(), new_id.to_owned());
        self.write(|reply| Request::Fork {
            workflow_id,
            new_id,
            from_step,
            reply,
        })
        .await
    }

    async fn workflow_statuses(&self, ids: &[String]) -> Result<Vec<WorkflowRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One statement shape for any number of ids: they travel as one JSON array.
        let ids_json = serde_json::to_string(ids).map_err(|err| StoreError::Corrupt {
            table: "workflow_status",
            message: format!("cannot encode workflow ids: {err}"),
        })?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflow_status WHERE workflow_id IN (SELECT value FROM json_each(?1))"
        ))
        .bind(ids_json)
        .fetch_all(&self.reads)
        .await?;
        let mut records = rows
            .iter()
            .map(workflow_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // Back to the order asked, which callers showing a list of workflows expect.
        let position: std::collections::HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .rev()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        records.sort_by_key(|record| position.get(record.id.as_str()).copied());
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::super::RateLimit;
    use super::*;
    use crate::store::StepFailureRecord;

    fn new_workflow(id: &str) -> NewWorkflow {
        NewWorkflow {
            id: id.to_owned(),
            name: "greet".to_owned(),
            input: r#"{"who":"world"}"#.to_owned(),
            executor_id: "exec-a".to_owned(),
            app_version: "sha256:abc".to_owned(),
            instance: "default".to_owned(),
            config: "{}".to_owned(),
            max_recovery_attempts: 3,
            begin_execution: false,
            queue_name: None,
            priority: 0,
            deduplication_id: None,
            parent_workflow_id: None,
        }
    }

    fn step(workflow_id: &str, function_id: u32) -> StepRecord {
        StepRecord {
            workflow_id: workflow_id.to_owned(),
            function_id,
            name: format!("step-{function_id}"),
            output: Some(format!("{function_id}")),
            error: None,
            attempts: 1,
            started_at: 1_000 + i64::from(function_id),
            completed_at: 2_000 + i64::from(function_id),
        }
    }

    async fn open_temp(durability: Durability) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("reprise.db");
        let store = SqliteStore::open(path.to_str().expect("utf-8 path"), durability)
            .await
            .expect("open store");
        (dir, store)
    }

    #[tokio::test]
    async fn insert_is_idempotent_and_returns_the_original() {
        let (_dir, store) = open_temp(Durability::Process).await;
        let first = store
            .insert_workflow(&new_workflow("wf-1"))
            .await
            .expect("insert");
        assert!(first.created);
        assert_eq!(first.record.status, WorkflowStatus::Pending);
        assert_eq!(first.record.executions, 0);
        assert_eq!(first.record.created_at, first.record.updated_at);

        let mut again = new_workflow("wf-1");
        again.input = r#"{"who":"someone else"}"#.to_owned();
        let second = store.insert_workflow(&again).await.expect("insert again");
        assert!(!second.created);
        assert_eq!(second.record, first.record);
        assert_eq!(
            store.get_workflow("wf-1").await.expect("get"),
            Some(first.record)
        );
        assert_eq!(store.get_workflow("nope").await.expect("get"), None);
    }

    #[tokio::test]
    async fn steps_round_trip_including_failures() {
        let (_dir, store) = open_temp(Durability::Process).await;
        store
            .insert_workflow(&new_workflow("wf"))
            .await
            .expect("insert");
        let failed = StepRecord {
            output: None,
            error: Some(StepFailureRecord {
                message: "boom".to_owned(),
                attempt_errors: vec!["timeout".to_owned(), "boom".to_owned()],
                retries_exhausted: true,
            }),
            attempts: 2,
            ..step("wf", 1)
        };
        // Recorded out of order on purpose: `steps` sorts by position.
        store.record_step(&failed).await.expect("record failure");
        store
            .record_step(&step("wf", 0))
            .await
            .expect("record success");
        let steps = store.steps("wf").await.expect("steps");
        assert_eq!(steps, vec![step("wf", 0), failed]);
        assert!(store.steps("other").await.expect("steps").is_empty());
    }

    #[tokio::test]
    async fn duplicate_step_is_rejected() {
        let (_dir, store) = open_temp(Durability::Process).await;
        store
            .insert_workflow(&new_workflow("wf"))
            .await
            .expect("insert");
        store.record_step(&step("wf", 0)).await.expect("first");
        let err = store
            .record_step(&step("wf", 0))
            .await
            .expect_err("duplicate");
        assert!(
            matches!(&err, StoreError::StepAlreadyRecorded { workflow_id, function_id: 0 } if workflow_id == "wf"),
            "{err:?}"
        );
        // The failure was the request's own: the writer goes on.
        store.record_step(&step("wf", 1)).await.expect("next step");
        let err = store
            .record_step(&step("ghost", 0))
            .await
            .expect_err("no workflow");
        assert!(
            matches!(err, StoreError::UnknownWorkflow(ref id) if id == "ghost"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn begin_execution_counts_and_takes_ownership() {
        let (_dir, store) = open_temp(Durability::Process).await;
        store
            .insert_workflow(&new_workflow("wf"))
            .await
            .expect("insert");
        assert_eq!(
            store.begin_execution("wf", "exec-a").await.expect("begin"),
            1
        );
        assert_eq!(
            store.begin_execution("wf", "exec-b").await.expect("begin"),
            2
        );
        let record = store
            .get_workflow("wf")
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(record.executions, 2);
        assert_eq!(record.executor_id, "exec-b");
        assert!(
            store
                .pending_workflows("exec-a")
                .await
                .expect("pending")
                .is_empty()
        );
        assert_eq!(
            store
                .pending_workflows("exec-b")
                .await
                .expect("pending")
                .len(),
            1
        );
        let err = store
            .begin_execution("ghost", "exec-a")
            .await
            .expect_err("unknown");
        assert!(
            matches!(err, StoreError::UnknownWorkflow(ref id) if id == "ghost"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn finish_keeps_the_first_terminal_state() {
        let (_dir, store) = open_temp(Durability::Process).await;
        store
            .insert_workflow(&new_workflow("wf"))
            .await
            .expect("insert");
        store
            .record_trap("wf", "panic", "oh no")
            .await
            .expect("trap");
        store
            .finish_workflow("wf", &WorkflowEnd::Success("42".to_owned()))
            .await
            .expect("finish");
        store
            .finish_workflow("wf", &WorkflowEnd::Error("late".to_owned()))
            .await
            .expect("second finish is not an error");
        let record = store
            .get_workflow("wf")
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(record.status, WorkflowStatus::Success);
        assert_eq!(record.output.as_deref(), Some("42"));
        assert_eq!(record.error, None);
        assert_eq!(record.trap_class.as_deref(), Some("panic"));
        assert_eq!(record.trap_message.as_deref(), Some("oh no"));
        assert!(
            store
                .pending_workflows("exec-a")
                .await
                .expect("pending")
                .is_empty()
        );
        let err = store
            .finish_workflow("ghost", &WorkflowEnd::Error("x".to_owned()))
            .await
            .expect_err("unknown");
        assert!(matches!(err, StoreError::UnknownWorkflow(_)), "{err:?}");
    }

    #[tokio::test]
    async fn listing_filters_and_orders_newest_first() {
        let (_dir, store) = open_temp(Durability::Process).await;
        for id in ["a", "b", "c"] {
            store
                .insert_workflow(&new_workflow(id))
                .await
                .expect("insert");
        }
        let mut other = new_workflow("d");
        other.name = "other".to_owned();
        store.insert_workflow(&other).await.expect("insert");
        store
            .finish_workflow("b", &WorkflowEnd::Error("bad".to_owned()))
            .await
            .expect("finish");

        let ids = |records: Vec<WorkflowRecord>| -> Vec<String> {
            records.into_iter().map(|r| r.id).collect()
        };
        let all = store
            .list_workflows(&WorkflowFilter::default())
            .await
            .expect("list");
        assert_eq!(ids(all), ["d", "c", "b", "a"]);
        let filter = WorkflowFilter {
            limit: Some(2),
            ..Default::default()
        };
        assert_eq!(
            ids(store.list_workflows(&filter).await.expect("list")),
            ["d", "c"]
        );
        let filter = WorkflowFilter {
            status: Some(WorkflowStatus::Pending),
            ..Default::default()
        };
        assert_eq!(
            ids(store.list_workflows(&filter).await.expect("list")),
            ["d", "c", "a"]
        );
        let filter = WorkflowFilter {
            name: Some("greet".to_owned()),
            ..Default::default()
        };
        assert_eq!(
            ids(store.list_workflows(&filter).await.expect("list")),
            ["c", "b", "a"]
        );
        let filter = WorkflowFilter {
            status: Some(WorkflowStatus::Pending),
            name: Some("greet".to_owned()),
            limit: Some(1),
            ..Default::default()
        };
        assert_eq!(
            ids(store.list_workflows(&filter).await.expect("list")),
            ["c"]
        );
        assert_eq!(
            ids(store.pending_workflows("exec-a").await.expect("pending")),
            ["a", "c", "d"]
        );
    }

    #[tokio::test]
    async fn components_are_stored_once() {
        let (_dir, store) = open_temp(Durability::Process).await;
        store
            .put_component("sha256:1", b"first")
            .await
            .expect("put");
        store
            .put_component("sha256:1", b"ignored")
            .await
            .expect("put again");
        assert_eq!(
            store
                .get_component("sha256:1")
                .await
                .expect("get")
                .as_deref(),
            Some(&b"first"[..])
        );
        assert_eq!(store.get_component("sha256:2").await.expect("get"), None);
    }

    #[tokio::test]
    async fn corrupt_rows_are_reported_as_corrupt() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("reprise.db");
        let path = path.to_str().expect("utf-8 path");
        let store = SqliteStore::open(path, Durability::Process)
            .await
            .expect("open");
        store
            .insert_workflow(&new_workflow("wf"))
            .await
            .expect("insert");
        store.record_step(&step("wf", 0)).await.expect("record");
        store.close().await;

        let mut conn = SqliteConnection::connect(&format!("sqlite:{path}"))
            .await
            .expect("raw");
        sqlx::query("UPDATE workflow_status SET status = 'SLEEPING'")
            .execute(&mut conn)
            .await
            .expect("edit");
        sqlx::query("UPDATE operation_outputs SET error = 'not json'")
            .execute(&mut conn)
            .await
            .expect("edit");
        conn.close().await.expect("close raw");

        let store = SqliteStore::open(path, Durability::Process)
            .await
            .expect("reopen");
        let err = store.get_workflow("wf").await.expect_err("bad status");
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    table: "workflow_status",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = store.steps("wf").await.expect_err("bad json");
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    table: "operation_outputs",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_steps_share_commits() {
        let (_dir, store) = open_temp(Durability::Synced).await;
        let store = Arc::new(store);
        store
            .insert_workflow(&new_workflow("wf"))
            .await
            .expect("insert");
        let before = store.commits();
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.record_step(&step("wf", i)).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("task").expect("record");
        }
        let commits = store.commits() - before;
        assert_eq!(store.steps("wf").await.expect("steps").len(), 200);
        assert!(commits < 50, "200 steps took {commits} commits");
    }

    #[tokio::test]
    async fn a_failing_request_does_not_sink_its_batch() {
        let (_dir, store) = open_temp(Durability::Process).await;
        let store = Arc::new(store);
        store
            .insert_workflow(&new_workflow("wf"))
            .await
            .expect("insert");
        store.record_step(&step("wf", 0)).await.expect("record");
        let before = store.commits();
        // Spawned together on this single-threaded runtime, they queue up and share a batch.
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.record_step(&step("wf", i % 10)).await })
            })
            .collect();
        let mut duplicates = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(()) => {}
                Err(StoreError::StepAlreadyRecorded { .. }) => duplicates += 1,
                Err(err) => panic!("unexpected {err:?}"),
            }
        }
        // Step 0 existed, steps 1..10 were each sent twice: 2 + 9 duplicates.
        assert_eq!(duplicates, 11);
        assert!(store.commits() - before < 10, "the steps were not batched");
        assert_eq!(store.steps("wf").await.expect("steps").len(), 10);
    }

    #[tokio::test]
    async fn mixed_requests_in_one_batch_each_get_their_own_answer() {
        let (_dir, store) = open_temp(Durability::Process).await;
        store
            .insert_workflow(&new_workflow("old"))
            .await
            .expect("insert");
        let before = store.commits();
        // Polled in order by one task, the requests are all queued before the writer wakes.
        let end = WorkflowEnd::Success("1".to_owned());
        let (new, old) = (new_workflow("new"), new_workflow("old"));
        let (new_step, stray_step) = (step("new", 0), step("ghost", 0));
        let (fresh, again, began, stepped, ghost_step, trapped, ghost_trap, finished) = tokio::join!(
            store.insert_workflow(&new),
            store.insert_workflow(&old),
            store.begin_execution("new", "exec-b"),
            store.record_step(&new_step),
            store.record_step(&stray_step),
            store.record_trap("old", "panic", "boom"),
            store.record_trap("ghost", "panic", "boom"),
            store.finish_workflow("new", &end),
        );
        assert_eq!(
            store.commits() - before,
            1,
            "expected a single group commit"
        );
        assert!(fresh.expect("fresh").created);
        assert!(!again.expect("again").created);
        assert_eq!(began.expect("began"), 1);
        stepped.expect("stepped");
        assert!(
            matches!(ghost_step, Err(StoreError::UnknownWorkflow(_))),
            "{ghost_step:?}"
        );
        trapped.expect("trapped");
        assert!(
            matches!(ghost_trap, Err(StoreError::UnknownWorkflow(_))),
            "{ghost_trap:?}"
        );
        finished.expect("finished");

        let new = store
            .get_workflow("new")
            .await
            .expect("get")
            .expect("exists");
        assert_eq!((new.status, new.executions), (WorkflowStatus::Success, 1));
        assert_eq!(
            store.steps("new").await.expect("steps"),
            vec![step("new", 0)]
        );
        let old = store
            .get_workflow("old")
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(old.trap_class.as_deref(), Some("panic"));
    }

    #[tokio::test]
    async fn a_batch_that_fails_as_a_whole_is_rolled_back_and_the_writer_recovers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("reprise.db");
        let path = path.to_str().expect("utf-8 path");
        // A tiny size cap makes SQLite fail with SQLITE_FULL, which may roll back the whole
        // transaction rather than one statement.
        let base = SqliteConnectOptions::new()
            .filename(path)
            .pragma("max_page_count", "64");
        let store = SqliteStore::open_with(path, base, Durability::Process)
            .await
            .expect("open");
        store
            .insert_workflow(&new_workflow("wf"))
            .await
            .expect("insert");
        let huge = vec![7u8; 1 << 20];
        let (first, second) = (step("wf", 0), step("wf", 1));
        let (a, full, b) = tokio::join!(
            store.record_step(&first),
            store.put_component("sha256:huge", &huge),
            store.record_step(&second),
        );
        assert!(matches!(full, Err(StoreError::Database(_))), "{full:?}");
        assert!(a.is_err() && b.is_err(), "{a:?} {b:?}");
        assert!(store.steps("wf").await.expect("steps").is_empty());
        // Later writes still work.
        store
            .record_step(&first)
            .await
            .expect("record after failure");
        store
            .record_step(&second)
            .await
            .expect("record after failure");
        assert_eq!(store.steps("wf").await.expect("steps").len(), 2);
    }

    #[tokio::test]
    async fn missing_directory_is_an_open_error_naming_the_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("no-such-dir").join("reprise.db");
        let path = path.to_str().expect("utf-8 path");
        for url in [
            path.to_owned(),
            format!("sqlite://{path}"),
            format!("sqlite:{path}"),
        ] {
            let err = SqliteStore::open(&url, Durability::Synced)
                .await
                .expect_err("must fail");
            assert!(
                matches!(&err, StoreError::Open { url: u, .. } if *u == url),
                "{err:?}"
            );
            let message = err.to_string();
            assert!(message.contains(path), "{message}");
            assert!(message.contains("does not exist"), "{message}");
        }
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_an_open_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("garbage.db");
        std::fs::write(&path, vec![0x42u8; 8192]).expect("write garbage");
        let err = SqliteStore::open(path.to_str().expect("utf-8"), Durability::Synced)
            .await
            .expect_err("must fail");
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn reopening_keeps_the_data() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("reprise.db");
        let url = format!("sqlite://{}", path.display());
        let store = SqliteStore::open(&url, Durability::Synced)
            .await
            .expect("open");
        store
            .insert_workflow(&new_workflow("wf"))
            .await
            .expect("insert");
        store.begin_execution("wf", "exec-a").await.expect("begin");
        store.record_step(&step("wf", 0)).await.expect("record");
        // Dropped without `close`: what was acknowledged is committed regardless.
        drop(store);

        let store = SqliteStore::open(path.to_str().expect("utf-8"), Durability::Synced)
            .await
            .expect("reopen");
        let record = store.get_workflow("wf").await.expect("get").expect("kept");
        assert_eq!(record.executions, 1);
        assert_eq!(store.steps("wf").await.expect("steps"), vec![step("wf", 0)]);
        let again = store
            .insert_workflow(&new_workflow("wf"))
            .await
            .expect("insert");
        assert!(!again.created);
    }

    #[test]
    fn durability_parses_and_prints() {
        assert_eq!(Durability::default(), Durability::Synced);
        for d in [Durability::Synced, Durability::Process] {
            assert_eq!(d.to_string().parse::<Durability>(), Ok(d));
        }
        assert_eq!("PROCESS".parse::<Durability>(), Ok(Durability::Process));
        assert!("fast".parse::<Durability>().is_err());
        assert_eq!(
            serde_json::to_string(&Durability::Process).expect("json"),
            "\"process\""
        );
        assert_eq!(
            serde_json::from_str::<Durability>("\"synced\"").expect("json"),
            Durability::Synced
        );
    }

    fn queued(id: &str, queue: &str, priority: i32) -> NewWorkflow {
        NewWorkflow {
            queue_name: Some(queue.to_owned()),
            priority,
            ..new_workflow(id)
        }
    }

    fn claim(queue: &str, executor_id: &str, max: u32) -> QueueClaim {
        QueueClaim {
            queue: queue.to_owned(),
            executor_id: executor_id.to_owned(),
            max,
            concurrency: None,
            rate_limit: None,
        }
    }

    fn ids(records: Vec<WorkflowRecord>) -> Vec<String> {
        records.into_iter().map(|r| r.id).collect()
    }

    async fn status_of(store: &SqliteStore, id: &str) -> WorkflowStatus {
        store
            .get_workflow(id)
            .await
            .expect("get")
            .expect("exists")
            .status
    }

    #[tokio::test]
    async fn enqueue_creates_enqueued_rows_and_direct_starts_record_started_at() {
        let (_dir, store) = open_temp(Durability::Process).await;
        let new = NewWorkflow {
            // A queued workflow starts only when claimed, whatever the caller asked.
            begin_execution: true,
            deduplication_id: Some("key".to_owned()),
            parent_workflow_id: Some("parent".to_owned()),
            ..queued("q1", "emails", 5)
        };
        let record = store.insert_workflow(&new).await.expect("insert").record;
        assert_eq!(record.status, WorkflowStatus::Enqueued);
        assert_eq!(record.executions, 0);
        assert_eq!(record.started_at, None);
        assert_eq!(record.queue_name.as_deref(), Some("emails"));
        assert_eq!(record.priority, 5);
        assert_eq!(record.deduplication_id.as_deref(), Some("key"));
        assert_eq!(record.parent_workflow_id.as_deref(), Some("parent"));
        assert!(
            store
                .pending_workflows("exec-a")
                .await
                .expect("pending")
                .is_empty()
        );

        let direct = NewWorkflow {
            begin_execution: true,
            ..new_workflow("direct")
        };
        let record = store.insert_workflow(&direct).await.expect("insert").record;
        assert_eq!(
            (record.status, record.executions),
            (WorkflowStatus::Pending, 1)
        );
        assert_eq!(record.started_at, Some(record.created_at));
        assert_eq!(record.queue_name, None);

        // A start without `begin_execution` gets `started_at` from its first execution only.
        let later = store
            .insert_workflow(&new_workflow("later"))
            .await
            .expect("insert")
            .record;
        assert_eq!(later.started_at, None);
        store
            .begin_execution("later", "exec-a")
            .await
            .expect("begin");
        let first = store
            .get_workflow("later")
            .await
            .expect("get")
            .expect("exists");
        assert!(first.started_at.is_some());
        tokio::time::sleep(Duration::from_millis(5)).await;
        store
            .begin_execution("later", "exec-a")
            .await
            .expect("begin");
        let second = store
            .get_workflow("later")
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(second.started_at, first.started_at);
    }

    #[tokio::test]
    async fn claim_takes_priority_then_fifo_up_to_max() {
        let (_dir, store) = open_temp(Durability::Process).await;
        for (id, priority) in [("a", 1), ("b", 0), ("c", 1), ("d", 0), ("e", 2)] {
            store
                .insert_workflow(&queued(id, "q", priority))
                .await
                .expect("insert");
        }
        store
            .insert_workflow(&queued("other", "elsewhere", -1))
            .await
            .expect("insert");
        store
            .insert_workflow(&new_workflow("direct"))
            .await
            .expect("insert");

        assert!(
            store
                .claim_queued(&claim("q", "exec-b", 0))
                .await
                .expect("claim")
                .is_empty()
        );
        let first = store
            .claim_queued(&claim("q", "exec-b", 3))
            .await
            .expect("claim");
        assert_eq!(ids(first.clone()), ["b", "d", "a"]);
        for record in &first {
            assert_eq!(record.status, WorkflowStatus::Pending);
            assert_eq!(record.executor_id, "exec-b");
            assert_eq!(record.executions, 1);
            assert!(record.started_at.is_some());
            assert_eq!(record.queue_name.as_deref(), Some("q"));
        }
        let rest = store
            .claim_queued(&claim("q", "exec-b", 10))
            .await
            .expect("claim");
        assert_eq!(ids(rest), ["c", "e"]);
        assert!(
            store
                .claim_queued(&claim("q", "exec-b", 10))
                .await
                .expect("claim")
                .is_empty()
        );
        assert!(
            store
                .claim_queued(&claim("none", "exec-b", 10))
                .await
                .expect("claim")
                .is_empty()
        );
        assert_eq!(status_of(&store, "other").await, WorkflowStatus::Enqueued);
        assert_eq!(
            ids(store.pending_workflows("exec-b").await.expect("pending")),
            ["a", "b", "c", "d", "e"]
        );
    }

    #[tokio::test]
    async fn claim_respects_global_concurrency() {
        let (_dir, store) = open_temp(Durability::Process).await;
        for i in 0..5 {
            store
                .insert_workflow(&queued(&format!("w{i}"), "q", 0))
                .await
                .expect("insert");
        }
        let limited = |executor: &str| QueueClaim {
            concurrency: Some(2),
            ..claim("q", executor, 10)
        };
        assert_eq!(
            ids(store.claim_queued(&limited("exec-a")).await.expect("claim")),
            ["w0", "w1"]
        );
        // Another executor sees the same global limit: PENDING rows count, whoever owns them.
        assert!(
            store
                .claim_queued(&limited("exec-b"))
                .await
                .expect("claim")
                .is_empty()
        );
        store
            .finish_workflow("w0", &WorkflowEnd::Success("1".to_owned()))
            .await
            .expect("finish");
        assert_eq!(
            ids(store.claim_queued(&limited("exec-b")).await.expect("claim")),
            ["w2"]
        );
        assert!(
            store
                .claim_queued(&limited("exec-b"))
                .await
                .expect("claim")
                .is_empty()
        );
        // The local limit still applies under a looser global one.
        let loose = QueueClaim {
            concurrency: Some(100),
            ..claim("q", "exec-b", 1)
        };
        assert_eq!(
            ids(store.claim_queued(&loose).await.expect("claim")),
            ["w3"]
        );
    }

    #[tokio::test]
    async fn claim_respects_the_rate_limit_window() {
        let (_dir, store) = open_temp(Durability::Process).await;
        for i in 0..6 {
            store
                .insert_workflow(&queued(&format!("w{i}"), "q", 0))
                .await
                .expect("insert");
        }
        let period_ms = 300;
        let limited = QueueClaim {
            rate_limit: Some(RateLimit {
                limit: 2,
                period_ms,
            }),
            ..claim("q", "exec-a", 10)
        };
        let start = std::time::Instant::now();
        assert_eq!(
            ids(store.claim_queued(&limited).await.expect("claim")),
            ["w0", "w1"]
        );
        // Finished workflows still count: the limit is on starts, not on running ones.
        for id in ["w0", "w1"] {
            store
                .finish_workflow(id, &WorkflowEnd::Success("1".to_owned()))
                .await
                .expect("finish");
        }
        let again = store.claim_queued(&limited).await.expect("claim");
        if start.elapsed() < Duration::from_millis(period_ms as u64) {
            assert!(
                again.is_empty(),
                "claimed {:?} inside the window",
                ids(again)
            );
        }
        tokio::time::sleep(Duration::from_millis(period_ms as u64 + 20)).await;
        assert_eq!(
            ids(store.claim_queued(&limited).await.expect("claim")),
            ["w2", "w3"]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_claimers_on_one_file_never_share_a_workflow() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("reprise.db");
        let path = path.to_str().expect("utf-8 path").to_owned();
        let first = Arc::new(
            SqliteStore::open(&path, Durability::Process)
                .await
                .expect("open"),
        );
        let second = Arc::new(
            SqliteStore::open(&path, Durability::Process)
                .await
                .expect("open"),
        );
        let total = 300;
        for i in 0..total {
            first
                .insert_workflow(&queued(&format!("w{i:03}"), "q", i % 3))
                .await
                .expect("insert");
        }
        let claimers: Vec<_> = [(&first, "exec-a"), (&second, "exec-b")]
            .into_iter()
            .flat_map(|(store, executor)| {
                (0..3).map(move |task| {
                    let store = Arc::clone(store);
                    let executor = format!("{executor}-{task}");
                    tokio::spawn(async move {
                        let mut mine = Vec::new();
                        loop {
                            let got = store
                                .claim_queued(&claim("q", &executor, 7))
                                .await
                                .expect("claim");
                            if got.is_empty() {
                                return mine;
                            }
                            assert!(got.iter().all(|r| r.executor_id == executor));
                            mine.extend(ids(got));
                        }
                    })
                })
            })
            .collect();
        let mut claimed = Vec::new();
        for claimer in claimers {
            claimed.extend(claimer.await.expect("claimer"));
        }
        let unique: std::collections::HashSet<_> = claimed.iter().collect();
        assert_eq!(
            claimed.len(),
            total as usize,
            "some workflow was claimed twice or never"
        );
        assert_eq!(unique.len(), total as usize);

        // A global concurrency limit holds across processes too.
        for i in 0..40 {
            first
                .insert_workflow(&queued(&format!("c{i:02}"), "capped", 0))
                .await
                .expect("insert");
        }
        let capped = |executor: &str| QueueClaim {
            concurrency: Some(10),
            ..claim("capped", executor, 3)
        };
        let claimers: Vec<_> = (0..8)
            .map(|i| {
                let store = Arc::clone(if i % 2 == 0 { &first } else { &second });
                let claim = capped(&format!("exec-{i}"));
                tokio::spawn(async move {
                    let mut n = 0;
                    for _ in 0..5 {
                        n += store.claim_queued(&claim).await.expect("claim").len();
                    }
                    n
                })
            })
            .collect();
        let mut running = 0;
        for claimer in claimers {
            running += claimer.await.expect("claimer");
        }
        assert_eq!(running, 10);
    }

    #[tokio::test]
    async fn deduplication_rejects_a_second_active_workflow_only() {
        let (_dir, store) = open_temp(Durability::Process).await;
        let with_key = |id: &str, queue: &str| NewWorkflow {
            deduplication_id: Some("order-7".to_owned()),
            ..queued(id, queue, 0)
        };
        assert!(
            store
                .insert_workflow(&with_key("a", "q"))
                .await
                .expect("insert")
                .created
        );
        let err = store
            .insert_workflow(&with_key("b", "q"))
            .await
            .expect_err("duplicate");
        assert!(
            matches!(&err, StoreError::Duplicate { queue, deduplication_id }
                if queue == "q" && deduplication_id == "order-7"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "deduplication id order-7 is already active on queue q"
        );
        assert_eq!(store.get_workflow("b").await.expect("get"), None);
        // Retrying the same workflow id is still an idempotent join, not a duplicate.
        assert!(
            !store
                .insert_workflow(&with_key("a", "q"))
                .await
                .expect("join")
                .created
        );
        // Keys are per queue.
        store
            .insert_workflow(&with_key("c", "other"))
            .await
            .expect("other queue");
        // Still active once running.
        store
            .claim_queued(&claim("q", "exec-a", 1))
            .await
            .expect("claim");
        assert!(matches!(
            store.insert_workflow(&with_key("b", "q")).await,
            Err(StoreError::Duplicate { .. })
        ));
        store
            .finish_workflow("a", &WorkflowEnd::Success("1".to_owned()))
            .await
            .expect("finish");
        assert!(
            store
                .insert_workflow(&with_key("b", "q"))
                .await
                .expect("after")
                .created
        );

        // A rejected insert does not sink the batch it shares.
        store
            .insert_workflow(&new_workflow("wf"))
            .await
            .expect("insert");
        let before = store.commits();
        let (dup, other_step, fresh) = (with_key("d", "q"), step("wf", 0), with_key("e", "q2"));
        let (dup, stepped, fresh) = tokio::join!(
            store.insert_workflow(&dup),
            store.record_step(&other_step),
            store.insert_workflow(&fresh),
        );
        assert_eq!(
            store.commits() - before,
            1,
            "expected a single group commit"
        );
        assert!(matches!(dup, Err(StoreError::Duplicate { .. })), "{dup:?}");
        stepped.expect("step");
        assert!(fresh.expect("fresh").created);
        assert_eq!(store.steps("wf").await.expect("steps").len(), 1);
    }

    #[tokio::test]
    async fn cancel_stops_active_workflows_and_leaves_ended_ones() {
        let (_dir, store) = open_temp(Durability::Process).await;
        store
            .insert_workflow(&queued("queued", "q", 0))
            .await
            .expect("insert");
        store
            .insert_workflow(&new_workflow("running"))
            .await
            .expect("insert");
        store
            .insert_workflow(&new_workflow("done"))
            .await
            .expect("insert");
        store
            .finish_workflow("done", &WorkflowEnd::Success("1".to_owned()))
            .await
            .expect("finish");

        let cancelled = store.cancel_workflow("queued").await.expect("cancel");
        assert_eq!(cancelled.status, WorkflowStatus::Cancelled);
        assert!(
            store
                .claim_queued(&claim("q", "exec-a", 5))
                .await
                .expect("claim")
                .is_empty()
        );
        assert_eq!(
            store
                .cancel_workflow("running")
                .await
                .expect("cancel")
                .status,
            WorkflowStatus::Cancelled
        );
        // A late ending does not overwrite the cancellation.
        store
            .finish_workflow("running", &WorkflowEnd::Success("1".to_owned()))
            .await
            .expect("finish");
        assert_eq!(
            status_of(&store, "running").await,
            WorkflowStatus::Cancelled
        );
        let done = store.cancel_workflow("done").await.expect("cancel ended");
        assert_eq!(
            (done.status, done.output.as_deref()),
            (WorkflowStatus::Success, Some("1"))
        );
        let err = store.cancel_workflow("ghost").await.expect_err("unknown");
        assert!(
            matches!(err, StoreError::UnknownWorkflow(ref id) if id == "ghost"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn resume_restarts_all_but_successes() {
        let (_dir, store) = open_temp(Durability::Process).await;
        store
            .insert_workflow(&queued("cancelled", "q", 0))
            .await
            .expect("insert");
        store
            .claim_queued(&claim("q", "exec-a", 1))
            .await
            .expect("claim");
        store
            .begin_execution("cancelled", "exec-a")
            .await
            .expect("begin");
        store
            .record_trap("cancelled", "panic", "boom")
            .await
            .expect("trap");
        store.cancel_workflow("cancelled").await.expect("cancel");

        let resumed = store
            .resume_workflow("cancelled", "exec-b")
            .await
            .expect("resume");
        assert_eq!(resumed.status, WorkflowStatus::Pending);
        assert_eq!(resumed.executions, 0);
        assert_eq!(resumed.executor_id, "exec-b");
        assert_eq!(resumed.trap_class.as_deref(), Some("panic"));
        assert_eq!(resumed.queue_name.as_deref(), Some("q"));
        assert!(resumed.started_at.is_some());
        // PENDING now: recovery finds it, the queue does not dispatch it again.
        assert_eq!(
            ids(store.pending_workflows("exec-b").await.expect("pending")),
            ["cancelled"]
        );
        assert!(
            store
                .claim_queued(&claim("q", "exec-a", 5))
                .await
                .expect("claim")
                .is_empty()
        );

        store
            .insert_workflow(&new_workflow("failed"))
            .await
            .expect("insert");
        store
            .finish_workflow("failed", &WorkflowEnd::Error("bad".to_owned()))
            .await
            .expect("finish");
        let resumed = store
            .resume_workflow("failed", "exec-b")
            .await
            .expect("resume");
        assert_eq!(
            (resumed.status, resumed.error),
            (WorkflowStatus::Pending, None)
        );

        store
            .insert_workflow(&new_workflow("exhausted"))
            .await
            .expect("insert");
        store
            .finish_workflow(
                "exhausted",
                &WorkflowEnd::MaxRecoveryAttemptsExceeded("traps".to_owned()),
            )
            .await
            .expect("finish");
        for _ in 0..3 {
            store
                .begin_execution("exhausted", "exec-a")
                .await
                .expect("begin");
        }
        let resumed = store
            .resume_workflow("exhausted", "exec-b")
            .await
            .expect("resume");
        assert_eq!(
            (resumed.status, resumed.executions),
            (WorkflowStatus::Pending, 0)
        );

        // An ENQUEUED workflow starts now, skipping its queue.
        store
            .insert_workflow(&queued("waiting", "q", 0))
            .await
            .expect("insert");
        let resumed = store
            .resume_workflow("waiting", "exec-b")
            .await
            .expect("resume");
        assert_eq!(resumed.status, WorkflowStatus::Pending);
        assert!(resumed.started_at.is_some());

        store
            .insert_workflow(&new_workflow("ok"))
            .await
            .expect("insert");
        store
            .finish_workflow("ok", &WorkflowEnd::Success("1".to_owned()))
            .await
            .expect("finish");
        let err = store
            .resume_workflow("ok", "exec-b")
            .await
            .expect_err("success");
        assert!(
            matches!(&err, StoreError::NotResumable { workflow_id, status: WorkflowStatus::Success }
                if workflow_id == "ok"),
            "{err:?}"
        );
        assert_eq!(status_of(&store, "ok").await, WorkflowStatus::Success);
        let err = store
            .resume_workflow("ghost", "exec-b")
            .await
            .expect_err("unknown");
        assert!(matches!(err, StoreError::UnknownWorkflow(_)), "{err:?}");

        // Resuming must not make two workflows active under one deduplication id.
        let keyed = |id: &str| NewWorkflow {
            deduplication_id: Some("k".to_owned()),
            ..queued(id, "dq", 0)
        };
        store.insert_workflow(&keyed("k1")).await.expect("insert");
        store.cancel_workflow("k1").await.expect("cancel");
        store.insert_workflow(&keyed("k2")).await.expect("insert");
        let err = store
            .resume_workflow("k1", "exec-b")
            .await
            .expect_err("dup");
        assert!(matches!(err, StoreError::Duplicate { .. }), "{err:?}");
        assert_eq!(status_of(&store, "k1").await, WorkflowStatus::Cancelled);
    }

    #[tokio::test]
    async fn fork_copies_the_workflow_and_the_steps_before_the_fork_point() {
        let (_dir, store) = open_temp(Durability::Process).await;
        let original = NewWorkflow {
            deduplication_id: Some("k".to_owned()),
            parent_workflow_id: Some("parent".to_owned()),
            config: r#"{"region":"eu"}"#.to_owned(),
            ..queued("orig", "q", 3)
        };
        store.insert_workflow(&original).await.expect("insert");
        store
            .claim_queued(&claim("q", "exec-a", 1))
            .await
            .expect("claim");
        for i in 0..5 {
            store.record_step(&step("orig", i)).await.expect("record");
        }
        store
            .record_trap("orig", "panic", "boom")
            .await
            .expect("trap");
        store
            .finish_workflow("orig", &WorkflowEnd::Error("bad".to_owned()))
            .await
            .expect("finish");

        let fork = store.fork_workflow("orig", "fork", 3).await.expect("fork");
        let orig = store
            .get_workflow("orig")
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(fork.id, "fork");
        assert_eq!(fork.status, WorkflowStatus::Pending);
        assert_eq!(fork.executions, 0);
        assert_eq!(
            (
                &fork.name,
                &fork.input,
                &fork.app_version,
                &fork.instance,
                &fork.config
            ),
            (
                &orig.name,
                &orig.input,
                &orig.app_version,
                &orig.instance,
                &orig.config
            )
        );
        assert_eq!(fork.executor_id, orig.executor_id);
        assert_eq!(fork.max_recovery_attempts, orig.max_recovery_attempts);
        assert_eq!((fork.queue_name, fork.deduplication_id), (None, None));
        assert_eq!((fork.parent_workflow_id, fork.started_at), (None, None));
        assert_eq!(
            (fork.priority, fork.error, fork.trap_class),
            (0, None, None)
        );
        assert!(fork.created_at >= orig.created_at);
        let copied = store.steps("fork").await.expect("steps");
        let expected: Vec<_> = (0..3)
            .map(|i| StepRecord {
                workflow_id: "fork".to_owned(),
                ..step("orig", i)
            })
            .collect();
        assert_eq!(copied, expected);
        assert_eq!(store.steps("orig").await.expect("steps").len(), 5);
        assert_eq!(orig.status, WorkflowStatus::Error);
        assert_eq!(
            ids(store.pending_workflows("exec-a").await.expect("pending")),
            ["fork"]
        );

        // From step 0: nothing is replayed.
        store.fork_workflow("orig", "fresh", 0).await.expect("fork");
        assert!(store.steps("fresh").await.expect("steps").is_empty());

        let err = store
            .fork_workflow("orig", "fork", 1)
            .await
            .expect_err("taken");
        assert!(
            matches!(err, StoreError::WorkflowExists(ref id) if id == "fork"),
            "{err:?}"
        );
        assert!(err.to_string().contains("fork"), "{err}");
        assert_eq!(store.steps("fork").await.expect("steps").len(), 3);
        let err = store
            .fork_workflow("ghost", "new", 1)
            .await
            .expect_err("unknown");
        assert!(
            matches!(err, StoreError::UnknownWorkflow(ref id) if id == "ghost"),
            "{err:?}"
        );
        assert_eq!(store.get_workflow("new").await.expect("get"), None);

        // Forks share a batch with other writes and still get their own answers.
        let fresh_step = step("fresh", 0);
        let before = store.commits();
        let (forked, taken, stepped) = tokio::join!(
            store.fork_workflow("orig", "batched", 5),
            store.fork_workflow("orig", "fork", 5),
            store.record_step(&fresh_step),
        );
        assert_eq!(
            store.commits() - before,
            1,
            "expected a single group commit"
        );
        assert_eq!(forked.expect("fork").id, "batched");
        assert!(
            matches!(taken, Err(StoreError::WorkflowExists(_))),
            "{taken:?}"
        );
        stepped.expect("step");
        assert_eq!(store.steps("batched").await.expect("steps").len(), 5);
        assert_eq!(store.steps("fork").await.expect("steps").len(), 3);
    }

    #[tokio::test]
    async fn listing_filters_by_queue_time_range_and_offset() {
        let (_dir, store) = open_temp(Durability::Process).await;
        let mut created = Vec::new();
        for (id, queue) in [
            ("a", Some("q")),
            ("b", None),
            ("c", Some("q")),
            ("d", Some("r")),
        ] {
            let new = NewWorkflow {
                queue_name: queue.map(str::to_owned),
                ..new_workflow(id)
            };
            created.push(
                store
                    .insert_workflow(&new)
                    .await
                    .expect("insert")
                    .record
                    .created_at,
            );
            // Distinct timestamps for the range filters.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let list = |filter: WorkflowFilter| {
            let store = &store;
            async move { ids(store.list_workflows(&filter).await.expect("list")) }
        };
        assert_eq!(
            list(WorkflowFilter {
                queue: Some("q".to_owned()),
                ..Default::default()
            })
            .await,
            ["c", "a"]
        );
        assert_eq!(
            list(WorkflowFilter {
                created_after: Some(created[1]),
                ..Default::default()
            })
            .await,
            ["d", "c", "b"]
        );
        assert_eq!(
            list(WorkflowFilter {
                created_before: Some(created[2]),
                ..Default::default()
            })
            .await,
            ["b", "a"]
        );
        assert_eq!(
            list(WorkflowFilter {
                created_after: Some(created[1]),
                created_before: Some(created[3]),
                ..Default::default()
            })
            .await,
            ["c", "b"]
        );
        assert_eq!(
            list(WorkflowFilter {
                offset: Some(1),
                ..Default::default()
            })
            .await,
            ["c", "b", "a"]
        );
        assert_eq!(
            list(WorkflowFilter {
                offset: Some(1),
                limit: Some(2),
                ..Default::default()
            })
            .await,
            ["c", "b"]
        );
        assert_eq!(
            list(WorkflowFilter {
                status: Some(WorkflowStatus::Enqueued),
                queue: Some("q".to_owned()),
                name: Some("greet".to_owned()),
                created_after: Some(created[0]),
                created_before: Some(created[3]),
                limit: Some(10),
                offset: Some(0),
            })
            .await,
            ["c", "a"]
        );
        assert!(
            list(WorkflowFilter {
                queue: Some("none".to_owned()),
                ..Default::default()
            })
            .await
            .is_empty()
        );
    }

    #[tokio::test]
    async fn queue_depths_and_status_counts() {
        let (_dir, store) = open_temp(Durability::Process).await;
        assert!(store.queue_depths().await.expect("depths").is_empty());
        assert!(store.count_by_status().await.expect("counts").is_empty());
        for i in 0..4 {
            store
                .insert_workflow(&queued(&format!("a{i}"), "alpha", 0))
                .await
                .expect("insert");
        }
        store
            .insert_workflow(&queued("b0", "beta", 0))
            .await
            .expect("insert");
        store
            .insert_workflow(&queued("done", "gamma", 0))
            .await
            .expect("insert");
        store
            .insert_workflow(&new_workflow("direct"))
            .await
            .expect("insert");
        store
            .claim_queued(&claim("alpha", "exec-a", 3))
            .await
            .expect("claim");
        store
            .finish_workflow("a0", &WorkflowEnd::Success("1".to_owned()))
            .await
            .expect("finish");
        store.cancel_workflow("done").await.expect("cancel");

        assert_eq!(
            store.queue_depths().await.expect("depths"),
            vec![
                QueueDepth {
                    queue: "alpha".to_owned(),
                    enqueued: 1,
                    pending: 2,
                },
                QueueDepth {
                    queue: "beta".to_owned(),
                    enqueued: 1,
                    pending: 0,
                },
            ]
        );
        let mut counts = store.count_by_status().await.expect("counts");
        counts.sort_by_key(|(status, _)| status.as_str());
        assert_eq!(
            counts,
            vec![
                (WorkflowStatus::Cancelled, 1),
                (WorkflowStatus::Enqueued, 2),
                (WorkflowStatus::Pending, 3),
                (WorkflowStatus::Success, 1),
            ]
        );
    }

    #[tokio::test]
    async fn workflow_statuses_reads_many_in_the_order_asked() {
        let (_dir, store) = open_temp(Durability::Process).await;
        for id in ["a", "b", "c"] {
            store
                .insert_workflow(&new_workflow(id))
                .await
                .expect("insert");
        }
        store
            .finish_workflow("b", &WorkflowEnd::Success("2".to_owned()))
            .await
            .expect("finish");
        let asked: Vec<String> = ["c", "ghost", "b", "a"].map(str::to_owned).into();
        let records = store.workflow_statuses(&asked).await.expect("statuses");
        assert_eq!(ids(records.clone()), ["c", "b", "a"]);
        assert_eq!(records[1].status, WorkflowStatus::Success);
        assert_eq!(records[1].output.as_deref(), Some("2"));
        assert!(store.workflow_statuses(&[]).await.expect("none").is_empty());
        // Ids with JSON specials travel intact.
        store
            .insert_workflow(&new_workflow(r#"we"ird\id"#))
            .await
            .expect("insert");
        let asked = vec![r#"we"ird\id"#.to_owned()];
        assert_eq!(
            ids(store.workflow_statuses(&asked).await.expect("statuses")),
            asked
        );
    }

    /// Sequential step latency; run with
    /// `cargo test -p reprise --lib store::sqlite::tests::step_latency -- --ignored --nocapture`.
    #[tokio::test]
    #[ignore = "timing measurement, not a check"]
    async fn step_latency() {
        for durability in [Durability::Process, Durability::Synced] {
            let (_dir, store) = open_temp(durability).await;
            store
                .insert_workflow(&new_workflow("wf"))
                .await
                .expect("insert");
            let n = if durability == Durability::Process {
                5_000
            } else {
                300
            };
            let start = std::time::Instant::now();
            for i in 0..n {
                store.record_step(&step("wf", i)).await.expect("record");
            }
            let per = start.elapsed() / n;
            println!("{durability}: {per:?} per sequential record_step ({n} steps)");
        }
    }
}
