//! The system database written once for both backends.
//!
//! SQLite and Postgres read the same schema with the same SQL: both take `$n` placeholders, `ON
//! CONFLICT … DO NOTHING`, `RETURNING` and partial unique indexes. So every statement whose text
//! and surrounding logic are the same lives here, as default methods of [`Dialect`], generic over
//! the sqlx database. A backend implements the trait with the few hooks where the two really
//! differ, and keeps to itself only what cannot be shared: SQLite's group-commit writer and its
//! one-statement claim, Postgres's `SKIP LOCKED` claim under an advisory lock.
//!
//! Methods taking a connection run where the backend decides: SQLite inside its writer's
//! transaction, Postgres on a pooled connection (inside a transaction where the method says so).

use std::collections::HashMap;
use std::str::FromStr;

use sqlx::error::ErrorKind;
use sqlx::{Database, Encode, Executor, IntoArguments, Pool, QueryBuilder, Type};

use super::filter::push_filter_clauses;
use super::rows::{Columns, step_from_row, to_u32, to_u64, workflow_from_row};
use super::written::{StepRow, ending_columns, epoch_value, first_deadline, initial_state};
use super::{
    Began, Inserted, NewWorkflow, QueueDepth, StepRecord, StoreError, TrapRecord, WorkflowEnd,
    WorkflowFilter, WorkflowRecord, WorkflowStatus, now_ms,
};

/// The `workflow_status` columns [`workflow_from_row`] reads by name.
macro_rules! workflow_columns {
    () => {
        "workflow_id, name, status, input, output, error, trap_class, trap_message, executor_id, \
         app_version, instance, config, executions, traps, max_recovery_attempts, created_at, \
         updated_at, queue_name, priority, deduplication_id, started_at, parent_workflow_id, \
         trap_streak, memory_limit, timeout_ms, deadline_at, not_before, scheduled_at, epoch, partition_key, \
         run"
    };
}
pub(super) use workflow_columns;

/// The `operation_outputs` columns [`step_from_row`] reads by name.
macro_rules! step_columns {
    () => {
        "workflow_id, function_id, name, output, error, attempts, started_at, completed_at, epoch, \
         kind, args"
    };
}
pub(super) use step_columns;

/// One step's insert, only while its workflow has the execution's epoch (`$9`): what
/// [`Dialect::record_step`] runs, before its row lock and `RETURNING`, and SQLite's step lane
/// runs as it is.
macro_rules! insert_step {
    () => {
        concat!(
            "INSERT INTO operation_outputs (",
            $crate::shared::step_columns!(),
            ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, epoch, $10, $11 FROM workflow_status \
             WHERE workflow_id = $1 AND ($9 IS NULL OR epoch = $9)"
        )
    };
}
pub(super) use insert_step;

/// The columns a new workflow's row is written with, in the order [`Dialect::insert_workflow`]
/// and SQLite's batched insert bind them.
macro_rules! insert_columns {
    () => {
        "workflow_id, name, status, input, executor_id, app_version, instance, config, \
         executions, max_recovery_attempts, created_at, updated_at, queue_name, priority, \
         deduplication_id, started_at, parent_workflow_id, timeout_ms, deadline_at, not_before, \
         scheduled_at, partition_key"
    };
}
pub(super) use insert_columns;

/// The unique index that enforces deduplication (see the migrations).
const DEDUP_INDEX: &str = "workflow_status_queue_dedup";
/// The primary key of `operation_outputs` on Postgres: one outcome per step position.
const STEP_KEY: &str = "operation_outputs_pkey";

/// Whether `err` is a unique violation of `constraint`. SQLite does not name the constraint, so
/// there any unique violation counts: callers only ask where one constraint can be violated.
/// The row a write's `RETURNING` gave, if any. Writes run to their end (`fetch_all`), never
/// stop after the first row (`fetch_optional`): in SQLite's autocommit mode a statement commits
/// as it finishes, and a statement abandoned after its row loses the commit's error, so a full
/// disk looked like success.
fn first<R>(rows: Vec<R>) -> Option<R> {
    rows.into_iter().next()
}

fn violates_unique(err: &sqlx::Error, constraint: &str) -> bool {
    matches!(err, sqlx::Error::Database(db)
        if db.kind() == ErrorKind::UniqueViolation
            && db.constraint().is_none_or(|name| name == constraint))
}

/// A clash on the deduplication index becomes [`StoreError::Duplicate`] when the row names a
/// queue and a deduplication id (it cannot clash otherwise); anything else stays a database
/// error. The id's own clash never gets here: inserts resolve it with `DO NOTHING`.
pub(super) fn duplicate_or(
    err: sqlx::Error,
    queue: Option<&str>,
    deduplication_id: Option<&str>,
) -> StoreError {
    if violates_unique(&err, DEDUP_INDEX)
        && let (Some(queue), Some(deduplication_id)) = (queue, deduplication_id)
    {
        return StoreError::Duplicate {
            queue: queue.to_owned(),
            deduplication_id: deduplication_id.to_owned(),
        };
    }
    StoreError::from(err)
}

/// Claimed rows, selected with `claim_order` (insertion order) beside the workflow columns, in
/// dispatch order: `RETURNING` follows no order, and callers start them in the order given.
pub(super) fn in_dispatch_order<R: Columns>(rows: &[R]) -> Result<Vec<WorkflowRecord>, StoreError> {
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let order = row.int("workflow_status", "claim_order")?;
        claimed.push((order, workflow_from_row(row)?));
    }
    claimed.sort_by_key(|(order, record)| (record.priority, record.created_at, *order));
    Ok(claimed.into_iter().map(|(_, record)| record).collect())
}

/// Puts `records` back in the order of `ids` (the first mention of an id counts).
fn in_asked_order(ids: &[String], records: &mut [WorkflowRecord]) {
    let position: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .rev()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    records.sort_by_key(|record| position.get(record.id.as_str()).copied());
}

/// One backend's SQL: the hooks where SQLite and Postgres differ, and every shared statement as
/// a default method. The bounds say what the statements bind and read.
pub(super) trait Dialect: Database
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    Self::Arguments: IntoArguments<Self>,
    Self::Row: Columns,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> Option<&'q str>: Encode<'q, Self> + Type<Self>,
    for<'q> &'q [u8]: Encode<'q, Self> + Type<Self>,
    for<'q> String: Encode<'q, Self> + Type<Self>,
    for<'q> i64: Encode<'q, Self> + Type<Self>,
    for<'q> Option<i64>: Encode<'q, Self> + Type<Self>,
    for<'q> i32: Encode<'q, Self> + Type<Self>,
{
    /// The column that orders rows created in the same millisecond by insertion: SQLite's
    /// `rowid`, Postgres's `seq`. It keeps queues FIFO and listings stable.
    const INSERTION_ORDER: &'static str;

    /// What a `SELECT` in a transaction appends to keep the row from changing until commit:
    /// Postgres's `FOR UPDATE`; nothing on SQLite, whose writer holds the whole database.
    const LOCK_ROW: &'static str;
    /// What share-locks the rows a statement reads, where writers on other connections could
    /// change them meanwhile: `FOR SHARE` on Postgres, nothing on SQLite.
    const SHARE_ROW: &'static str;
    /// What a claim (of due workflows, of a dead executor's) appends to its selection:
    /// Postgres's `FOR UPDATE SKIP LOCKED`, so claimers on other connections pass over rows
    /// being taken; nothing on SQLite, whose writer holds the database.
    const SKIP_LOCKED: &'static str;
    /// What wraps a text column to count its bytes, not its characters: SQLite's
    /// `LENGTH(CAST(… AS BLOB))`, Postgres's `OCTET_LENGTH(…)`.
    const BYTES_OF: (&'static str, &'static str);
    /// What makes a text comparison byte by byte: nothing on SQLite (its default), Postgres's
    /// `COLLATE "C"` (its default collation may order punctuation otherwise).
    const BYTEWISE: &'static str;

    /// Appends a condition that `workflow_id` is one of `ids`, bound as one value so that the
    /// statement has one shape (prepared once) whatever the count.
    fn push_id_condition(query: &mut QueryBuilder<Self>, ids: &[String]) -> Result<(), StoreError>;

    /// Stores a component once; `topics` fills in a row stored before topics were kept.
    async fn put_component(
        conn: &mut Self::Connection,
        digest: &str,
        bytes: &[u8],
        topics: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO components (digest, bytes, size, created_at, topics) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (digest) DO UPDATE SET topics = excluded.topics \
             WHERE components.topics IS NULL AND excluded.topics IS NOT NULL",
        )
        .bind(digest)
        .bind(bytes)
        .bind(bytes.len() as i64)
        .bind(now_ms())
        .bind(topics)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// See `ExecutionStore::component_topics`.
    async fn component_topics(
        pool: &Pool<Self>,
        digest: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT topics FROM components WHERE digest = $1")
            .bind(digest)
            .fetch_optional(pool)
            .await?;
        Ok(row
            .map(|row| row.opt_text("components", "topics"))
            .transpose()?
            .flatten())
    }

    async fn get_component(pool: &Pool<Self>, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT bytes FROM components WHERE digest = $1")
            .bind(digest)
            .fetch_optional(pool)
            .await?;
        row.map(|row| row.bytes("components", "bytes")).transpose()
    }

    /// Creates the workflow at `now` unless its id exists, in one statement in the common
    /// case; already ended with `end` when given (a start whose code ran before its row).
    async fn insert_workflow(
        conn: &mut Self::Connection,
        new: &NewWorkflow,
        now: i64,
        end: Option<&WorkflowEnd>,
    ) -> Result<Inserted, StoreError> {
        let initial = initial_state(new, now);
        let (status, output, error) = match end {
            Some(end) => ending_columns(end),
            None => (initial.status, None, None),
        };
        // RETURNING yields the row only when it was inserted. The conflict target is the id
        // alone: a clash on the deduplication index is an error.
        let inserted = sqlx::query(concat!(
            "INSERT INTO workflow_status (",
            insert_columns!(),
            ", output, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, \
             $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23) \
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
        .bind(initial.executions)
        .bind(i64::from(new.max_recovery_attempts))
        .bind(now)
        .bind(new.queue_name.as_deref())
        .bind(new.priority)
        .bind(new.deduplication_id.as_deref())
        .bind(initial.started_at)
        .bind(new.parent_workflow_id.as_deref())
        .bind(
            new.timeout_ms
                .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
        )
        .bind(initial.deadline_at)
        .bind(new.not_before)
        .bind(new.scheduled_at)
        .bind(new.partition_key.as_deref())
        .bind(output)
        .bind(error)
        .fetch_all(&mut *conn)
        .await
        .map(first)
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
        // The conflicting row is committed (Postgres's ON CONFLICT waits for its inserter;
        // SQLite's writer is the only one), so the next statement sees it.
        match Self::select_workflow(conn, &new.id).await? {
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

    /// One workflow's row, read on `conn` (so inside its transaction, if any).
    async fn select_workflow(
        conn: &mut Self::Connection,
        workflow_id: &str,
    ) -> Result<Option<WorkflowRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflow_status WHERE workflow_id = $1"
        ))
        .bind(workflow_id)
        .fetch_optional(conn)
        .await?;
        row.as_ref().map(workflow_from_row).transpose()
    }

    /// One workflow's row, read on any connection of `pool`.
    async fn get_workflow(
        pool: &Pool<Self>,
        workflow_id: &str,
    ) -> Result<Option<WorkflowRecord>, StoreError> {
        let mut conn = pool.acquire().await?;
        Self::select_workflow(&mut conn, workflow_id).await
    }

    /// Newest first; rows of one millisecond newest inserted first.
    async fn list_workflows(
        pool: &Pool<Self>,
        filter: &WorkflowFilter,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        // Built per filter shape, binding every value; each shape is prepared once and cached.
        let mut query = QueryBuilder::<Self>::new(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflow_status"
        ));
        push_filter_clauses(&mut query, filter);
        // Both databases need a LIMIT before an OFFSET; the largest one means none.
        query
            .push(" ORDER BY created_at DESC, ")
            .push(Self::INSERTION_ORDER)
            .push(" DESC LIMIT ")
            .push_bind(filter.limit.map_or(i64::MAX, i64::from));
        if let Some(offset) = filter.offset {
            query.push(" OFFSET ").push_bind(i64::from(offset));
        }
        let rows = query.build().fetch_all(pool).await?;
        rows.iter().map(workflow_from_row).collect()
    }

    async fn steps(pool: &Pool<Self>, workflow_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            step_columns!(),
            " FROM operation_outputs WHERE workflow_id = $1 ORDER BY function_id"
        ))
        .bind(workflow_id)
        .fetch_all(pool)
        .await?;
        rows.iter().map(step_from_row).collect()
    }

    async fn begin_execution(
        conn: &mut Self::Connection,
        workflow_id: &str,
        executor_id: &str,
        epoch: u64,
    ) -> Result<Began, StoreError> {
        // `started_at` marks the first execution only; recoveries keep it, and the deadline
        // its timeout gives.
        let row = sqlx::query(concat!(
            "UPDATE workflow_status SET executions = executions + 1, executor_id = $1, \
             epoch = epoch + 1, status = 'PENDING', started_at = coalesce(started_at, $2), \
             updated_at = $2, deadline_at = CASE WHEN started_at IS NULL THEN ",
            first_deadline!("$2"),
            " ELSE deadline_at END WHERE workflow_id = $3 AND epoch = $4 \
             RETURNING executions, epoch"
        ))
        .bind(executor_id)
        .bind(now_ms())
        .bind(workflow_id)
        .bind(epoch_value(epoch))
        .fetch_all(&mut *conn)
        .await
        .map(first)?;
        let Some(row) = row else {
            return Err(Self::refusal(conn, workflow_id, epoch).await);
        };
        const T: &str = "workflow_status";
        Ok(Began {
            executions: to_u32(row.int(T, "executions")?, T, "executions")?,
            epoch: to_u64(row.int(T, "epoch")?, T, "epoch")?,
        })
    }

    /// Why a write under `epoch` matched no row: the workflow is gone, or it has another
    /// epoch ([`StoreError::Fenced`]).
    async fn refusal(conn: &mut Self::Connection, workflow_id: &str, epoch: u64) -> StoreError {
        let current = sqlx::query("SELECT epoch FROM workflow_status WHERE workflow_id = $1")
            .bind(workflow_id)
            .fetch_all(&mut *conn)
            .await
            .map(first);
        match current {
            Ok(Some(row)) => match row.int("workflow_status", "epoch") {
                Ok(current) => StoreError::Fenced {
                    workflow_id: workflow_id.to_owned(),
                    epoch,
                    current: u64::try_from(current).unwrap_or(0),
                },
                Err(err) => err,
            },
            Ok(None) => StoreError::UnknownWorkflow(workflow_id.to_owned()),
            Err(err) => err.into(),
        }
    }

    async fn record_step(conn: &mut Self::Connection, step: &StepRow) -> Result<(), StoreError> {
        // An execution's step goes in only while its workflow has the execution's epoch. The
        // row is share-locked (Postgres), so an adoption waits for this commit and then reads
        // the step, or commits first and this write finds the new epoch.
        let mut insert = QueryBuilder::<Self>::new(insert_step!());
        insert.push(Self::SHARE_ROW).push(" RETURNING function_id");
        let result = insert
            .build()
            .bind(step.workflow_id.as_str())
            .bind(i64::from(step.function_id))
            .bind(step.name.as_str())
            .bind(step.output.as_deref())
            .bind(step.error.as_deref())
            .bind(i64::from(step.attempts))
            .bind(step.started_at)
            .bind(step.completed_at)
            .bind(step.epoch)
            .bind(step.kind)
            .bind(step.args.as_deref())
            .fetch_all(&mut *conn)
            .await;
        match result {
            Ok(rows) if rows.is_empty() => {
                let epoch = step.epoch.map_or(0, |e| u64::try_from(e).unwrap_or(0));
                Err(Self::refusal(conn, &step.workflow_id, epoch).await)
            }
            Ok(_) => Ok(()),
            Err(err) if violates_unique(&err, STEP_KEY) => Err(StoreError::StepAlreadyRecorded {
                workflow_id: step.workflow_id.clone(),
                function_id: step.function_id,
            }),
            Err(sqlx::Error::Database(db)) if db.kind() == ErrorKind::ForeignKeyViolation => {
                Err(StoreError::UnknownWorkflow(step.workflow_id.clone()))
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn record_trap(
        conn: &mut Self::Connection,
        workflow_id: &str,
        trap: &TrapRecord<'_>,
    ) -> Result<(), StoreError> {
        // RETURNING says whether a row matched: sqlx has no backend-neutral row count. The
        // streak's CASE reads the class this statement replaces.
        let done = sqlx::query(
            "UPDATE workflow_status SET trap_class = $1, trap_message = $2, updated_at = $3, \
             traps = traps + 1, \
             trap_streak = CASE WHEN trap_class = $1 THEN trap_streak + 1 ELSE 1 END, \
             memory_limit = coalesce($5, memory_limit) \
             WHERE workflow_id = $4 AND ($6 IS NULL OR epoch = $6) RETURNING workflow_id",
        )
        .bind(trap.class)
        .bind(trap.message)
        .bind(now_ms())
        .bind(workflow_id)
        .bind(
            trap.memory_limit
                .map(|bytes| i64::try_from(bytes).unwrap_or(i64::MAX)),
        )
        .bind(trap.epoch.map(epoch_value))
        .fetch_all(&mut *conn)
        .await
        .map(first)?;
        match done {
            Some(_) => Ok(()),
            None => Err(Self::refusal(conn, workflow_id, trap.epoch.unwrap_or(0)).await),
        }
    }

    /// Ends the workflow unless it already ended; either way returns its row.
    async fn finish_workflow(
        conn: &mut Self::Connection,
        workflow_id: &str,
        end: &WorkflowEnd,
        epoch: Option<u64>,
    ) -> Result<WorkflowRecord, StoreError> {
        let (status, output, error) = ending_columns(end);
        // The first ending wins: a late duplicate execution must not rewrite a finished workflow.
        let finished = sqlx::query(concat!(
            "UPDATE workflow_status SET status = $1, output = $2, error = $3, updated_at = $4 \
             WHERE workflow_id = $5 AND status IN ('ENQUEUED', 'PENDING') \
             AND ($6 IS NULL OR epoch = $6) RETURNING ",
            workflow_columns!()
        ))
        .bind(status.as_str())
        .bind(output)
        .bind(error)
        .bind(now_ms())
        .bind(workflow_id)
        .bind(epoch.map(epoch_value))
        .fetch_all(&mut *conn)
        .await
        .map(first)?;
        if let Some(row) = finished {
            return workflow_from_row(&row);
        }
        // Nothing changed, so the row (if any) is terminal and stays as it is: a plain read
        // returns its first ending.
        let Some(record) = Self::select_workflow(conn, workflow_id).await? else {
            return Err(StoreError::UnknownWorkflow(workflow_id.to_owned()));
        };
        if let Some(epoch) = epoch.filter(|e| *e != record.epoch && !record.status.is_settled()) {
            return Err(StoreError::Fenced {
                workflow_id: workflow_id.to_owned(),
                epoch,
                current: record.epoch,
            });
        }
        tracing::debug!(workflow_id, %status, "workflow already finished; keeping its first ending");
        Ok(record)
    }

    /// PENDING workflows owned by an executor, oldest first.
    async fn pending_workflows(
        pool: &Pool<Self>,
        executor_id: &str,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        let mut query = QueryBuilder::<Self>::new(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflow_status WHERE status = 'PENDING' AND executor_id = "
        ));
        query
            .push_bind(executor_id.to_owned())
            .push(" ORDER BY created_at, ")
            .push(Self::INSERTION_ORDER);
        let rows = query.build().fetch_all(pool).await?;
        rows.iter().map(workflow_from_row).collect()
    }

    async fn queue_depths(pool: &Pool<Self>) -> Result<Vec<QueueDepth>, StoreError> {
        const T: &str = "workflow_status";
        // Only active rows: the dispatch index answers without touching finished workflows.
        let rows = sqlx::query(
            "SELECT queue_name, count(CASE WHEN status = 'ENQUEUED' THEN 1 END) AS enqueued, \
             count(CASE WHEN status = 'PENDING' THEN 1 END) AS pending FROM workflow_status \
             WHERE queue_name IS NOT NULL AND status IN ('ENQUEUED', 'PENDING') \
             GROUP BY queue_name ORDER BY queue_name",
        )
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(QueueDepth {
                    queue: row.text(T, "queue_name")?,
                    enqueued: to_u64(row.int(T, "enqueued")?, T, "enqueued")?,
                    pending: to_u64(row.int(T, "pending")?, T, "pending")?,
                })
            })
            .collect()
    }

    async fn count_by_status(pool: &Pool<Self>) -> Result<Vec<(WorkflowStatus, u64)>, StoreError> {
        const T: &str = "workflow_status";
        let rows = sqlx::query(
            "SELECT status, count(*) AS workflows FROM workflow_status \
             GROUP BY status ORDER BY status",
        )
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|row| {
                let status = WorkflowStatus::from_str(&row.text(T, "status")?).map_err(|err| {
                    StoreError::Corrupt {
                        table: T,
                        message: err.to_string(),
                    }
                })?;
                Ok((status, to_u64(row.int(T, "workflows")?, T, "workflows")?))
            })
            .collect()
    }

    /// Deletes up to `max` ended workflows last changed before `cutoff` (ms), oldest first,
    /// with their steps; returns how many. Run in a transaction: the rows are deleted first,
    /// re-checked as ended, and only their steps follow, so a workflow resumed meanwhile keeps
    /// its history. A child whose parent still runs is kept: the parent may await it.
    async fn delete_ended(
        conn: &mut Self::Connection,
        cutoff: i64,
        max: u32,
    ) -> Result<u32, StoreError> {
        let deleted = sqlx::query(
            "DELETE FROM workflow_status WHERE workflow_id IN ( \
               SELECT w.workflow_id FROM workflow_status w \
               WHERE w.status IN ('SUCCESS', 'ERROR', 'CANCELLED', \
                                  'MAX_RECOVERY_ATTEMPTS_EXCEEDED') \
                 AND w.updated_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM workflow_status p \
                                 WHERE p.workflow_id = w.parent_workflow_id \
                                   AND p.status IN ('ENQUEUED', 'PENDING', 'PAUSED')) \
               ORDER BY w.updated_at LIMIT $2) \
             AND status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED') \
             RETURNING workflow_id",
        )
        .bind(cutoff)
        .bind(i64::from(max))
        .fetch_all(&mut *conn)
        .await?;
        let ids = deleted
            .iter()
            .map(|row| row.text("workflow_status", "workflow_id"))
            .collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() {
            return Ok(0);
        }
        let mut steps = QueryBuilder::<Self>::new("DELETE FROM operation_outputs WHERE ");
        Self::push_id_condition(&mut steps, &ids)?;
        steps.build().execute(&mut *conn).await?;
        Ok(u32::try_from(ids.len()).unwrap_or(u32::MAX))
    }

    /// Cancels an active workflow or returns the row of an ended one. Run in a transaction, so
    /// the read that explains a no-op sees the state the update did.
    async fn cancel_workflow(
        conn: &mut Self::Connection,
        workflow_id: &str,
    ) -> Result<WorkflowRecord, StoreError> {
        let cancelled = sqlx::query(concat!(
            "UPDATE workflow_status SET status = 'CANCELLED', updated_at = $1 \
             WHERE workflow_id = $2 AND status IN ('ENQUEUED', 'PENDING', 'PAUSED') RETURNING ",
            workflow_columns!()
        ))
        .bind(now_ms())
        .bind(workflow_id)
        .fetch_all(&mut *conn)
        .await
        .map(first)?;
        if let Some(row) = cancelled {
            return workflow_from_row(&row);
        }
        // Already ended: cancelling is a no-op, and the row says how it ended.
        Self::select_workflow(conn, workflow_id)
            .await?
            .ok_or_else(|| StoreError::UnknownWorkflow(workflow_id.to_owned()))
    }

    /// Makes any workflow but a SUCCESS PENDING again under `executor_id`. Run in a transaction.
    async fn resume_workflow(
        conn: &mut Self::Connection,
        workflow_id: &str,
        executor_id: &str,
        memory_limit: Option<u64>,
    ) -> Result<WorkflowRecord, StoreError> {
        // The row is read (and locked) first: a failed statement aborts a Postgres transaction,
        // so nothing could be read after a deduplication clash to explain it.
        let mut select = QueryBuilder::<Self>::new(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflow_status WHERE workflow_id = "
        ));
        select
            .push_bind(workflow_id.to_owned())
            .push(Self::LOCK_ROW);
        let current = match select.build().fetch_optional(&mut *conn).await? {
            Some(row) => workflow_from_row(&row)?,
            None => return Err(StoreError::UnknownWorkflow(workflow_id.to_owned())),
        };
        if current.status == WorkflowStatus::Success {
            return Err(StoreError::NotResumable {
                workflow_id: workflow_id.to_owned(),
                status: current.status,
            });
        }
        // executions = 0 and traps = 0 give the resumed workflow a fresh budget of recovery
        // attempts; the trap columns stay as a record of what went wrong last time.
        let row = sqlx::query(concat!(
            "UPDATE workflow_status SET status = 'PENDING', executions = 0, traps = 0, \
             trap_streak = 0, error = NULL, epoch = epoch + 1, memory_limit = coalesce($4, memory_limit), \
             executor_id = $1, started_at = coalesce(started_at, $2), updated_at = $2 \
             WHERE workflow_id = $3 RETURNING ",
            workflow_columns!()
        ))
        .bind(executor_id)
        .bind(now_ms())
        .bind(workflow_id)
        .bind(memory_limit.map(|bytes| i64::try_from(bytes).unwrap_or(i64::MAX)))
        .fetch_one(&mut *conn)
        .await
        // A cancelled workflow's deduplication id was taken by a newer one meanwhile.
        .map_err(|err| {
            duplicate_or(
                err,
                current.queue_name.as_deref(),
                current.deduplication_id.as_deref(),
            )
        })?;
        workflow_from_row(&row)
    }

    /// Copies a workflow and its steps before `from_step` to `new_id`. Run in a transaction (or
    /// a savepoint): the row and its steps only make sense together.
    async fn fork_workflow(
        conn: &mut Self::Connection,
        workflow_id: &str,
        new_id: &str,
        from_step: u32,
    ) -> Result<WorkflowRecord, StoreError> {
        // `WHERE` before `ON CONFLICT` also settles SQLite's parsing ambiguity of an upsert from
        // SELECT.
        let forked = sqlx::query(concat!(
            "INSERT INTO workflow_status (workflow_id, name, status, input, executor_id, \
             app_version, instance, config, executions, max_recovery_attempts, created_at, \
             updated_at, priority) \
             SELECT $1, name, 'PENDING', input, executor_id, app_version, instance, config, 0, \
             max_recovery_attempts, $2, $2, 0 FROM workflow_status WHERE workflow_id = $3 \
             ON CONFLICT (workflow_id) DO NOTHING RETURNING ",
            workflow_columns!()
        ))
        .bind(new_id)
        .bind(now_ms())
        .bind(workflow_id)
        .fetch_all(&mut *conn)
        .await
        .map(first)?;
        let Some(row) = forked else {
            // Nothing inserted: either there is nothing to copy or the new id is taken.
            return Err(match Self::select_workflow(conn, workflow_id).await? {
                None => StoreError::UnknownWorkflow(workflow_id.to_owned()),
                Some(_) => StoreError::WorkflowExists(new_id.to_owned()),
            });
        };
        let record = workflow_from_row(&row)?;
        sqlx::query(concat!(
            "INSERT INTO operation_outputs (",
            step_columns!(),
            ") SELECT $1, function_id, name, output, error, attempts, started_at, completed_at, \
             NULL, kind, args FROM operation_outputs WHERE workflow_id = $2 AND function_id < $3"
        ))
        .bind(new_id)
        .bind(workflow_id)
        .bind(i64::from(from_step))
        .execute(&mut *conn)
        .await?;
        tracing::debug!(workflow_id, new_id, from_step, "forked workflow");
        Ok(record)
    }

    /// The workflows cancelled (their `CANCELLED` row last written) at `since` (ms) or later:
    /// a partial index holds only cancelled rows, so this costs what was cancelled, not what
    /// runs.
    async fn cancelled_since(pool: &Pool<Self>, since: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT workflow_id FROM workflow_status \
             WHERE status = 'CANCELLED' AND updated_at >= $1",
        )
        .bind(since)
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|row| row.text("workflow_status", "workflow_id"))
            .collect()
    }

    /// The rows of `ids` in the order asked, missing ones left out.
    async fn workflow_statuses(
        pool: &Pool<Self>,
        ids: &[String],
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Self>::new(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflow_status WHERE "
        ));
        Self::push_id_condition(&mut query, ids)?;
        let rows = query.build().fetch_all(pool).await?;
        let mut records = rows
            .iter()
            .map(workflow_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // Back to the order asked, which callers showing a list of workflows expect.
        in_asked_order(ids, &mut records);
        Ok(records)
    }
}
