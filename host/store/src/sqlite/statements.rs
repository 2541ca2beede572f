//! The statements a single SQLite request runs that the shared dialect does not: the
//! one-statement queue claim and the fork kept whole by a savepoint.

use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;

use super::request::BoxFuture;
use crate::shared::{in_dispatch_order, workflow_columns};
use crate::written::first_deadline;
use crate::{QueueClaim, StoreError, WorkflowRecord, now_ms};

/// Dispatches queued workflows in one statement, so it is atomic even in autocommit mode: an
/// UPDATE takes the write lock before it reads, which serialises claimers across processes.
pub(super) async fn claim_queued(
    conn: &mut SqliteConnection,
    claim: &QueueClaim,
) -> Result<Vec<WorkflowRecord>, StoreError> {
    let now = now_ms();
    let (rate_limit, window_start) = match claim.rate_limit {
        Some(rate) => (
            Some(i64::from(rate.limit)),
            now.saturating_sub(rate.period_ms),
        ),
        None => (None, now),
    };
    // The LIMIT is the number of free slots: local ones, the queue's global concurrency left
    // (PENDING rows count against it) and its rate limit left (starts in the window); a NULL
    // limit falls back to `max`, and `max(0, …)` keeps a full queue from meaning "no limit" (a
    // negative LIMIT). The dispatch index yields rows already in priority, then FIFO order.
    let rows = sqlx::query(concat!(
        "UPDATE workflow_status SET status = 'PENDING', executor_id = $2, executions = 1, epoch = epoch + 1, \
         started_at = $3, updated_at = $3, deadline_at = ",
        first_deadline!("$3"),
        " WHERE rowid IN (SELECT rowid FROM workflow_status \
             WHERE queue_name = $1 AND status = 'ENQUEUED' \
             AND (not_before IS NULL OR not_before <= $3) \
             ORDER BY priority, created_at, rowid \
             LIMIT max(0, min($4, \
                 coalesce($5 - (SELECT count(*) FROM workflow_status \
                     WHERE queue_name = $1 AND status = 'PENDING'), $4), \
                 coalesce($6 - (SELECT count(*) FROM workflow_status \
                     WHERE queue_name = $1 AND started_at >= $7), $4)))) \
         RETURNING rowid AS claim_order, ",
        workflow_columns!()
    ))
    .bind(claim.queue.as_str())
    .bind(claim.executor_id.as_str())
    .bind(now)
    .bind(i64::from(claim.max))
    .bind(claim.concurrency.map(i64::from))
    .bind(rate_limit)
    .bind(window_start)
    .fetch_all(conn)
    .await?;
    let claimed = in_dispatch_order(&rows)?;
    if !claimed.is_empty() {
        tracing::debug!(
            queue = claim.queue,
            count = claimed.len(),
            "claimed queued workflows"
        );
    }
    Ok(claimed)
}

/// A change of several statements (a fork, an upgrade) inside a savepoint: the writer runs
/// it in a transaction (see `Request::needs_transaction`), and the savepoint also undoes a
/// half-done change when a later request of the batch commits.
pub(crate) async fn in_savepoint<T>(
    conn: &mut SqliteConnection,
    work: impl for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let mut savepoint = conn.begin().await?;
    match work(&mut savepoint).await {
        Ok(done) => {
            savepoint.commit().await?;
            Ok(done)
        }
        Err(err) => {
            if let Err(rollback) = savepoint.rollback().await {
                tracing::debug!(error = %rollback, "rollback of a failed change");
            }
            Err(err)
        }
    }
}
