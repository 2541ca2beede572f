//! Moving a workflow to other code, written once for both backends like [`Dialect`]'s: the
//! switch of its version, the epoch that stops its running execution, and the record of the
//! move in its history, in one transaction.

use sqlx::{Encode, Executor, IntoArguments, Type};

use super::rows::{Columns, workflow_from_row};
use super::shared::{Dialect, step_columns, workflow_columns};
use super::{StoreError, WorkflowRecord, now_ms};
use reprise_protocol::recorded;

pub(super) trait Upgrades: Dialect
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
}
