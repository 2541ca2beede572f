//! The combiner's multi-row statements: each takes one array per column (`unnest`), so its
//! text is the same for any number of rows and stays prepared. Each does what the single-row
//! statement of `shared.rs` does for one row, and `RETURNING` names the rows it wrote.

use std::collections::{BTreeSet, HashMap};

use sqlx::Row;
use sqlx::postgres::PgConnection;

use crate::rows::records_by_id;
use crate::shared::{insert_columns, step_columns, workflow_columns};
use crate::written::{StepRow, ending_columns, epoch_value, initial_state};
use crate::{NewWorkflow, StoreError, WorkflowEnd, WorkflowRecord, now_ms};

/// An ending to write: the workflow, how it ended, the epoch its execution holds.
pub(super) struct Ending<'a> {
    pub(super) workflow_id: &'a str,
    pub(super) end: &'a WorkflowEnd,
    pub(super) epoch: Option<u64>,
}

/// New workflows; those it created, by id. An existing id is skipped (its write, alone, reads
/// the original); a deduplication clash fails the whole statement.
pub(super) async fn insert_workflows<R>(
    conn: &mut PgConnection,
    inserts: &[(NewWorkflow, R)],
) -> Result<HashMap<String, WorkflowRecord>, StoreError> {
    let now = now_ms();
    let news = || inserts.iter().map(|(new, _)| new);
    let initial: Vec<_> = news().map(|new| initial_state(new, now)).collect();
    let text = |f: fn(&NewWorkflow) -> &str| news().map(f).collect::<Vec<_>>();
    let rows = sqlx::query(concat!(
        "INSERT INTO workflow_status (",
        insert_columns!(),
        ") SELECT id, name, status, input, executor_id, app_version, instance, config, \
         executions, max_recovery_attempts, $22, $22, queue_name, priority, deduplication_id, \
         started_at, parent_workflow_id, timeout_ms, deadline_at, not_before, scheduled_at, \
         partition_key \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
         $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::text[], $12::int[], \
         $13::text[], $14::bigint[], $15::text[], $16::bigint[], $17::bigint[], $18::bigint[], \
         $19::bigint[], $20::text[], $21::int[]) \
         AS v(id, name, status, input, executor_id, app_version, instance, config, executions, \
         max_recovery_attempts, queue_name, priority, deduplication_id, started_at, \
         parent_workflow_id, timeout_ms, deadline_at, not_before, scheduled_at, partition_key, \
         position) ORDER BY position \
         ON CONFLICT (workflow_id) DO NOTHING RETURNING ",
        workflow_columns!()
    ))
    .bind(text(|n| &n.id))
    .bind(text(|n| &n.name))
    .bind(
        initial
            .iter()
            .map(|i| i.status.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(text(|n| &n.input))
    .bind(text(|n| &n.executor_id))
    .bind(text(|n| &n.app_version))
    .bind(text(|n| &n.instance))
    .bind(text(|n| &n.config))
    .bind(initial.iter().map(|i| i.executions).collect::<Vec<_>>())
    .bind(
        news()
            .map(|n| i64::from(n.max_recovery_attempts))
            .collect::<Vec<_>>(),
    )
    .bind(news().map(|n| n.queue_name.as_deref()).collect::<Vec<_>>())
    .bind(news().map(|n| n.priority).collect::<Vec<_>>())
    .bind(
        news()
            .map(|n| n.deduplication_id.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(initial.iter().map(|i| i.started_at).collect::<Vec<_>>())
    .bind(
        news()
            .map(|n| n.parent_workflow_id.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(
        news()
            .map(|n| n.timeout_ms.map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)))
            .collect::<Vec<_>>(),
    )
    .bind(initial.iter().map(|i| i.deadline_at).collect::<Vec<_>>())
    .bind(news().map(|n| n.not_before).collect::<Vec<_>>())
    .bind(news().map(|n| n.scheduled_at).collect::<Vec<_>>())
    .bind(
        news()
            .map(|n| n.partition_key.as_deref())
            .collect::<Vec<_>>(),
    )
    // Rows go in in arrival order, so the queue's insertion order (`seq`) stays FIFO.
    .bind(
        (0..inserts.len())
            .map(|i| i32::try_from(i).unwrap_or(i32::MAX))
            .collect::<Vec<_>>(),
    )
    .bind(now)
    .fetch_all(conn)
    .await?;
    Ok(records_by_id(&rows))
}

/// Step checkpoints, each only while its workflow has the execution's epoch (the row
/// share-locked, as for one); which (workflow, position) pairs it wrote.
pub(super) async fn insert_steps<R>(
    conn: &mut PgConnection,
    steps: &[(StepRow, R)],
) -> Result<BTreeSet<(String, i64)>, sqlx::Error> {
    let rows = || steps.iter().map(|(step, _)| step);
    let rows = sqlx::query(concat!(
        "INSERT INTO operation_outputs (",
        step_columns!(),
        ") SELECT v.workflow_id, v.function_id, v.name, v.output, v.error, v.attempts, \
         v.started_at, v.completed_at, w.epoch, v.kind, v.args \
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
         $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::text[]) \
         AS v(workflow_id, function_id, name, output, error, attempts, started_at, \
         completed_at, epoch, kind, args) \
         JOIN workflow_status w ON w.workflow_id = v.workflow_id \
         AND (v.epoch IS NULL OR w.epoch = v.epoch) \
         FOR SHARE OF w ON CONFLICT DO NOTHING RETURNING workflow_id, function_id"
    ))
    .bind(rows().map(|s| s.workflow_id.as_str()).collect::<Vec<_>>())
    .bind(rows().map(|s| i64::from(s.function_id)).collect::<Vec<_>>())
    .bind(rows().map(|s| s.name.as_str()).collect::<Vec<_>>())
    .bind(rows().map(|s| s.output.as_deref()).collect::<Vec<_>>())
    .bind(rows().map(|s| s.error.as_deref()).collect::<Vec<_>>())
    .bind(rows().map(|s| i64::from(s.attempts)).collect::<Vec<_>>())
    .bind(rows().map(|s| s.started_at).collect::<Vec<_>>())
    .bind(rows().map(|s| s.completed_at).collect::<Vec<_>>())
    .bind(rows().map(|s| s.epoch).collect::<Vec<_>>())
    .bind(rows().map(|s| s.kind).collect::<Vec<_>>())
    .bind(rows().map(|s| s.args.as_deref()).collect::<Vec<_>>())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// Endings: the first ending wins, under the caller's epoch, as for one; the ended records.
pub(super) async fn update_endings(
    conn: &mut PgConnection,
    finishes: &[Ending<'_>],
) -> Result<HashMap<String, WorkflowRecord>, StoreError> {
    let columns: Vec<_> = finishes.iter().map(|f| ending_columns(f.end)).collect();
    let rows = sqlx::query(concat!(
        "UPDATE workflow_status SET status = v.v_status, output = v.v_output, \
         error = v.v_error, updated_at = $6 \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) \
         AS v(v_id, v_status, v_output, v_error, v_epoch) \
         WHERE workflow_status.workflow_id = v.v_id \
         AND workflow_status.status IN ('ENQUEUED', 'PENDING') \
         AND (v.v_epoch IS NULL OR workflow_status.epoch = v.v_epoch) RETURNING ",
        workflow_columns!()
    ))
    .bind(finishes.iter().map(|f| f.workflow_id).collect::<Vec<_>>())
    .bind(columns.iter().map(|c| c.0.as_str()).collect::<Vec<_>>())
    .bind(columns.iter().map(|c| c.1).collect::<Vec<_>>())
    .bind(columns.iter().map(|c| c.2).collect::<Vec<_>>())
    .bind(
        finishes
            .iter()
            .map(|f| f.epoch.map(epoch_value))
            .collect::<Vec<_>>(),
    )
    .bind(now_ms())
    .fetch_all(conn)
    .await?;
    Ok(records_by_id(&rows))
}
