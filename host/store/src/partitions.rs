//! Partitioned queues' dispatch, written once for both backends: a partitioned queue's
//! concurrency and rate limits hold per partition key, and each claim takes the partitions in
//! turn (the first of each, then the second of each, …), so a tenant that floods the queue
//! waits behind its own work, not in front of everyone else's.

use sqlx::{Encode, Executor, IntoArguments, Type};

use super::rows::Columns;
use super::shared::{Dialect, in_dispatch_order, workflow_columns};
use super::written::first_deadline;
use super::{QueueClaim, StoreError, WorkflowRecord, now_ms};

pub(super) trait Partitions: Dialect
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
    /// The column that gives rows their insertion order (Postgres's `seq`, SQLite's `rowid`),
    /// as `claim_order` for [`in_dispatch_order`].
    const CLAIM_ORDER: &'static str;

    /// Claims up to `claim.max` of a partitioned queue's ENQUEUED workflows, partitions in
    /// turn, each partition within `claim.concurrency` (its PENDING ones count) and
    /// `claim.rate_limit` (its starts in the window). Claimers of one queue must not run this
    /// at once (SQLite's writer is alone; Postgres takes the queue's advisory lock first).
    async fn claim_partitioned(
        conn: &mut Self::Connection,
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
        // `turn` numbers each partition's waiting workflows in dispatch order; a partition
        // with n running may start those whose turn is within its limit minus n.
        let mut update = sqlx::QueryBuilder::<Self>::new(concat!(
            "UPDATE workflow_status SET status = 'PENDING', executor_id = $2, executions = 1, \
             epoch = epoch + 1, started_at = $3, updated_at = $3, deadline_at = ",
            first_deadline!("$3"),
            " WHERE workflow_id IN (SELECT c.workflow_id FROM (\
                 SELECT workflow_id, priority, created_at, coalesce(partition_key, '') AS part, \
                     row_number() OVER (PARTITION BY coalesce(partition_key, '') \
                         ORDER BY priority, created_at, workflow_id) AS turn \
                 FROM workflow_status WHERE queue_name = $1 AND status = 'ENQUEUED' \
                 AND (not_before IS NULL OR not_before <= $3)) AS c \
             LEFT JOIN (SELECT coalesce(partition_key, '') AS part, count(*) AS n \
                 FROM workflow_status WHERE queue_name = $1 AND status = 'PENDING' \
                 GROUP BY coalesce(partition_key, '')) AS r ON r.part = c.part \
             LEFT JOIN (SELECT coalesce(partition_key, '') AS part, count(*) AS n \
                 FROM workflow_status WHERE queue_name = $1 AND started_at >= $6 \
                 GROUP BY coalesce(partition_key, '')) AS s ON s.part = c.part \
             WHERE ($4 IS NULL OR c.turn <= $4 - coalesce(r.n, 0)) \
             AND ($5 IS NULL OR c.turn <= $5 - coalesce(s.n, 0)) \
             ORDER BY c.turn, c.priority, c.created_at LIMIT $7) RETURNING "
        ));
        update
            .push(Self::CLAIM_ORDER)
            .push(concat!(" AS claim_order, ", workflow_columns!()));
        let rows = update
            .build()
            .bind(claim.queue.as_str())
            .bind(claim.executor_id.as_str())
            .bind(now)
            .bind(claim.concurrency.map(i64::from))
            .bind(rate_limit)
            .bind(window_start)
            .bind(i64::from(claim.max))
            .fetch_all(conn)
            .await?;
        in_dispatch_order(&rows)
    }
}
