//! The shared Postgres backend: several hosts on one database, dividing queued work between them.
//!
//! Every method has the same meaning as in the SQLite backend (`sqlite.rs` is the reference).
//! There is no writer task here: Postgres takes many writers at once, so each call runs on a
//! connection of a pool, as one statement (autocommit) or, where its statements only make sense
//! together, as one transaction.
//!
//! Group commit comes from Postgres itself: commits that arrive together while the WAL is being
//! flushed share the next flush, so concurrent workflows' checkpoints do not cost one fsync each
//! as long as they come from different connections — hence a pool of [`POOL_SIZE`] rather than
//! one connection. `synchronous_commit` stays at its default (on): a recorded step survives a
//! power cut, as with SQLite's `synced` level.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, QueryBuilder, Row};

use super::filter::push_filter_clauses;
use super::rows::{Columns, step_from_row, to_u32, to_u64, workflow_from_row};
use super::{
    Inserted, NewWorkflow, QueueClaim, QueueDepth, StepRecord, Store, StoreError, WorkflowEnd,
    WorkflowFilter, WorkflowRecord, WorkflowStatus, now_ms,
};

/// Connections in the pool: enough for concurrent workflows' checkpoints to reach Postgres
/// together (and share a WAL flush) without taking many server backends per host.
pub const POOL_SIZE: u32 = 16;
/// How long a call waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Embedded migrations; the path is relative to host/Cargo.toml.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// The unique index that enforces deduplication (see the migration).
const DEDUP_INDEX: &str = "workflow_status_queue_dedup";
/// The primary key of `operation_outputs`: one outcome per step position.
const STEP_KEY: &str = "operation_outputs_pkey";

/// A [`Store`] on a Postgres database, shareable by any number of host processes.
///
/// Cloning is cheap and shares the pool.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`) and brings its schema
    /// up to date. Concurrent openers are safe: sqlx serialises migrations with an advisory lock.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .map_err(|source| StoreError::Open {
                url: redact(url),
                source,
            })?;
        MIGRATOR.run(&pool).await?;
        tracing::debug!(url = redact(url), "opened postgres store");
        Ok(PostgresStore { pool })
    }

    /// Closes every connection of the pool, waiting for calls in flight.
    pub async fn close(&self) {
        self.pool.close().await;
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

// ---------------------------------------------------------------------------------------------
// Statements
// ---------------------------------------------------------------------------------------------

/// The `workflow_status` columns [`workflow_from_row`] reads by name.
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

/// The status, execution count and start time a new workflow's row begins with: a queued
/// workflow waits for a claim, whatever the caller asked.
fn initial_state(new: &NewWorkflow, now: i64) -> (WorkflowStatus, i64, Option<i64>) {
    match (&new.queue_name, new.begin_execution) {
        (Some(_), _) => (WorkflowStatus::Enqueued, 0, None),
        (None, true) => (WorkflowStatus::Pending, 1, Some(now)),
        (None, false) => (WorkflowStatus::Pending, 0, None),
    }
}

/// The status, output and error columns of an ending.
fn ending_columns(end: &WorkflowEnd) -> (WorkflowStatus, Option<&str>, Option<&str>) {
    match end {
        WorkflowEnd::Success(output) => (WorkflowStatus::Success, Some(output.as_str()), None),
        WorkflowEnd::Error(error) => (WorkflowStatus::Error, None, Some(error.as_str())),
        WorkflowEnd::MaxRecoveryAttemptsExceeded(error) => (
            WorkflowStatus::MaxRecoveryAttemptsExceeded,
            None,
            Some(error.as_str()),
        ),
    }
}

/// Whether a database error is a unique violation of the named constraint or index.
fn violates(db: &dyn DatabaseError, kind: ErrorKind, constraint: &str) -> bool {
    db.kind() == kind && db.constraint() == Some(constraint)
}

/// A clash on the deduplication index becomes [`StoreError::Duplicate`] when the row names a
/// queue and a deduplication id (it cannot clash otherwise); anything else stays a database
/// error.
fn duplicate_or(
    err: sqlx::Error,
    queue: Option<&str>,
    deduplication_id: Option<&str>,
) -> StoreError {
    if let sqlx::Error::Database(db) = &err
        && violates(db.as_ref(), ErrorKind::UniqueViolation, DEDUP_INDEX)
        && let (Some(queue), Some(deduplication_id)) = (queue, deduplication_id)
    {
        return StoreError::Duplicate {
            queue: queue.to_owned(),
            deduplication_id: deduplication_id.to_owned(),
        };
    }
    StoreError::from(err)
}

async fn select_workflow(
    conn: &mut PgConnection,
    workflow_id: &str,
    for_update: bool,
) -> Result<Option<WorkflowRecord>, StoreError> {
    let sql = if for_update {
        concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflow_status WHERE workflow_id = $1 FOR UPDATE"
        )
    } else {
        concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflow_status WHERE workflow_id = $1"
        )
    };
    let row = sqlx::query(sql)
        .bind(workflow_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(workflow_from_row).transpose()
}

/// Rolls back a transaction whose outcome is already decided; a failure there only matters to
/// the log (the connection is discarded by the pool if it is broken).
async fn rollback(tx: sqlx::Transaction<'_, Postgres>) {
    if let Err(err) = tx.rollback().await {
        tracing::debug!(error = %err, "rollback failed");
    }
}

async fn claim_statements(
    conn: &mut PgConnection,
    claim: &QueueClaim,
) -> Result<Vec<WorkflowRecord>, StoreError> {
    let now = now_ms();
    let mut room = i64::from(claim.max);
    if claim.concurrency.is_some() || claim.rate_limit.is_some() {
        // SKIP LOCKED alone keeps two claimers from taking the same row, but not from both
        // counting the same free slots: claimers of a limited queue take turns, each counting
        // what the previous one committed (READ COMMITTED reads afresh per statement).
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("reprise.queue:{}", claim.queue))
            .execute(&mut *conn)
            .await?;
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
             ORDER BY priority, created_at, seq LIMIT $2 FOR UPDATE SKIP LOCKED) \
         UPDATE workflow_status SET status = 'PENDING', executor_id = $3, executions = 1, \
             started_at = $4, updated_at = $4 \
         FROM picked WHERE workflow_id = picked.picked_id \
         RETURNING seq AS claim_order, ",
        workflow_columns!()
    ))
    .bind(claim.queue.as_str())
    .bind(room)
    .bind(claim.executor_id.as_str())
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        let order: i64 = get(row, "workflow_status", "claim_order")?;
        claimed.push((order, workflow_from_row(row)?));
    }
    // RETURNING follows no order: restore the dispatch order for the caller.
    claimed.sort_by_key(|(order, record)| (record.priority, record.created_at, *order));
    Ok(claimed.into_iter().map(|(_, record)| record).collect())
}

async fn fork_statements(
    conn: &mut PgConnection,
    workflow_id: &str,
    new_id: &str,
    from_step: u32,
) -> Result<WorkflowRecord, StoreError> {
    let forked = sqlx::query(concat!(
        "INSERT INTO workflow_status (workflow_id, name, status, input, executor_id, app_version, \
         instance, config, executions, max_recovery_attempts, created_at, updated_at, priority) \
         SELECT $1, name, 'PENDING', input, executor_id, app_version, instance, config, 0, \
         max_recovery_attempts, $2, $2, 0 FROM workflow_status WHERE workflow_id = $3 \
         ON CONFLICT (workflow_id) DO NOTHING RETURNING ",
        workflow_columns!()
    ))
    .bind(new_id)
    .bind(now_ms())
    .bind(workflow_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = forked else {
        // Nothing inserted: either there is nothing to copy or the new id is taken.
        return Err(match select_workflow(conn, workflow_id, false).await? {
            None => StoreError::UnknownWorkflow(workflow_id.to_owned()),
            Some(_) => StoreError::WorkflowExists(new_id.to_owned()),
        });
    };
    let record = workflow_from_row(&row)?;
    sqlx::query(concat!(
        "INSERT INTO operation_outputs (",
        step_columns!(),
        ") SELECT $1, function_id, name, output, error, attempts, started_at, completed_at \
         FROM operation_outputs WHERE workflow_id = $2 AND function_id < $3"
    ))
    .bind(new_id)
    .bind(workflow_id)
    .bind(i64::from(from_step))
    .execute(&mut *conn)
    .await?;
    Ok(record)
}

// ---------------------------------------------------------------------------------------------
// Row mapping
// ---------------------------------------------------------------------------------------------

/// Reads one column; a value of the wrong type is a corrupt row, not a database failure.
fn get<'r, T>(row: &'r PgRow, table: &'static str, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(column).map_err(|err| StoreError::Corrupt {
        table,
        message: format!("column {column}: {err}"),
    })
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
}

// ---------------------------------------------------------------------------------------------
// The trait
// ---------------------------------------------------------------------------------------------

#[async_trait]
impl Store for PostgresStore {
    async fn put_component(&self, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO components (digest, bytes, size, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest)
        .bind(bytes)
        .bind(bytes.len() as i64)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_component(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT bytes FROM components WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| get(&row, "components", "bytes")).transpose()
    }

    async fn insert_workflow(&self, new: &NewWorkflow) -> Result<Inserted, StoreError> {
        let now = now_ms();
        let (status, executions, started_at) = initial_state(new, now);
        // RETURNING yields the row only when it was inserted, so the common case is one
        // statement. The conflict target is the id alone: a clash on the deduplication index
        // is an error.
        let inserted = sqlx::query(concat!(
            "INSERT INTO workflow_status (workflow_id, name, status, input, executor_id, \
             app_version, instance, config, executions, max_recovery_attempts, created_at, \
             updated_at, queue_name, priority, deduplication_id, started_at, parent_workflow_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (workflow_id) DO NOTHING RETURNING ",
            workflow_columns!()
        ))
        .bind(new.id.as_str())
        .bind(new.name.as_str())
        .bind(status.as_str())
        .bind(new.input.as_str())
        .bind(new.executor_id.as_str())
        .bind(new.app_version.as_str())
        .bind(new.instance.as_str())
        .bind(new.config.as_str())
        .bind(executions)
        .bind(i64::from(new.max_recovery_attempts))
        .bind(now)
        .bind(new.queue_name.as_deref())
        .bind(new.priority)
        .bind(new.deduplication_id.as_deref())
        .bind(started_at)
        .bind(new.parent_workflow_id.as_deref())
        .fetch_optional(&self.pool)
        .await
        .map_err(|err| {
            duplicate_or(
                err,
                new.queue_name.as_deref(),
                new.deduplication_id.as_deref(),
            )
        })?;
        if let Some(row) = inserted {
            return Ok(Inserted {
                created: true,
                record: workflow_from_row(&row)?,
            });
        }
        // The conflicting row is committed (ON CONFLICT waits for its inserter), so a fresh
        // read sees it.
        match self.get_workflow(&new.id).await? {
            Some(record) => Ok(Inserted {
                created: false,
                record,
            }),
            None => Err(StoreError::Corrupt {
                table: "workflow_status",
                message: format!("workflow {} conflicts on insert but cannot be read", new.id),
            }),
        }
    }

    async fn get_workflow(&self, id: &str) -> Result<Option<WorkflowRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflow_status WHERE workflow_id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(workflow_from_row).transpose()
    }

    async fn list_workflows(
        &self,
        filter: &WorkflowFilter,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        let mut query = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflow_status"
        ));
        push_filter_clauses(&mut query, filter);
        // A NULL LIMIT means no limit in Postgres.
        query
            .push(" ORDER BY created_at DESC, seq DESC LIMIT ")
            .push_bind(filter.limit.map(i64::from));
        if let Some(offset) = filter.offset {
            query.push(" OFFSET ").push_bind(i64::from(offset));
        }
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(workflow_from_row).collect()
    }

    async fn steps(&self, workflow_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            step_columns!(),
            " FROM operation_outputs WHERE workflow_id = $1 ORDER BY function_id"
        ))
        .bind(workflow_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(step_from_row).collect()
    }

    async fn begin_execution(
        &self,
        workflow_id: &str,
        executor_id: &str,
    ) -> Result<u32, StoreError> {
        // `started_at` marks the first execution only; recoveries keep it.
        let row = sqlx::query(
            "UPDATE workflow_status SET executions = executions + 1, executor_id = $1, \
             status = 'PENDING', started_at = coalesce(started_at, $2), updated_at = $2 \
             WHERE workflow_id = $3 RETURNING executions",
        )
        .bind(executor_id)
        .bind(now_ms())
        .bind(workflow_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => to_u32(
                get(&row, "workflow_status", "executions")?,
                "workflow_status",
                "executions",
            ),
            None => Err(StoreError::UnknownWorkflow(workflow_id.to_owned())),
        }
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
        // One autocommit INSERT: concurrent calls from other connections share Postgres's WAL
        // flush (see the module docs).
        let result = sqlx::query(
            "INSERT INTO operation_outputs (workflow_id, function_id, name, output, error, \
             attempts, started_at, completed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(step.workflow_id.as_str())
        .bind(i64::from(step.function_id))
        .bind(step.name.as_str())
        .bind(step.output.as_deref())
        .bind(error)
        .bind(i64::from(step.attempts))
        .bind(step.started_at)
        .bind(step.completed_at)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(db))
                if violates(db.as_ref(), ErrorKind::UniqueViolation, STEP_KEY) =>
            {
                Err(StoreError::StepAlreadyRecorded {
                    workflow_id: step.workflow_id.clone(),
                    function_id: step.function_id,
                })
            }
            Err(sqlx::Error::Database(db)) if db.kind() == ErrorKind::ForeignKeyViolation => {
                Err(StoreError::UnknownWorkflow(step.workflow_id.clone()))
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn record_trap(
        &self,
        workflow_id: &str,
        class: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE workflow_status SET trap_class = $1, trap_message = $2, updated_at = $3 \
             WHERE workflow_id = $4",
        )
        .bind(class)
        .bind(message)
        .bind(now_ms())
        .bind(workflow_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownWorkflow(workflow_id.to_owned()));
        }
        Ok(())
    }

    async fn finish_workflow(
        &self,
        workflow_id: &str,
        end: &WorkflowEnd,
    ) -> Result<WorkflowRecord, StoreError> {
        let (status, output, error) = ending_columns(end);
        // The first ending wins: a late duplicate execution must not rewrite a finished workflow.
        let finished = sqlx::query(concat!(
            "UPDATE workflow_status SET status = $1, output = $2, error = $3, updated_at = $4 \
             WHERE workflow_id = $5 AND status IN ('ENQUEUED', 'PENDING') RETURNING ",
            workflow_columns!()
        ))
        .bind(status.as_str())
        .bind(output)
        .bind(error)
        .bind(now_ms())
        .bind(workflow_id)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = finished {
            return workflow_from_row(&row);
        }
        // Nothing changed, so the row (if any) is terminal and stays as it is: a plain read
        // returns its first ending.
        let Some(record) = self.get_workflow(workflow_id).await? else {
            return Err(StoreError::UnknownWorkflow(workflow_id.to_owned()));
        };
        tracing::debug!(workflow_id, %status, "workflow already finished; keeping its first ending");
        Ok(record)
    }

    async fn pending_workflows(
        &self,
        executor_id: &str,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflow_status WHERE status = 'PENDING' AND executor_id = $1 \
             ORDER BY created_at, seq"
        ))
        .bind(executor_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(workflow_from_row).collect()
    }

    async fn claim_queued(&self, claim: &QueueClaim) -> Result<Vec<WorkflowRecord>, StoreError> {
        if claim.max == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        match claim_statements(&mut tx, claim).await {
            Ok(claimed) => {
                tx.commit().await?;
                if !claimed.is_empty() {
                    tracing::debug!(
                        queue = claim.queue,
                        count = claimed.len(),
                        "claimed queued workflows"
                    );
                }
                Ok(claimed)
            }
            Err(err) => {
                rollback(tx).await;
                Err(err)
            }
        }
    }

    async fn queue_depths(&self) -> Result<Vec<QueueDepth>, StoreError> {
        const T: &str = "workflow_status";
        let rows = sqlx::query(
            "SELECT queue_name, count(*) FILTER (WHERE status = 'ENQUEUED') AS enqueued, \
             count(*) FILTER (WHERE status = 'PENDING') AS pending FROM workflow_status \
             WHERE queue_name IS NOT NULL AND status IN ('ENQUEUED', 'PENDING') \
             GROUP BY queue_name ORDER BY queue_name",
        )
        .fetch_all(&self.pool)
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
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let cancelled = sqlx::query(concat!(
            "UPDATE workflow_status SET status = 'CANCELLED', updated_at = $1 \
             WHERE workflow_id = $2 AND status IN ('ENQUEUED', 'PENDING') RETURNING ",
            workflow_columns!()
        ))
        .bind(now_ms())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let result = match cancelled {
            Some(row) => workflow_from_row(&row),
            // Already ended: cancelling is a no-op, and the row says how it ended.
            None => select_workflow(&mut tx, id, false)
                .await?
                .ok_or_else(|| StoreError::UnknownWorkflow(id.to_owned())),
        };
        tx.commit().await?;
        result
    }

    async fn resume_workflow(
        &self,
        id: &str,
        executor_id: &str,
    ) -> Result<WorkflowRecord, StoreError> {
        // The row is read and locked first: a failed statement aborts a Postgres transaction,
        // so nothing could be read after a deduplication clash to explain it.
        let mut tx = self.pool.begin().await?;
        let current = match select_workflow(&mut tx, id, true).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                rollback(tx).await;
                return Err(StoreError::UnknownWorkflow(id.to_owned()));
            }
            Err(err) => {
                rollback(tx).await;
                return Err(err);
            }
        };
        if current.status == WorkflowStatus::Success {
            rollback(tx).await;
            return Err(StoreError::NotResumable {
                workflow_id: id.to_owned(),
                status: current.status,
            });
        }
        // executions = 0 gives the resumed workflow a fresh budget of recovery attempts; the trap
        // columns stay as a record of what went wrong last time.
        let resumed = sqlx::query(concat!(
            "UPDATE workflow_status SET status = 'PENDING', executions = 0, error = NULL, \
             executor_id = $1, started_at = coalesce(started_at, $2), updated_at = $2 \
             WHERE workflow_id = $3 RETURNING ",
            workflow_columns!()
        ))
        .bind(executor_id)
        .bind(now_ms())
        .bind(id)
        .fetch_one(&mut *tx)
        .await;
        let row = match resumed {
            Ok(row) => row,
            Err(err) => {
                rollback(tx).await;
                // A cancelled workflow's deduplication id was taken by a newer one meanwhile.
                return Err(duplicate_or(
                    err,
                    current.queue_name.as_deref(),
                    current.deduplication_id.as_deref(),
                ));
            }
        };
        let record = workflow_from_row(&row)?;
        tx.commit().await?;
        Ok(record)
    }

    async fn fork_workflow(
        &self,
        id: &str,
        new_id: &str,
        from_step: u32,
    ) -> Result<WorkflowRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        match fork_statements(&mut tx, id, new_id, from_step).await {
            Ok(record) => {
                tx.commit().await?;
                tracing::debug!(workflow_id = id, new_id, from_step, "forked workflow");
                Ok(record)
            }
            Err(err) => {
                rollback(tx).await;
                Err(err)
            }
        }
    }

    async fn workflow_statuses(&self, ids: &[String]) -> Result<Vec<WorkflowRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflow_status WHERE workflow_id = ANY($1)"
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let mut records = rows
            .iter()
            .map(workflow_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // Back to the order asked, which callers showing a list of workflows expect.
        let position: HashMap<&str, usize> = ids
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
