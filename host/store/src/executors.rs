//! Executors as stored: each running host's lease, renewed while it lives, and how many
//! workflows it owns. The statements are shared by both backends, as [`Dialect`]'s are.

use sqlx::{Encode, Executor, IntoArguments, Pool, QueryBuilder, Type};

use super::rows::{Columns, workflow_from_row};
use super::shared::{Dialect, workflow_columns};
use super::{StoreError, WorkflowRecord, now_ms};

/// An executor's lease and what it owns, as `reprise executors` and `/healthz` show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorRecord {
    /// Its id, the `executor_id` of the workflows it owns.
    pub executor_id: String,
    /// When its current process first took the lease (ms).
    pub started_at: i64,
    /// When it last renewed the lease (ms).
    pub renewed_at: i64,
    /// How long a lease lasts unrenewed (ms).
    pub lease_ms: i64,
    /// Its `PENDING` workflows: the work that is lost with it until someone recovers it.
    pub pending: u64,
}

/// What the adoption loop asks of [`DispatchStore::executors`](crate::DispatchStore::executors):
/// leases run out at `now`, and, when `orphans`, executors that never took one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lapsed {
    /// The moment leases are judged at (ms).
    pub now: i64,
    /// Whether to look for PENDING work of executors without a lease (a scan of every PENDING
    /// workflow).
    pub orphans: bool,
}

impl ExecutorRecord {
    /// Whether its lease ran out at `now` (ms): presumed dead.
    pub fn expired(&self, now: i64) -> bool {
        now - self.renewed_at > self.lease_ms
    }
}

pub(super) trait Executors: Dialect
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
    /// Takes or renews `executor_id`'s lease; `started_at` is when this process took it.
    async fn renew_lease(
        conn: &mut Self::Connection,
        executor_id: &str,
        started_at: i64,
        lease_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO executors (executor_id, started_at, renewed_at, lease_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (executor_id) DO UPDATE SET \
             started_at = excluded.started_at, renewed_at = excluded.renewed_at, \
             lease_ms = excluded.lease_ms",
        )
        .bind(executor_id)
        .bind(started_at)
        .bind(now_ms())
        .bind(lease_ms)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Takes up to `max` of `dead`'s PENDING workflows (all, or just `only`), oldest first,
    /// for `adopter`, if `dead`'s lease has run out or it never held one (checked in the same
    /// statement, so an executor that came back keeps its work). Each taken workflow gets a new
    /// epoch: writes still coming from `dead` are refused from this commit on.
    async fn adopt_workflows(
        conn: &mut Self::Connection,
        dead: &str,
        adopter: &str,
        max: u32,
        only: Option<&str>,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        let mut update = QueryBuilder::<Self>::new(
            "UPDATE workflow_status SET executor_id = $2, epoch = epoch + 1, updated_at = $3 \
             WHERE workflow_id IN (SELECT workflow_id FROM workflow_status \
                 WHERE executor_id = $1 AND executor_id <> $2 AND status = 'PENDING' \
                 AND ($5 IS NULL OR workflow_id = $5) AND NOT EXISTS (SELECT 1 \
                     FROM executors WHERE executor_id = $1 AND renewed_at + lease_ms >= $3) \
                 ORDER BY created_at LIMIT $4",
        );
        update
            .push(Self::SKIP_LOCKED)
            .push(concat!(") RETURNING ", workflow_columns!()));
        let rows = update
            .build()
            .bind(dead)
            .bind(adopter)
            .bind(now_ms())
            .bind(i64::from(max))
            .bind(only)
            .fetch_all(conn)
            .await?;
        let mut adopted = rows
            .iter()
            .map(workflow_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        adopted.sort_by_key(|w| w.created_at);
        Ok(adopted)
    }

    /// Every executor that ever took a lease, by id, with its `PENDING` workflows, and every
    /// executor that owns PENDING workflows without ever having taken one (a lease of 0 ms
    /// renewed at 0: long expired, so its work is adopted). With `lapsed`, PENDING work is
    /// counted only for leases run out at its `now`, and executors without a lease are looked
    /// for only when it asks: what the adoption loop needs, without counting every workflow
    /// a live host has parked each time it looks.
    async fn executors(
        pool: &Pool<Self>,
        lapsed: Option<Lapsed>,
    ) -> Result<Vec<ExecutorRecord>, StoreError> {
        const T: &str = "executors";
        const PENDING: &str = "(SELECT COUNT(*) FROM workflow_status w \
              WHERE w.executor_id = e.executor_id AND w.status = 'PENDING')";
        const ORPHANS: &str = " UNION ALL \
             SELECT w.executor_id, 0, 0, 0, COUNT(*) FROM workflow_status w \
             WHERE w.status = 'PENDING' AND NOT EXISTS \
                 (SELECT 1 FROM executors e WHERE e.executor_id = w.executor_id) \
             GROUP BY w.executor_id";
        let (pending, orphans, now) = match lapsed {
            None => (PENDING.to_owned(), ORPHANS, 0),
            Some(lapsed) => (
                format!("CASE WHEN $1 - e.renewed_at > e.lease_ms THEN {PENDING} ELSE 0 END"),
                if lapsed.orphans { ORPHANS } else { "" },
                lapsed.now,
            ),
        };
        let sql = format!(
            "SELECT e.executor_id, e.started_at, e.renewed_at, e.lease_ms, {pending} AS pending \
             FROM executors e{orphans} ORDER BY 1"
        );
        // Built from the constants above only.
        let query = sqlx::query(sqlx::AssertSqlSafe(sql));
        let query = if lapsed.is_some() {
            query.bind(now)
        } else {
            query
        };
        let rows = query.fetch_all(pool).await?;
        rows.iter()
            .map(|row| {
                let pending = row.int(T, "pending")?;
                Ok(ExecutorRecord {
                    executor_id: row.text(T, "executor_id")?,
                    started_at: row.int(T, "started_at")?,
                    renewed_at: row.int(T, "renewed_at")?,
                    lease_ms: row.int(T, "lease_ms")?,
                    pending: u64::try_from(pending).unwrap_or(0),
                })
            })
            .collect()
    }
}
