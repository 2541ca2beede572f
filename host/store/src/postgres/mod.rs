//! The shared Postgres backend: several hosts on one database, dividing queued work between them.
//!
//! The statements are the ones both backends share (`shared.rs`); this file adds what only
//! Postgres does: the queue claim with `FOR UPDATE SKIP LOCKED` under an advisory lock. Postgres
//! takes many writers at once, so most calls run on a connection of a pool, as one statement
//! (autocommit) or, where its statements only make sense together, as one transaction.
//!
//! The hot writes — new workflows, step checkpoints and endings — go through the [`combiner`],
//! which writes many workflows' at once as multi-row statements: Postgres spends its CPU per
//! transaction far more than per row. `synchronous_commit` stays at its default (on): a recorded step survives
//! a power cut, as with SQLite's `synced` level.

use std::sync::Arc;
use std::time::Duration;

mod bells;
mod bulk;
mod combiner;

use async_trait::async_trait;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, QueryBuilder, Transaction};

use super::executors::Executors;
use super::partitions::Partitions;
use super::rows::{Columns, get};
use super::schedules::{ScheduleRecord, Schedules};
use super::shared::{Dialect, in_dispatch_order, workflow_columns};
use super::waits_sql::Waits;
use super::written::{StepRow, first_deadline};
use super::{
    AdminStore, Began, Change, DispatchStore, EventRecord, ExecutionStore, ExecutorRecord,
    Inserted, Lapsed, MailboxStore, MessageRecord, NewMessage, NewWorkflow, QueueClaim, QueueDepth,
    ScheduleStore, StepRecord, StoreError, StreamInfo, StreamRead, TrapRecord, WorkflowEnd,
    WorkflowFilter, WorkflowRecord, WorkflowStatus, now_ms,
};
use combiner::Combiner;

/// Connections in the pool: enough for concurrent workflows' checkpoints to reach Postgres
/// together (and share a WAL flush) without taking many server backends per host.
pub const POOL_SIZE: u32 = 16;
/// How long a call waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection idle longer than this is pinged before use: the server or the network may
/// have dropped it meanwhile. One in use a moment ago is not: a ping is a round trip, as long
/// as the statement it would precede.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Embedded migrations; the path is relative to host/store/Cargo.toml.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// A [`Store`] on a Postgres database, shareable by any number of host processes.
///
/// Cloning is cheap and shares the pool.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    feed: Arc<Feed>,
    /// Gathers new workflows, steps and endings into multi-row statements.
    combiner: Combiner,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`) and brings its schema
    /// up to date. Concurrent openers are safe: sqlx serialises migrations with an advisory lock.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_AFTER_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect(url)
            .await
            .map_err(|source| StoreError::Open {
                url: redact(url),
                source: source.into(),
            })?;
        MIGRATOR.run(&pool).await?;
        tracing::debug!(url = redact(url), "opened postgres store");
        Ok(PostgresStore {
            combiner: Combiner::start(pool.clone()),
            pool,
            feed: Arc::default(),
        })
    }

    /// Round trips the hot writes (new workflows, steps, endings) took so far: a flush of
    /// many, or a write alone. Writes per trip shows how well they are gathered; useful for
    /// tests and metrics.
    pub fn write_trips(&self) -> u64 {
        self.combiner.trips()
    }

    /// Closes every connection of the pool, waiting for calls in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Ends a transaction whose statements have run: committed when they succeeded, rolled back
/// when they failed (a failed statement aborts a Postgres transaction anyway).
pub(crate) async fn settle<T>(
    tx: Transaction<'_, Postgres>,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match result {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(err) => {
            // The outcome is decided; a failed rollback only matters to the log (the pool
            // discards a broken connection).
            if let Err(rollback) = tx.rollback().await {
                tracing::debug!(error = %rollback, "rollback failed");
            }
            Err(err)
        }
    }
}

/// The URL without its password, for error messages and logs.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

impl Dialect for Postgres {
    const INSERTION_ORDER: &'static str = "seq";
    const LOCK_ROW: &'static str = " FOR UPDATE";
    const SHARE_ROW: &'static str = " FOR SHARE";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const BYTES_OF: (&'static str, &'static str) = ("OCTET_LENGTH(", ")");
    const BYTEWISE: &'static str = " COLLATE \"C\"";

    fn push_id_condition(
        query: &mut QueryBuilder<Postgres>,
        ids: &[String],
    ) -> Result<(), StoreError> {
        query.push("workflow_id = ANY(").push_bind(ids).push(")");
        Ok(())
    }
}

impl Columns for PgRow {
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
    fn small_int(&self, table: &'static str, column: &str) -> Result<i32, StoreError> {
        get(self, table, column)
    }
    fn bytes(&self, table: &'static str, column: &str) -> Result<Vec<u8>, StoreError> {
        get(self, table, column)
    }
}

/// Dispatches queued workflows inside the caller's transaction. `SKIP LOCKED` lets claimers on
/// other connections pass over the rows this one is taking instead of waiting for them.
async fn claim_statements(
    conn: &mut PgConnection,
    claim: &QueueClaim,
) -> Result<Vec<WorkflowRecord>, StoreError> {
    let now = now_ms();
    let mut room = i64::from(claim.max);
    if claim.concurrency.is_some() || claim.rate_limit.is_some() || claim.partitioned {
        // SKIP LOCKED alone keeps two claimers from taking the same row, but not from both
        // counting the same free slots: claimers of a limited queue take turns, each counting
        // what the previous one committed (READ COMMITTED reads afresh per statement).
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("reprise.queue:{}", claim.queue))
            .execute(&mut *conn)
            .await?;
    }
    if claim.partitioned {
        return Postgres::claim_partitioned(conn, claim).await;
    }
    if let Some(concurrency) = claim.concurrency {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM workflow_status WHERE queue_name = $1 AND status = 'PENDING'",
        )
        .bind(claim.queue.as_str())
        .fetch_one(&mut *conn)
        .await?;
        room = room.min(i64::from(concurrency) - pending);
    }
    if let Some(rate) = claim.rate_limit {
        let started: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM workflow_status WHERE queue_name = $1 AND started_at >= $2",
        )
        .bind(claim.queue.as_str())
        .bind(now.saturating_sub(rate.period_ms))
        .fetch_one(&mut *conn)
        .await?;
        room = room.min(i64::from(rate.limit) - started);
    }
    if room <= 0 {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(concat!(
        "WITH picked AS (SELECT workflow_id AS picked_id FROM workflow_status \
             WHERE queue_name = $1 AND status = 'ENQUEUED' \
             AND (not_before IS NULL OR not_before <= $4) \
             ORDER BY priority, created_at, seq LIMIT $2 FOR UPDATE SKIP LOCKED) \
         UPDATE workflow_status SET status = 'PENDING', executor_id = $3, executions = 1, epoch = epoch + 1, \
             started_at = $4, updated_at = $4, deadline_at = ",
        first_deadline!("$4"),
        " FROM picked WHERE workflow_id = picked.picked_id \
         RETURNING seq AS claim_order, ",
        workflow_columns!()
    ))
    .bind(claim.queue.as_str())
    .bind(room)
    .bind(claim.executor_id.as_str())
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    in_dispatch_order(&rows)
}

/// Each call runs on a pooled connection: single statements in autocommit, the rest in a
/// transaction of their own.
#[async_trait]
impl ExecutionStore for PostgresStore {
    async fn put_component(
        &self,
        digest: &str,
        bytes: &[u8],
        topics: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        Postgres::put_component(&mut conn, digest, bytes, topics).await
    }

    async fn get_component(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Postgres::get_component(&self.pool, digest).await
    }

    async fn component_topics(&self, digest: &str) -> Result<Option<String>, StoreError> {
        Postgres::component_topics(&self.pool, digest).await
    }

    async fn insert_workflow(&self, new: &NewWorkflow) -> Result<Inserted, StoreError> {
        // Many workflows' writes become one statement (see `combiner`).
        self.combiner.insert(new.clone()).await
    }

    async fn insert_workflow_at(
        &self,
        new: &NewWorkflow,
        at: i64,
        end: Option<&WorkflowEnd>,
    ) -> Result<Inserted, StoreError> {
        // One statement, alone: a start that ran before its row is the latency case, and a
        // queued workflow never gets here, so no queue needs telling.
        let mut conn = self.pool.acquire().await?;
        Postgres::insert_workflow(&mut conn, new, at, end).await
    }

    async fn get_workflow(&self, id: &str) -> Result<Option<WorkflowRecord>, StoreError> {
        Postgres::get_workflow(&self.pool, id).await
    }

    async fn steps(&self, workflow_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        Postgres::steps(&self.pool, workflow_id).await
    }

    async fn begin_execution(
        &self,
        workflow_id: &str,
        executor_id: &str,
        epoch: u64,
    ) -> Result<Began, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Postgres::begin_execution(&mut conn, workflow_id, executor_id, epoch).await
    }

    async fn record_step(&self, step: &StepRecord) -> Result<(), StoreError> {
        self.combiner.record_step(StepRow::new(step)?).await
    }

    async fn record_trap(
        &self,
        workflow_id: &str,
        trap: &TrapRecord<'_>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        Postgres::record_trap(&mut conn, workflow_id, trap).await
    }

    async fn finish_workflow(
        &self,
        workflow_id: &str,
        end: &WorkflowEnd,
        epoch: Option<u64>,
    ) -> Result<WorkflowRecord, StoreError> {
        // The combiner also tells the ended workflows' queues.
        self.combiner
            .finish(workflow_id.to_owned(), end.clone(), epoch)
            .await
    }

    async fn workflow_statuses(&self, ids: &[String]) -> Result<Vec<WorkflowRecord>, StoreError> {
        Postgres::workflow_statuses(&self.pool, ids).await
    }

    async fn cancelled_since(&self, since: i64) -> Result<Vec<String>, StoreError> {
        Postgres::cancelled_since(&self.pool, since).await
    }

    async fn expire_workflow(&self, id: &str, reason: &str) -> Result<WorkflowRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        let expired = Postgres::expire_workflow(&mut tx, id, reason).await;
        settle(tx, expired).await
    }
}

#[async_trait]
impl DispatchStore for PostgresStore {
    async fn pending_workflows(
        &self,
        executor_id: &str,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        Postgres::pending_workflows(&self.pool, executor_id).await
    }

    async fn claim_queued(&self, claim: &QueueClaim) -> Result<Vec<WorkflowRecord>, StoreError> {
        if claim.max == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        let claimed = claim_statements(&mut tx, claim).await;
        let claimed = settle(tx, claimed).await?;
        if !claimed.is_empty() {
            tracing::debug!(
                queue = claim.queue,
                count = claimed.len(),
                "claimed queued workflows"
            );
        }
        Ok(claimed)
    }

    async fn claim_due(
        &self,
        executor_id: &str,
        max: u32,
        only: Option<&str>,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let claimed = Postgres::claim_due(&mut tx, executor_id, max, only).await;
        settle(tx, claimed).await
    }

    async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        Postgres::next_due(&self.pool).await
    }

    async fn renew_lease(
        &self,
        executor_id: &str,
        started_at: i64,
        lease_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        Postgres::renew_lease(&mut conn, executor_id, started_at, lease_ms).await
    }

    async fn executors(&self, lapsed: Option<Lapsed>) -> Result<Vec<ExecutorRecord>, StoreError> {
        Postgres::executors(&self.pool, lapsed).await
    }

    async fn adopt_workflows(
        &self,
        dead: &str,
        adopter: &str,
        max: u32,
        only: Option<&str>,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Postgres::adopt_workflows(&mut conn, dead, adopter, max, only).await
    }
}

#[async_trait]
impl MailboxStore for PostgresStore {
    async fn send_message(
        &self,
        message: &NewMessage,
        record: Option<&StepRecord>,
    ) -> Result<bool, StoreError> {
        let record = record.map(StepRow::new).transpose()?;
        let mut tx = self.pool.begin().await?;
        let sent = Postgres::send_message(&mut tx, message, record.as_ref()).await;
        settle(tx, sent).await
    }

    async fn receive_message(
        &self,
        workflow_id: &str,
        topic: &str,
        at: &StepRecord,
        timed_out: bool,
    ) -> Result<Option<String>, StoreError> {
        let at = StepRow::new(at)?;
        let mut tx = self.pool.begin().await?;
        let received = Postgres::receive_message(&mut tx, workflow_id, topic, &at, timed_out).await;
        settle(tx, received).await
    }

    async fn workflow_version(&self, workflow_id: &str) -> Result<Option<String>, StoreError> {
        Postgres::workflow_version(&self.pool, workflow_id).await
    }

    async fn has_message(&self, workflow_id: &str, topic: &str) -> Result<bool, StoreError> {
        Postgres::has_message(&self.pool, workflow_id, topic).await
    }

    async fn messages(&self, workflow_id: &str) -> Result<Vec<MessageRecord>, StoreError> {
        Postgres::messages(&self.pool, workflow_id).await
    }

    async fn set_event(
        &self,
        workflow_id: &str,
        key: &str,
        value: &str,
        record: Option<&StepRecord>,
    ) -> Result<(), StoreError> {
        let record = record.map(StepRow::new).transpose()?;
        let mut tx = self.pool.begin().await?;
        let set = Postgres::set_event(&mut tx, workflow_id, key, value, record.as_ref()).await;
        settle(tx, set).await
    }

    async fn get_event(
        &self,
        workflow_id: &str,
        key: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        let events = Postgres::events(&self.pool, workflow_id, Some(key)).await?;
        Ok(events.into_iter().next())
    }

    async fn events(&self, workflow_id: &str) -> Result<Vec<EventRecord>, StoreError> {
        Postgres::events(&self.pool, workflow_id, None).await
    }

    async fn bytes_held(&self, workflow_id: &str) -> Result<u64, StoreError> {
        Postgres::bytes_held(&self.pool, workflow_id).await
    }

    async fn write_stream(
        &self,
        workflow_id: &str,
        key: &str,
        value: Option<&str>,
        record: Option<&StepRecord>,
    ) -> Result<u64, StoreError> {
        let record = record.map(StepRow::new).transpose()?;
        let mut tx = self.pool.begin().await?;
        let written =
            Postgres::write_stream(&mut tx, workflow_id, key, value, record.as_ref()).await;
        settle(tx, written).await
    }

    async fn read_stream(
        &self,
        workflow_id: &str,
        key: &str,
        offset: u64,
        max: u32,
    ) -> Result<StreamRead, StoreError> {
        Postgres::read_stream(&self.pool, workflow_id, key, offset, max).await
    }

    async fn streams(&self, workflow_id: &str) -> Result<Vec<StreamInfo>, StoreError> {
        Postgres::streams(&self.pool, workflow_id).await
    }

    async fn changes_since(&self, since: i64) -> Result<Vec<Change>, StoreError> {
        Postgres::changes_since(&self.pool, since).await
    }

    fn change_feed(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Change>> {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        if self.feed.subscribe(sender) {
            tokio::spawn(listen(self.pool.clone(), self.feed.clone()));
        }
        Some(receiver)
    }
}

#[async_trait]
impl ScheduleStore for PostgresStore {
    async fn put_schedule(
        &self,
        schedule: &ScheduleRecord,
        replace: bool,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Postgres::put_schedule(&mut conn, schedule, replace).await
    }

    async fn schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        Postgres::schedules(&self.pool, None).await
    }

    async fn get_schedule(&self, name: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        Ok(Postgres::schedules(&self.pool, Some(name)).await?.pop())
    }

    async fn pause_schedule(&self, name: &str, paused: bool) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Postgres::pause_schedule(&mut conn, name, paused).await
    }

    async fn delete_schedule(&self, name: &str) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Postgres::delete_schedule(&mut conn, name).await
    }

    async fn advance_schedule(&self, name: &str, fired: i64) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        Postgres::advance_schedule(&mut conn, name, fired).await
    }
}

#[async_trait]
impl AdminStore for PostgresStore {
    async fn list_workflows(
        &self,
        filter: &WorkflowFilter,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        Postgres::list_workflows(&self.pool, filter).await
    }

    async fn queue_depths(&self) -> Result<Vec<QueueDepth>, StoreError> {
        Postgres::queue_depths(&self.pool).await
    }

    async fn count_by_status(&self) -> Result<Vec<(WorkflowStatus, u64)>, StoreError> {
        Postgres::count_by_status(&self.pool).await
    }

    async fn cancel_workflow(&self, id: &str) -> Result<WorkflowRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        let cancelled = match Postgres::cancel_workflow(&mut tx, id).await {
            // Told to every host at the commit: the one running it stops it at once.
            Ok(record) => {
                let change = Change::Cancelled {
                    workflow_id: id.to_string(),
                };
                Postgres::announce(&mut tx, &change).await.map(|()| record)
            }
            Err(e) => Err(e),
        };
        settle(tx, cancelled).await
    }

    async fn delete_ended(&self, cutoff: i64, max: u32) -> Result<u32, StoreError> {
        let mut tx = self.pool.begin().await?;
        let deleted = Postgres::delete_ended(&mut tx, cutoff, max).await;
        settle(tx, deleted).await
    }

    async fn resume_workflow(
        &self,
        id: &str,
        executor_id: &str,
        memory_limit: Option<u64>,
    ) -> Result<WorkflowRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        let resumed = Postgres::resume_workflow(&mut tx, id, executor_id, memory_limit).await;
        settle(tx, resumed).await
    }

    async fn fork_workflow(
        &self,
        id: &str,
        new_id: &str,
        from_step: u32,
    ) -> Result<WorkflowRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        let forked = Postgres::fork_workflow(&mut tx, id, new_id, from_step).await;
        settle(tx, forked).await
    }
}

/// The channel every change is announced on, with a JSON payload naming what changed.
pub const CHANGES_CHANNEL: &str = "reprise_changes";

/// Forwards the changes announced on [`CHANGES_CHANNEL`] until the receiver is gone,
/// reconnecting after a lost connection (what was announced meanwhile, the poll finds).
/// Everyone in this process who follows the database's changes: one `LISTEN` connection
/// serves them all (the signals, the cancellation watcher, the queue dispatchers).
#[derive(Debug, Default)]
struct Feed {
    /// The subscribers, and whether a listener runs for them.
    state: std::sync::Mutex<(Vec<tokio::sync::mpsc::UnboundedSender<Change>>, bool)>,
}

impl Feed {
    /// Adds a subscriber; true when no listener runs, so the caller starts one.
    fn subscribe(&self, sender: tokio::sync::mpsc::UnboundedSender<Change>) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0.push(sender);
        !std::mem::replace(&mut state.1, true)
    }

    /// Hands `change` (if any) to every subscriber still there; false once none is left, and
    /// then the listener stops (the next subscriber starts another).
    fn deliver(&self, change: Option<&Change>) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0.retain(|sender| match change {
            Some(change) => sender.send(change.clone()).is_ok(),
            None => !sender.is_closed(),
        });
        let open = !state.0.is_empty();
        state.1 = open;
        open
    }
}

async fn listen(pool: PgPool, changes: Arc<Feed>) {
    while changes.deliver(None) {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!("cannot listen for changes, will retry: {err}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(err) = listener.listen(CHANGES_CHANNEL).await {
            tracing::warn!("cannot listen for changes, will retry: {err}");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            // Not raced against a timer: a receive cut off midway could lose a notification.
            // Subscribers that left are noticed at the next change.
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    let change = parse_change(notification.payload());
                    if change.is_some() && !changes.deliver(change.as_ref()) {
                        return;
                    }
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::debug!("change listener lost its connection: {err}");
                    break;
                }
            }
        }
    }
}

/// A change from its announcement's payload, `[kind, workflow_id, key]`.
fn parse_change(payload: &str) -> Option<Change> {
    let (kind, workflow_id, key): (String, String, String) = serde_json::from_str(payload).ok()?;
    Some(match kind.as_str() {
        "m" => Change::Message {
            workflow_id,
            topic: key,
        },
        "e" => Change::Event { workflow_id, key },
        "s" => Change::Stream { workflow_id, key },
        "c" => Change::Cancelled { workflow_id },
        "q" => Change::Queued { queue: workflow_id },
        _ => return None,
    })
}

impl Schedules for Postgres {}

impl Executors for Postgres {}

impl Partitions for Postgres {
    const CLAIM_ORDER: &'static str = "seq";
}

impl Waits for Postgres {
    async fn announce(conn: &mut PgConnection, change: &Change) -> Result<(), StoreError> {
        let (kind, workflow_id, key) = match change {
            Change::Message { workflow_id, topic } => ("m", workflow_id, topic.as_str()),
            Change::Event { workflow_id, key } => ("e", workflow_id, key.as_str()),
            Change::Stream { workflow_id, key } => ("s", workflow_id, key.as_str()),
            Change::Cancelled { workflow_id } => ("c", workflow_id, ""),
            Change::Queued { queue } => ("q", queue, ""),
        };
        let payload = serde_json::json!([kind, workflow_id, key]).to_string();
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGES_CHANNEL)
            .bind(payload)
            .execute(conn)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgresql://h/db"), "postgresql://h/db");
    }
}
