//! Component versions, written once for both backends like [`Dialect`]'s: which versions are
//! stored and how many workflows in flight run on each, and moving a workflow to another — the
//! switch of its version, the epoch that stops its running execution, and the record of the
//! move in its history, in one transaction.

use async_trait::async_trait;
use serde::Serialize;
use sqlx::{Encode, Executor, IntoArguments, Pool, Postgres, Sqlite, Type};

use super::contract::VersionStore;
use super::postgres::{PostgresStore, settle};
use super::rows::{Columns, to_u64, workflow_from_row};
use super::shared::{Dialect, step_columns, workflow_columns};
use super::sqlite::{Alone, SqliteStore, in_savepoint};
use super::written::StepRow;
use super::{StepRecord, StoreError, WorkflowRecord, now_ms};
use reprise_protocol::recorded;

/// One stored version of a component.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentVersion {
    /// Its content digest: the `app_version` of the workflows that run on it.
    pub digest: String,
    /// The configured component it is a version of, once a server or an upload named it.
    pub name: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// When it was first stored (ms since the epoch).
    pub first_seen: i64,
    /// Workflows in flight (PENDING or ENQUEUED) on it; none: drained.
    pub in_flight: u64,
}

/// A finished run of a workflow that continued as new.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// Its number: 0 for the first.
    pub run: u32,
    /// The version it ran on.
    pub app_version: String,
    /// Its input (JSON text).
    pub input: String,
    /// The input it continued with (JSON text).
    pub next_input: String,
    /// Its history, as it was recorded.
    pub steps: Vec<StepRecord>,
    /// When it started (ms since the epoch).
    pub started_at: Option<i64>,
    /// When it continued as new (ms since the epoch).
    pub ended_at: i64,
}

pub(super) trait Versions: Dialect
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
    /// See `AdminStore::upgrade_workflow`. Run in a transaction (or a savepoint).
    async fn upgrade_workflow(
        conn: &mut Self::Connection,
        id: &str,
        epoch: u64,
        at: u32,
        to: &str,
    ) -> Result<WorkflowRecord, StoreError> {
        let changed = || StoreError::ChangedWhileChecked(id.to_owned());
        let now = now_ms();
        let Some(before) = Self::select_workflow(conn, id).await? else {
            return Err(StoreError::UnknownWorkflow(id.to_owned()));
        };
        let rows = sqlx::query(concat!(
            "UPDATE workflow_status SET app_version = $1, epoch = epoch + 1, updated_at = $2 \
             WHERE workflow_id = $3 AND epoch = $4 AND status IN ('PENDING', 'ENQUEUED') \
             RETURNING ",
            workflow_columns!()
        ))
        .bind(to)
        .bind(now)
        .bind(id)
        .bind(i64::try_from(epoch).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await?;
        let Some(row) = rows.first() else {
            return Err(changed());
        };
        let record = workflow_from_row(row)?;
        let moved = serde_json::json!({"from": before.app_version, "to": to}).to_string();
        // A step recorded at or after `at` since the check: the primary key or the count says so.
        let later = sqlx::query(
            "SELECT COUNT(*) AS later FROM operation_outputs \
             WHERE workflow_id = $1 AND function_id >= $2",
        )
        .bind(id)
        .bind(i64::from(at))
        .fetch_one(&mut *conn)
        .await?;
        if later.int("operation_outputs", "later")? > 0 {
            return Err(changed());
        }
        sqlx::query(concat!(
            "INSERT INTO operation_outputs (",
            step_columns!(),
            ") VALUES ($1, $2, $3, $4, NULL, 1, $5, $5, $6, $7, NULL)"
        ))
        .bind(id)
        .bind(i64::from(at))
        .bind(recorded::UPGRADE)
        .bind(moved)
        .bind(now)
        .bind(i64::try_from(record.epoch).unwrap_or(i64::MAX))
        .bind(recorded::Kind::Upgrade.as_str())
        .execute(&mut *conn)
        .await?;
        Ok(record)
    }

    async fn import_workflow(
        conn: &mut Self::Connection,
        workflow: &WorkflowRecord,
        steps: &[StepRecord],
    ) -> Result<(), StoreError> {
        let w = workflow;
        let inserted = sqlx::query(
            "INSERT INTO workflow_status (workflow_id, name, status, input, output, error, \
             executor_id, app_version, instance, config, executions, max_recovery_attempts, \
             created_at, updated_at, started_at, priority, memory_limit, run) VALUES ($1, $2, \
             $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0, $16, $17) \
             ON CONFLICT (workflow_id) DO NOTHING RETURNING workflow_id",
        )
        .bind(w.id.as_str())
        .bind(w.name.as_str())
        .bind(w.status.as_str())
        .bind(w.input.as_str())
        .bind(w.output.as_deref())
        .bind(w.error.as_deref())
        .bind(w.executor_id.as_str())
        .bind(w.app_version.as_str())
        .bind(w.instance.as_str())
        .bind(w.config.as_str())
        .bind(i64::from(w.executions))
        .bind(i64::from(w.max_recovery_attempts))
        .bind(w.created_at)
        .bind(now_ms())
        .bind(w.started_at)
        .bind(w.memory_limit.map(|b| i64::try_from(b).unwrap_or(i64::MAX)))
        .bind(i64::from(w.run))
        .fetch_all(&mut *conn)
        .await?;
        if inserted.is_empty() {
            return Err(StoreError::WorkflowExists(w.id.clone()));
        }
        for step in steps {
            let row = StepRow::new(step)?;
            sqlx::query(concat!(
                "INSERT INTO operation_outputs (",
                step_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10)"
            ))
            .bind(w.id.as_str())
            .bind(i64::from(row.function_id))
            .bind(row.name.as_str())
            .bind(row.output.as_deref())
            .bind(row.error.as_deref())
            .bind(i64::from(row.attempts))
            .bind(row.started_at)
            .bind(row.completed_at)
            .bind(row.kind)
            .bind(row.args.as_deref())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn continue_as_new(
        conn: &mut Self::Connection,
        id: &str,
        epoch: u64,
        input: &str,
        to: &str,
    ) -> Result<WorkflowRecord, StoreError> {
        let now = now_ms();
        let mut select = sqlx::QueryBuilder::<Self>::new(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflow_status WHERE workflow_id = "
        ));
        select.push_bind(id).push(Self::LOCK_ROW);
        let rows = select.build().fetch_all(&mut *conn).await?;
        let before = match rows.first() {
            Some(row) => workflow_from_row(row)?,
            None => return Err(StoreError::UnknownWorkflow(id.to_owned())),
        };
        if before.epoch != epoch || before.status != crate::WorkflowStatus::Pending {
            return Err(StoreError::Fenced {
                workflow_id: id.to_owned(),
                epoch,
                current: before.epoch,
            });
        }
        let steps = sqlx::query(concat!(
            "SELECT ",
            step_columns!(),
            " FROM operation_outputs WHERE workflow_id = $1 ORDER BY function_id"
        ))
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(super::rows::step_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        let history = serde_json::to_string(&steps).map_err(|e| StoreError::Corrupt {
            table: "workflow_runs",
            message: format!("cannot encode the history of {id}: {e}"),
        })?;
        sqlx::query(
            "INSERT INTO workflow_runs (workflow_id, run, app_version, input, next_input, steps, \
             started_at, ended_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(i64::from(before.run))
        .bind(before.app_version.as_str())
        .bind(before.input.as_str())
        .bind(input)
        .bind(history)
        .bind(before.started_at)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM operation_outputs WHERE workflow_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        let rows = sqlx::query(concat!(
            "UPDATE workflow_status SET run = run + 1, input = $1, app_version = $2, \
             epoch = epoch + 1, executions = 0, traps = 0, trap_streak = 0, started_at = $3, \
             updated_at = $3 WHERE workflow_id = $4 RETURNING ",
            workflow_columns!()
        ))
        .bind(input)
        .bind(to)
        .bind(now)
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        match rows.first() {
            Some(row) => workflow_from_row(row),
            None => Err(StoreError::UnknownWorkflow(id.to_owned())),
        }
    }

    async fn runs(pool: &Pool<Self>, id: &str) -> Result<Vec<RunRecord>, StoreError> {
        const T: &str = "workflow_runs";
        let rows = sqlx::query(
            "SELECT run, app_version, input, next_input, steps, started_at, ended_at \
             FROM workflow_runs WHERE workflow_id = $1 ORDER BY run",
        )
        .bind(id)
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|row| {
                let steps = row.text(T, "steps")?;
                Ok(RunRecord {
                    run: super::rows::to_u32(row.int(T, "run")?, T, "run")?,
                    app_version: row.text(T, "app_version")?,
                    input: row.text(T, "input")?,
                    next_input: row.text(T, "next_input")?,
                    steps: serde_json::from_str(&steps).map_err(|e| StoreError::Corrupt {
                        table: T,
                        message: format!("the history of a run of {id}: {e}"),
                    })?,
                    started_at: row.opt_int(T, "started_at")?,
                    ended_at: row.int(T, "ended_at")?,
                })
            })
            .collect()
    }

    async fn name_component(
        conn: &mut Self::Connection,
        digest: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE components SET name = $1 WHERE digest = $2 AND name IS NULL")
            .bind(name)
            .bind(digest)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn component_versions(pool: &Pool<Self>) -> Result<Vec<ComponentVersion>, StoreError> {
        const T: &str = "components";
        let rows = sqlx::query(
            "SELECT c.digest, c.name, c.size, c.created_at, COALESCE(f.n, 0) AS in_flight \
             FROM components c LEFT JOIN (SELECT app_version, COUNT(*) AS n \
             FROM workflow_status WHERE status IN ('PENDING', 'ENQUEUED') \
             GROUP BY app_version) f ON f.app_version = c.digest \
             ORDER BY c.created_at, c.digest",
        )
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ComponentVersion {
                    digest: row.text(T, "digest")?,
                    name: row.opt_text(T, "name")?,
                    size: to_u64(row.int(T, "size")?, T, "size")?,
                    first_seen: row.int(T, "created_at")?,
                    in_flight: to_u64(row.int(T, "in_flight")?, T, "in_flight")?,
                })
            })
            .collect()
    }
}

impl Versions for Sqlite {}
impl Versions for Postgres {}

#[async_trait]
impl VersionStore for SqliteStore {
    async fn upgrade_workflow(
        &self,
        id: &str,
        epoch: u64,
        at: u32,
        to: &str,
    ) -> Result<WorkflowRecord, StoreError> {
        let (id, to) = (id.to_owned(), to.to_owned());
        self.run(Alone::Transaction, move |conn| {
            Box::pin(async move {
                in_savepoint(conn, move |sp| {
                    Box::pin(async move { Sqlite::upgrade_workflow(sp, &id, epoch, at, &to).await })
                })
                .await
            })
        })
        .await
    }

    async fn import_workflow(
        &self,
        workflow: &WorkflowRecord,
        steps: &[StepRecord],
    ) -> Result<(), StoreError> {
        let (workflow, steps) = (workflow.clone(), steps.to_vec());
        self.run(Alone::Transaction, move |conn| {
            Box::pin(async move {
                in_savepoint(conn, move |sp| {
                    Box::pin(async move { Sqlite::import_workflow(sp, &workflow, &steps).await })
                })
                .await
            })
        })
        .await
    }

    async fn continue_as_new(
        &self,
        id: &str,
        epoch: u64,
        input: &str,
        to: &str,
    ) -> Result<WorkflowRecord, StoreError> {
        let (id, input, to) = (id.to_owned(), input.to_owned(), to.to_owned());
        self.run(Alone::Transaction, move |conn| {
            Box::pin(async move {
                in_savepoint(conn, move |sp| {
                    Box::pin(
                        async move { Sqlite::continue_as_new(sp, &id, epoch, &input, &to).await },
                    )
                })
                .await
            })
        })
        .await
    }

    async fn runs(&self, id: &str) -> Result<Vec<RunRecord>, StoreError> {
        Sqlite::runs(&self.reads, id).await
    }

    async fn name_component(&self, digest: &str, name: &str) -> Result<(), StoreError> {
        let (digest, name) = (digest.to_owned(), name.to_owned());
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(async move { Sqlite::name_component(conn, &digest, &name).await })
        })
        .await
    }

    async fn component_versions(&self) -> Result<Vec<ComponentVersion>, StoreError> {
        Sqlite::component_versions(&self.reads).await
    }
}

#[async_trait]
impl VersionStore for PostgresStore {
    async fn upgrade_workflow(
        &self,
        id: &str,
        epoch: u64,
        at: u32,
        to: &str,
    ) -> Result<WorkflowRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        let upgraded = Postgres::upgrade_workflow(&mut tx, id, epoch, at, to).await;
        settle(tx, upgraded).await
    }

    async fn import_workflow(
        &self,
        workflow: &WorkflowRecord,
        steps: &[StepRecord],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let imported = Postgres::import_workflow(&mut tx, workflow, steps).await;
        settle(tx, imported).await
    }

    async fn continue_as_new(
        &self,
        id: &str,
        epoch: u64,
        input: &str,
        to: &str,
    ) -> Result<WorkflowRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        let continued = Postgres::continue_as_new(&mut tx, id, epoch, input, to).await;
        settle(tx, continued).await
    }

    async fn runs(&self, id: &str) -> Result<Vec<RunRecord>, StoreError> {
        Postgres::runs(&self.pool, id).await
    }

    async fn name_component(&self, digest: &str, name: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        Postgres::name_component(&mut conn, digest, name).await
    }

    async fn component_versions(&self) -> Result<Vec<ComponentVersion>, StoreError> {
        Postgres::component_versions(&self.pool).await
    }
}
