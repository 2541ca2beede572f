//! The embedded SQLite backend: one file, no server, checkpoints that survive a crash.
//!
//! SQLite allows one writer at a time and a commit costs an fsync, so every write goes through a
//! single writer, on a thread of its own, that owns the only writing connection ([`writer`]). It
//! takes whatever requests are queued (up to [`MAX_BATCH`](writer::MAX_BATCH)), runs them in one
//! transaction and commits once: concurrent workflows' checkpoints share one fsync (group
//! commit) instead of queueing on the file lock. A request that arrives alone runs in
//! autocommit mode, which saves the BEGIN and COMMIT round trips on the sequential path. Reads
//! go through a small pool of read-only connections, which WAL lets run beside the writer.
//!
//! The statements themselves are the shared ones ([`Dialect`]); [`statements`] holds the few
//! only SQLite needs (the one-statement queue claim, a fork kept whole by a savepoint), and
//! [`batch`] how a batch's bulk kinds become multi-row statements.

mod batch;
mod durability;
mod failure;
mod file;
mod first_open;
mod lane;
mod location;
mod outcome;
mod request;
mod statements;
mod writer;

pub use durability::Durability;
pub(crate) use request::Alone;
pub(crate) use statements::in_savepoint;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use first_open::FirstOpen;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow,
};
use sqlx::{Connection, QueryBuilder, Sqlite};
use tokio::sync::{mpsc, oneshot};

use super::executors::Executors;
use super::partitions::Partitions;
use super::rows::{Columns, get};
use super::schedules::{ScheduleRecord, Schedules};
use super::shared::Dialect;
use super::waits_sql::Waits;
use super::written::StepRow;
use super::{
    AdminStore, Began, Change, DbError, DispatchStore, EventRecord, ExecutionStore, ExecutorRecord,
    Inserted, Lapsed, MailboxStore, MessageRecord, NewMessage, NewWorkflow, QueueClaim, QueueDepth,
    ScheduleStore, StepRecord, StoreError, StreamInfo, StreamRead, TrapRecord, WorkflowEnd,
    WorkflowFilter, WorkflowRecord, WorkflowStatus,
};
use lane::Lane;
use location::{check_parent_directory, location};
use outcome::Reply;
use request::{BoxFuture, Closure, Request};
use writer::Writer;

/// How long to wait for another process's write lock before reporting `StoreError::Locked`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Readers needed at once are few (CLI listings, recovery scans, replays).
const READ_POOL_SIZE: u32 = 4;

/// Embedded migrations; the path is relative to host/store/Cargo.toml.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// A [`Store`] in one SQLite file, for a single host process (or a few on one machine).
///
/// Dropping it stops the writer once the requests already queued are done; use
/// [`SqliteStore::close`] to wait for that.
pub struct SqliteStore {
    pub(crate) reads: SqlitePool,
    writes: mpsc::Sender<Request>,
    writer: oneshot::Receiver<()>,
    commits: Arc<AtomicU64>,
    /// Where a workflow running alone commits its steps (`None` in memory).
    lane: Option<Lane>,
    /// See [`SqliteStore::hold_writer`].
    #[cfg(test)]
    hold: Arc<tokio::sync::Mutex<()>>,
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
    /// runtime (the connections are opened there); the writer runs on a thread of its own.
    pub async fn open(url_or_path: &str, durability: Durability) -> Result<Self, StoreError> {
        Self::open_with(url_or_path, location(url_or_path)?, durability).await
    }

    /// Whether the file `url_or_path` names exists already (a database to read, not one to
    /// create); false for a location that does not parse.
    pub fn exists(url_or_path: &str) -> bool {
        location(url_or_path).is_ok_and(|options| options.get_filename().exists())
    }

    /// `open` once the location is parsed; tests add pragmas to `base` here.
    async fn open_with(
        url_or_path: &str,
        base: SqliteConnectOptions,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let open_error = |source: sqlx::Error| StoreError::Open {
            url: url_or_path.to_owned(),
            source: DbError::from(source),
        };
        let options = base
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(durability.synchronous())
            .foreign_keys(true)
            // Statement journals (a multi-row write inside a batch's transaction keeps one, to
            // undo just itself) in memory, not in a temporary file written for every batch.
            .pragma("temp_store", "memory")
            .busy_timeout(BUSY_TIMEOUT);
        check_parent_directory(options.get_filename()).map_err(open_error)?;

        let writer = first_open::connect_and_migrate(&options, &MIGRATOR)
            .await
            .map_err(|failure| match failure {
                FirstOpen::Connect(e) => open_error(e),
                FirstOpen::Migrate(e) => StoreError::Migrate(e.into()),
            })?;

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
        let lane = Lane::new(options.get_filename(), durability, Arc::clone(&commits));
        let (writes, queue) = mpsc::channel(writer::QUEUE_DEPTH);
        let turn = lane.as_ref().map(Lane::turn);
        let writer = Writer::new(options, writer, Arc::clone(&commits), turn);
        #[cfg(test)]
        let hold = Arc::clone(&writer.hold);
        let writer = writer.spawn(queue).map_err(|err| {
            tracing::error!(error = %err, "cannot start the sqlite writer thread");
            StoreError::WriterGone
        })?;
        tracing::debug!(url = url_or_path, %durability, "opened sqlite store");
        Ok(SqliteStore {
            reads,
            writes,
            writer,
            commits,
            lane,
            #[cfg(test)]
            hold,
        })
    }

    /// Transactions committed by the writer so far. Requests per commit shows how well group
    /// commit is working; useful for tests and metrics.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Of [`commits`](Self::commits), those a workflow running alone made on its own thread.
    pub fn lane_commits(&self) -> u64 {
        self.lane.as_ref().map_or(0, Lane::commits)
    }

    /// Keeps the writer from taking more than one request until the guard is dropped: what a
    /// test queues meanwhile meets in one batch.
    #[cfg(test)]
    async fn hold_writer(&self) -> tokio::sync::OwnedMutexGuard<()> {
        Arc::clone(&self.hold).lock_owned().await
    }

    /// The store with every step going through the writer, for tests of its batches.
    #[cfg(test)]
    fn without_lane(mut self) -> Self {
        self.lane = None;
        self
    }

    /// Notes who writes, so the lane can tell a workflow running alone.
    fn note(&self, workflow_id: &str) {
        if let Some(lane) = &self.lane {
            lane.note(workflow_id);
        }
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
        if writer.await.is_err() {
            tracing::error!("sqlite writer thread failed");
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

    /// Runs `run` on the writer's connection in its turn: alone, or inside a batch shared
    /// with other requests.
    pub(crate) async fn run<T, F>(&self, alone: Alone, run: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        self.write(|reply| Request::Other(Box::new(Closure { run, reply, alone })))
            .await
    }
}

/// Runs `work` in a savepoint (a transaction of its own when none is open): a write and the
/// position it is recorded at commit, or roll back, together even inside a shared batch.
async fn whole<'c, T, F>(conn: &'c mut SqliteConnection, work: F) -> Result<T, StoreError>
where
    T: Send,
    F: for<'t> FnOnce(
            &'t mut sqlx::Transaction<'_, Sqlite>,
        ) -> BoxFuture<'t, Result<T, StoreError>>
        + Send
        + Sync
        + 'c,
{
    conn.transaction(work).await
}

impl Dialect for Sqlite {
    const INSERTION_ORDER: &'static str = "rowid";
    const LOCK_ROW: &'static str = "";
    const SHARE_ROW: &'static str = "";
    const SKIP_LOCKED: &'static str = "";
    const BYTES_OF: (&'static str, &'static str) = ("LENGTH(CAST(", " AS BLOB))");
    const BYTEWISE: &'static str = "";

    /// The ids travel as one JSON array.
    fn push_id_condition(
        query: &mut QueryBuilder<Sqlite>,
        ids: &[String],
    ) -> Result<(), StoreError> {
        let ids = serde_json::to_string(ids).map_err(|err| StoreError::Corrupt {
            table: "workflow_status",
            message: format!("cannot encode workflow ids: {err}"),
        })?;
        query
            .push("workflow_id IN (SELECT value FROM json_each(")
            .push_bind(ids)
            .push("))");
        Ok(())
    }
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
    fn bytes(&self, table: &'static str, column: &str) -> Result<Vec<u8>, StoreError> {
        get(self, table, column)
    }
}

/// Writes become requests to the writer task; reads run on the read pool.
#[async_trait]
impl ExecutionStore for SqliteStore {
    async fn put_component(
        &self,
        digest: &str,
        bytes: &[u8],
        topics: Option<&str>,
    ) -> Result<(), StoreError> {
        let (digest, bytes) = (digest.to_owned(), bytes.to_vec());
        let topics = topics.map(str::to_owned);
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(async move {
                Sqlite::put_component(conn, &digest, &bytes, topics.as_deref()).await
            })
        })
        .await
    }

    async fn get_component(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Sqlite::get_component(&self.reads, digest).await
    }

    async fn component_topics(&self, digest: &str) -> Result<Option<String>, StoreError> {
        Sqlite::component_topics(&self.reads, digest).await
    }

    async fn insert_workflow(&self, new: &NewWorkflow) -> Result<Inserted, StoreError> {
        self.note(&new.id);
        let new = Box::new(new.clone());
        self.write(|reply| Request::InsertWorkflow { new, reply })
            .await
    }

    async fn insert_workflow_at(
        &self,
        new: &NewWorkflow,
        at: i64,
        end: Option<&WorkflowEnd>,
    ) -> Result<Inserted, StoreError> {
        self.note(&new.id);
        let (new, end) = (new.clone(), end.cloned());
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(async move { Sqlite::insert_workflow(conn, &new, at, end.as_ref()).await })
        })
        .await
    }

    async fn get_workflow(&self, id: &str) -> Result<Option<WorkflowRecord>, StoreError> {
        Sqlite::get_workflow(&self.reads, id).await
    }

    async fn steps(&self, workflow_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        Sqlite::steps(&self.reads, workflow_id).await
    }

    async fn begin_execution(
        &self,
        workflow_id: &str,
        executor_id: &str,
        epoch: u64,
    ) -> Result<Began, StoreError> {
        let (workflow_id, executor_id) = (workflow_id.to_owned(), executor_id.to_owned());
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(async move {
                Sqlite::begin_execution(conn, &workflow_id, &executor_id, epoch).await
            })
        })
        .await
    }

    async fn record_step(&self, step: &StepRecord) -> Result<(), StoreError> {
        let step = StepRow::new(step)?;
        let writer_idle = self.writes.capacity() == self.writes.max_capacity();
        if let Some(lane) = &self.lane
            && let Some(answer) = lane.try_record(&step, writer_idle)
        {
            return answer;
        }
        self.write(|reply| Request::RecordStep { step, reply })
            .await
    }

    async fn record_trap(
        &self,
        workflow_id: &str,
        trap: &TrapRecord<'_>,
    ) -> Result<(), StoreError> {
        let (workflow_id, class, message) = (
            workflow_id.to_owned(),
            trap.class.to_owned(),
            trap.message.to_owned(),
        );
        let (memory_limit, epoch) = (trap.memory_limit, trap.epoch);
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(async move {
                let trap = TrapRecord {
                    class: &class,
                    message: &message,
                    memory_limit,
                    epoch,
                };
                Sqlite::record_trap(conn, &workflow_id, &trap).await
            })
        })
        .await
    }

    async fn finish_workflow(
        &self,
        workflow_id: &str,
        end: &WorkflowEnd,
        epoch: Option<u64>,
    ) -> Result<WorkflowRecord, StoreError> {
        self.note(workflow_id);
        let (workflow_id, end) = (workflow_id.to_owned(), end.clone());
        self.write(|reply| Request::Finish {
            workflow_id,
            end,
            epoch,
            reply,
        })
        .await
    }

    async fn workflow_statuses(&self, ids: &[String]) -> Result<Vec<WorkflowRecord>, StoreError> {
        Sqlite::workflow_statuses(&self.reads, ids).await
    }

    async fn cancelled_since(&self, since: i64) -> Result<Vec<String>, StoreError> {
        Sqlite::cancelled_since(&self.reads, since).await
    }

    async fn expire_workflow(&self, id: &str, reason: &str) -> Result<WorkflowRecord, StoreError> {
        let (workflow_id, reason) = (id.to_owned(), reason.to_owned());
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(whole(conn, move |tx| {
                Box::pin(async move { Sqlite::expire_workflow(tx, &workflow_id, &reason).await })
            }))
        })
        .await
    }
}

#[async_trait]
impl DispatchStore for SqliteStore {
    async fn pending_workflows(
        &self,
        executor_id: &str,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        Sqlite::pending_workflows(&self.reads, executor_id).await
    }

    async fn claim_queued(&self, claim: &QueueClaim) -> Result<Vec<WorkflowRecord>, StoreError> {
        if claim.max == 0 {
            return Ok(Vec::new());
        }
        let claim = claim.clone();
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(async move {
                if claim.partitioned {
                    Sqlite::claim_partitioned(conn, &claim).await
                } else {
                    statements::claim_queued(conn, &claim).await
                }
            })
        })
        .await
    }

    async fn claim_due(
        &self,
        executor_id: &str,
        max: u32,
        only: Option<&str>,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        let (executor_id, only) = (executor_id.to_owned(), only.map(str::to_owned));
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(
                async move { Sqlite::claim_due(conn, &executor_id, max, only.as_deref()).await },
            )
        })
        .await
    }

    async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        Sqlite::next_due(&self.reads).await
    }

    async fn renew_lease(
        &self,
        executor_id: &str,
        started_at: i64,
        lease_ms: i64,
    ) -> Result<(), StoreError> {
        let executor_id = executor_id.to_owned();
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(
                async move { Sqlite::renew_lease(conn, &executor_id, started_at, lease_ms).await },
            )
        })
        .await
    }

    async fn executors(&self, lapsed: Option<Lapsed>) -> Result<Vec<ExecutorRecord>, StoreError> {
        Sqlite::executors(&self.reads, lapsed).await
    }

    async fn adopt_workflows(
        &self,
        dead: &str,
        adopter: &str,
        max: u32,
        only: Option<&str>,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        let (dead, adopter) = (dead.to_owned(), adopter.to_owned());
        let only = only.map(str::to_owned);
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(async move {
                Sqlite::adopt_workflows(conn, &dead, &adopter, max, only.as_deref()).await
            })
        })
        .await
    }
}

#[async_trait]
impl MailboxStore for SqliteStore {
    async fn send_message(
        &self,
        message: &NewMessage,
        record: Option<&StepRecord>,
    ) -> Result<bool, StoreError> {
        let (message, record) = (message.clone(), record.map(StepRow::new).transpose()?);
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(whole(conn, move |tx| {
                Box::pin(async move { Sqlite::send_message(tx, &message, record.as_ref()).await })
            }))
        })
        .await
    }

    async fn receive_message(
        &self,
        workflow_id: &str,
        topic: &str,
        at: &StepRecord,
        timed_out: bool,
    ) -> Result<Option<String>, StoreError> {
        let (workflow_id, topic, at) =
            (workflow_id.to_owned(), topic.to_owned(), StepRow::new(at)?);
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(whole(conn, move |tx| {
                Box::pin(async move {
                    Sqlite::receive_message(tx, &workflow_id, &topic, &at, timed_out).await
                })
            }))
        })
        .await
    }

    async fn workflow_version(&self, workflow_id: &str) -> Result<Option<String>, StoreError> {
        Sqlite::workflow_version(&self.reads, workflow_id).await
    }

    async fn has_message(&self, workflow_id: &str, topic: &str) -> Result<bool, StoreError> {
        Sqlite::has_message(&self.reads, workflow_id, topic).await
    }

    async fn messages(&self, workflow_id: &str) -> Result<Vec<MessageRecord>, StoreError> {
        Sqlite::messages(&self.reads, workflow_id).await
    }

    async fn set_event(
        &self,
        workflow_id: &str,
        key: &str,
        value: &str,
        record: Option<&StepRecord>,
    ) -> Result<(), StoreError> {
        let (workflow_id, key, value) = (workflow_id.to_owned(), key.to_owned(), value.to_owned());
        let record = record.map(StepRow::new).transpose()?;
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(whole(conn, move |tx| {
                Box::pin(async move {
                    Sqlite::set_event(tx, &workflow_id, &key, &value, record.as_ref()).await
                })
            }))
        })
        .await
    }

    async fn get_event(
        &self,
        workflow_id: &str,
        key: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        let events = Sqlite::events(&self.reads, workflow_id, Some(key)).await?;
        Ok(events.into_iter().next())
    }

    async fn events(&self, workflow_id: &str) -> Result<Vec<EventRecord>, StoreError> {
        Sqlite::events(&self.reads, workflow_id, None).await
    }

    async fn bytes_held(&self, workflow_id: &str) -> Result<u64, StoreError> {
        Sqlite::bytes_held(&self.reads, workflow_id).await
    }

    async fn write_stream(
        &self,
        workflow_id: &str,
        key: &str,
        value: Option<&str>,
        record: Option<&StepRecord>,
    ) -> Result<u64, StoreError> {
        let (workflow_id, key) = (workflow_id.to_owned(), key.to_owned());
        let (value, record) = (
            value.map(str::to_owned),
            record.map(StepRow::new).transpose()?,
        );
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(whole(conn, move |tx| {
                Box::pin(async move {
                    Sqlite::write_stream(tx, &workflow_id, &key, value.as_deref(), record.as_ref())
                        .await
                })
            }))
        })
        .await
    }

    async fn read_stream(
        &self,
        workflow_id: &str,
        key: &str,
        offset: u64,
        max: u32,
    ) -> Result<StreamRead, StoreError> {
        Sqlite::read_stream(&self.reads, workflow_id, key, offset, max).await
    }

    async fn streams(&self, workflow_id: &str) -> Result<Vec<StreamInfo>, StoreError> {
        Sqlite::streams(&self.reads, workflow_id).await
    }

    async fn changes_since(&self, since: i64) -> Result<Vec<Change>, StoreError> {
        Sqlite::changes_since(&self.reads, since).await
    }
}

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn put_schedule(
        &self,
        schedule: &ScheduleRecord,
        replace: bool,
    ) -> Result<bool, StoreError> {
        let schedule = schedule.clone();
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(async move { Sqlite::put_schedule(conn, &schedule, replace).await })
        })
        .await
    }

    async fn schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        Sqlite::schedules(&self.reads, None).await
    }

    async fn get_schedule(&self, name: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        Ok(Sqlite::schedules(&self.reads, Some(name)).await?.pop())
    }

    async fn pause_schedule(&self, name: &str, paused: bool) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(async move { Sqlite::pause_schedule(conn, &name, paused).await })
        })
        .await
    }

    async fn delete_schedule(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(async move { Sqlite::delete_schedule(conn, &name).await })
        })
        .await
    }

    async fn advance_schedule(&self, name: &str, fired: i64) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(async move { Sqlite::advance_schedule(conn, &name, fired).await })
        })
        .await
    }
}

#[async_trait]
impl AdminStore for SqliteStore {
    async fn list_workflows(
        &self,
        filter: &WorkflowFilter,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        Sqlite::list_workflows(&self.reads, filter).await
    }

    async fn queue_depths(&self) -> Result<Vec<QueueDepth>, StoreError> {
        Sqlite::queue_depths(&self.reads).await
    }

    async fn count_by_status(&self) -> Result<Vec<(WorkflowStatus, u64)>, StoreError> {
        Sqlite::count_by_status(&self.reads).await
    }

    async fn cancel_workflow(&self, id: &str) -> Result<WorkflowRecord, StoreError> {
        let workflow_id = id.to_owned();
        self.run(Alone::Transaction, move |conn| {
            Box::pin(async move { Sqlite::cancel_workflow(conn, &workflow_id).await })
        })
        .await
    }

    async fn delete_ended(&self, cutoff: i64, max: u32) -> Result<u32, StoreError> {
        self.run(Alone::Transaction, move |conn| {
            Box::pin(async move { Sqlite::delete_ended(conn, cutoff, max).await })
        })
        .await
    }

    async fn resume_workflow(
        &self,
        id: &str,
        executor_id: &str,
        memory_limit: Option<u64>,
    ) -> Result<WorkflowRecord, StoreError> {
        let (workflow_id, executor_id) = (id.to_owned(), executor_id.to_owned());
        self.run(Alone::Transaction, move |conn| {
            Box::pin(async move {
                Sqlite::resume_workflow(conn, &workflow_id, &executor_id, memory_limit).await
            })
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
        self.run(Alone::Transaction, move |conn| {
            Box::pin(async move {
                statements::in_savepoint(conn, move |sp| {
                    Box::pin(async move {
                        Sqlite::fork_workflow(sp, &workflow_id, &new_id, from_step).await
                    })
                })
                .await
            })
        })
        .await
    }
}

/// Leases, schedules, messages, events and streams: the shared statements, run through the
/// writer.
impl Executors for Sqlite {}
impl Schedules for Sqlite {}
impl Waits for Sqlite {}

impl Partitions for Sqlite {
    const CLAIM_ORDER: &'static str = "rowid";
}

#[cfg(test)]
mod tests;
