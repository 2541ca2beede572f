//! What Postgres itself does for the many-executors figures: the floor (one single-row INSERT
//! committed alone, a durable commit of the same size as a step's), and, around a run, the
//! transactions, tuples fetched, WAL bytes and HOT updates of `workflow_status` it took, read
//! from Postgres's own statistics.

use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::{Connection, PgPool};

/// Postgres's cumulative counters at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counters {
    transactions: i64,
    tuples_fetched: i64,
    wal_bytes: i64,
    updates: i64,
    hot_updates: i64,
}

/// What a run cost Postgres, per workflow.
#[derive(Debug, Serialize)]
pub(super) struct PerWorkflow {
    pub(super) transactions: f64,
    pub(super) tuples_fetched: f64,
    pub(super) wal_bytes: f64,
    /// Updates of `workflow_status` that were HOT (no index touched), of all its updates.
    pub(super) hot_update_share: f64,
}

/// Reads the counters. Backends report theirs when their transactions end (and at most once
/// a second), so the caller waits [`STATS_SETTLE`] after a run before reading.
pub(super) async fn counters(pool: &PgPool) -> anyhow::Result<Counters> {
    let db = sqlx::query(
        "SELECT (xact_commit + xact_rollback)::bigint AS transactions, \
         tup_fetched::bigint AS fetched FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await?;
    let wal = sqlx::query("SELECT wal_bytes::bigint AS bytes FROM pg_stat_wal")
        .fetch_one(pool)
        .await?;
    let table = sqlx::query(
        "SELECT coalesce(sum(n_tup_upd), 0)::bigint AS upd, \
         coalesce(sum(n_tup_hot_upd), 0)::bigint AS hot \
         FROM pg_stat_user_tables WHERE relname = 'workflow_status'",
    )
    .fetch_one(pool)
    .await?;
    Ok(Counters {
        transactions: db.try_get("transactions")?,
        tuples_fetched: db.try_get("fetched")?,
        wal_bytes: wal.try_get("bytes")?,
        updates: table.try_get("upd")?,
        hot_updates: table.try_get("hot")?,
    })
}

impl Counters {
    /// What happened between `self` and `later`, per workflow of `workflows`.
    pub(super) fn per_workflow(self, later: Counters, workflows: usize) -> PerWorkflow {
        let n = workflows.max(1) as f64;
        let updates = (later.updates - self.updates).max(1) as f64;
        PerWorkflow {
            transactions: (later.transactions - self.transactions) as f64 / n,
            tuples_fetched: (later.tuples_fetched - self.tuples_fetched) as f64 / n,
            wal_bytes: (later.wal_bytes - self.wal_bytes) as f64 / n,
            hot_update_share: (later.hot_updates - self.hot_updates) as f64 / updates,
        }
    }
}

/// A pool on `url` for the statistics.
pub(super) async fn pool(url: &str) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new().max_connections(1).connect(url).await?)
}

/// Mean microseconds of `n` single-row INSERTs, each committed alone (one round trip and one
/// flushed commit), on a table of its own that is dropped after.
pub(super) async fn raw_commit_us(url: &str, n: u32) -> anyhow::Result<f64> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query("DROP TABLE IF EXISTS reprise_bench_floor")
        .execute(&mut conn)
        .await?;
    sqlx::query("CREATE TABLE reprise_bench_floor (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&mut conn)
        .await?;
    let body = "x".repeat(200);
    let start = Instant::now();
    for i in 0..n {
        sqlx::query("INSERT INTO reprise_bench_floor (id, body) VALUES ($1, $2)")
            .bind(i64::from(i))
            .bind(body.as_str())
            .execute(&mut conn)
            .await?;
    }
    let elapsed = start.elapsed();
    sqlx::query("DROP TABLE reprise_bench_floor")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(elapsed.as_secs_f64() * 1e6 / f64::from(n.max(1)))
}

/// How long backends may hold their statistics before reporting them. A backend reports at
/// most once a second; one that goes idle within that second reports 10 s later (Postgres's
/// `PGSTAT_IDLE_INTERVAL`). A run that fits in that second — one busy connection writing
/// every flush — was reported as nothing at all after the 1.5 s once waited here.
pub(super) const STATS_SETTLE: Duration = Duration::from_secs(11);
