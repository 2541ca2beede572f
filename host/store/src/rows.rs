//! Rows to records, written once for every backend: a backend only says how to read a column
//! of its row type. A value of the wrong type or out of range is a corrupt row, named as such.

use std::collections::HashMap;
use std::str::FromStr;

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{StepFailureRecord, StepRecord, StoreError, WorkflowRecord, WorkflowStatus};

/// Reading typed columns from one backend's row.
pub(super) trait Columns {
    fn text(&self, table: &'static str, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, table: &'static str, column: &str) -> Result<Option<String>, StoreError>;
    /// A 64-bit integer column (timestamps, counts).
    fn int(&self, table: &'static str, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, table: &'static str, column: &str) -> Result<Option<i64>, StoreError>;
    /// A 32-bit integer column (priority).
    fn small_int(&self, table: &'static str, column: &str) -> Result<i32, StoreError>;
    /// A binary column (component bytes).
    fn bytes(&self, table: &'static str, column: &str) -> Result<Vec<u8>, StoreError>;
}

/// Reads one column; a value of the wrong type is a corrupt row, not a database failure.
pub(super) fn get<'r, R, T>(row: &'r R, table: &'static str, column: &str) -> Result<T, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(column)
        .map_err(|source| StoreError::CorruptValue {
            table,
            source: source.into(),
        })
}

/// A count column: negative or oversized values are corruption.
pub(super) fn to_u32(value: i64, table: &'static str, column: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt {
        table,
        message: format!("column {column}: {value} is not a count"),
    })
}

/// A count column as u64.
pub(super) fn to_u64(value: i64, table: &'static str, column: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        table,
        message: format!("column {column}: {value} is not a count"),
    })
}

/// The records a bulk write returned, by id. A row that does not read back is left out, so
/// its write runs again alone, which reports the row as corrupt.
pub(super) fn records_by_id<R: Columns>(rows: &[R]) -> HashMap<String, WorkflowRecord> {
    rows.iter()
        .filter_map(|row| workflow_from_row(row).ok())
        .map(|record| (record.id.clone(), record))
        .collect()
}

/// A `workflow_status` row selected with the backend's full column list.
pub(super) fn workflow_from_row(row: &impl Columns) -> Result<WorkflowRecord, StoreError> {
    const T: &str = "workflow_status";
    let id = row.text(T, "workflow_id")?;
    let status = row.text(T, "status")?;
    let status = WorkflowStatus::from_str(&status).map_err(|message| StoreError::Corrupt {
        table: T,
        message: format!("workflow {id}: {message}"),
    })?;
    Ok(WorkflowRecord {
        name: row.text(T, "name")?,
        status,
        input: row.text(T, "input")?,
        output: row.opt_text(T, "output")?,
        error: row.opt_text(T, "error")?,
        trap_class: row.opt_text(T, "trap_class")?,
        trap_message: row.opt_text(T, "trap_message")?,
        executor_id: row.text(T, "executor_id")?,
        app_version: row.text(T, "app_version")?,
        instance: row.text(T, "instance")?,
        config: row.text(T, "config")?,
        executions: to_u32(row.int(T, "executions")?, T, "executions")?,
        traps: to_u32(row.int(T, "traps")?, T, "traps")?,
        max_recovery_attempts: to_u32(
            row.int(T, "max_recovery_attempts")?,
            T,
            "max_recovery_attempts",
        )?,
        created_at: row.int(T, "created_at")?,
        updated_at: row.int(T, "updated_at")?,
        queue_name: row.opt_text(T, "queue_name")?,
        priority: row.small_int(T, "priority")?,
        deduplication_id: row.opt_text(T, "deduplication_id")?,
        started_at: row.opt_int(T, "started_at")?,
        parent_workflow_id: row.opt_text(T, "parent_workflow_id")?,
        trap_streak: to_u32(row.int(T, "trap_streak")?, T, "trap_streak")?,
        memory_limit: row
            .opt_int(T, "memory_limit")?
            .map(|bytes| to_u64(bytes, T, "memory_limit"))
            .transpose()?,
        timeout_ms: row
            .opt_int(T, "timeout_ms")?
            .map(|ms| to_u64(ms, T, "timeout_ms"))
            .transpose()?,
        deadline_at: row.opt_int(T, "deadline_at")?,
        not_before: row.opt_int(T, "not_before")?,
        scheduled_at: row.opt_int(T, "scheduled_at")?,
        epoch: to_u64(row.int(T, "epoch")?, T, "epoch")?,
        partition_key: row.opt_text(T, "partition_key")?,
        run: to_u32(row.int(T, "run")?, T, "run")?,
        id,
    })
}

/// An `operation_outputs` row; the failure column holds a [`StepFailureRecord`] as JSON.
pub(super) fn step_from_row(row: &impl Columns) -> Result<StepRecord, StoreError> {
    const T: &str = "operation_outputs";
    let workflow_id = row.text(T, "workflow_id")?;
    let function_id = to_u32(row.int(T, "function_id")?, T, "function_id")?;
    let error = row
        .opt_text(T, "error")?
        .map(|json| serde_json::from_str::<StepFailureRecord>(&json))
        .transpose()
        .map_err(|err| StoreError::Corrupt {
            table: T,
            message: format!("workflow {workflow_id} step {function_id}: bad error JSON: {err}"),
        })?;
    Ok(StepRecord {
        function_id,
        name: row.text(T, "name")?,
        output: row.opt_text(T, "output")?,
        error,
        attempts: to_u32(row.int(T, "attempts")?, T, "attempts")?,
        started_at: row.int(T, "started_at")?,
        completed_at: row.int(T, "completed_at")?,
        epoch: None,
        committed_epoch: row
            .opt_int(T, "epoch")?
            .map(|epoch| to_u64(epoch, T, "epoch"))
            .transpose()?,
        args: row.opt_text(T, "args")?,
        workflow_id,
    })
}
