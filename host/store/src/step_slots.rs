//! Step limits across hosts: a slot per running execution of a limited step, taken before
//! its body runs and given back when its outcome is recorded, so `concurrency` bounds the
//! executions running at once and `rate` the executions begun per window, over every host on
//! the database. A slot counts only while its workflow is PENDING under the epoch that took
//! it: a host that dies holding one frees it when the workflow is recovered or adopted.

use async_trait::async_trait;
use sqlx::{Encode, Executor, IntoArguments, Pool, Postgres, Sqlite, Type};

use super::contract::LimitStore;
use super::postgres::{PostgresStore, settle};
use super::rows::Columns;
use super::shared::Dialect;
use super::sqlite::{Alone, SqliteStore};
use super::{RateLimit, StoreError, now_ms};

/// A limited step's request for a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSlotRequest {
    /// The instance whose limit it is.
    pub instance: String,
    /// The step's name.
    pub step: String,
    /// The workflow that runs it.
    pub workflow_id: String,
    /// The epoch it runs under: the slot counts while the workflow still has it.
    pub epoch: u64,
    /// Most executions of the step running at once.
    pub concurrency: Option<u32>,
    /// Most executions begun per window.
    pub rate: Option<RateLimit>,
}

/// Counts the live slots of (instance, step): taken, not given back, and held by the epoch
/// their PENDING workflow still runs under.
macro_rules! held {
    () => {
        "SELECT count(*) FROM step_slots s JOIN workflow_status w \
         ON w.workflow_id = s.workflow_id AND w.epoch = s.epoch AND w.status = 'PENDING' \
         WHERE s.instance = $1 AND s.step = $2 AND s.released_at IS NULL"
    };
}

pub(super) trait StepSlots: Dialect
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
    /// Takes a slot if the limits leave one: its id, or `None`. The caller serialises takers
    /// of the same step (SQLite's single writer; Postgres's advisory lock).
    async fn take_step_slot(
        conn: &mut Self::Connection,
        request: &StepSlotRequest,
    ) -> Result<Option<i64>, StoreError> {
        let now = now_ms();
        let period = request.rate.map_or(0, |rate| rate.period_ms);
        // What no limit can count any more: given back or dead, and older than the window.
        sqlx::query(
            "DELETE FROM step_slots WHERE instance = $1 AND step = $2 AND taken_at < $3 \
             AND (released_at IS NOT NULL OR NOT EXISTS (SELECT 1 FROM workflow_status w \
             WHERE w.workflow_id = step_slots.workflow_id AND w.epoch = step_slots.epoch \
             AND w.status = 'PENDING'))",
        )
        .bind(request.instance.as_str())
        .bind(request.step.as_str())
        .bind(now - period)
        .execute(&mut *conn)
        .await?;
        let epoch = i64::try_from(request.epoch).unwrap_or(i64::MAX);
        let row = sqlx::query(concat!(
            "INSERT INTO step_slots (instance, step, workflow_id, epoch, taken_at) \
             SELECT $1, $2, $3, $4, $5 WHERE \
             coalesce((",
            held!(),
            ") < $6, TRUE) \
             AND coalesce((SELECT count(*) FROM step_slots \
                 WHERE instance = $1 AND step = $2 AND taken_at > $7) < $8, TRUE) \
             RETURNING slot"
        ))
        .bind(request.instance.as_str())
        .bind(request.step.as_str())
        .bind(request.workflow_id.as_str())
        .bind(epoch)
        .bind(now)
        .bind(request.concurrency.map(i64::from))
        .bind(now - period)
        .bind(request.rate.map(|rate| i64::from(rate.limit)))
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|row| row.int("step_slots", "slot")).transpose()
    }

    async fn release_step_slot(conn: &mut Self::Connection, slot: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE step_slots SET released_at = $2 WHERE slot = $1")
            .bind(slot)
            .bind(now_ms())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Whether a take would succeed now (a read: what a parked waiter polls).
    async fn step_slot_free(
        pool: &Pool<Self>,
        request: &StepSlotRequest,
    ) -> Result<bool, StoreError>
    where
        for<'c> &'c Pool<Self>: Executor<'c, Database = Self>,
    {
        let now = now_ms();
        let period = request.rate.map_or(0, |rate| rate.period_ms);
        let row = sqlx::query(concat!(
            "SELECT (",
            held!(),
            ") AS held, (SELECT count(*) FROM step_slots \
                 WHERE instance = $1 AND step = $2 AND taken_at > $3) AS recent"
        ))
        .bind(request.instance.as_str())
        .bind(request.step.as_str())
        .bind(now - period)
        .fetch_one(pool)
        .await?;
        let (held, recent) = (
            row.int("step_slots", "held")?,
            row.int("step_slots", "recent")?,
        );
        let room = request
            .concurrency
            .is_none_or(|most| held < i64::from(most));
        let pace = request
            .rate
            .is_none_or(|rate| recent < i64::from(rate.limit));
        Ok(room && pace)
    }
}

impl StepSlots for Sqlite {}
impl StepSlots for Postgres {}

#[async_trait]
impl LimitStore for SqliteStore {
    async fn take_step_slot(&self, request: &StepSlotRequest) -> Result<Option<i64>, StoreError> {
        let request = request.clone();
        self.run(Alone::Transaction, move |conn| {
            Box::pin(async move { Sqlite::take_step_slot(conn, &request).await })
        })
        .await
    }

    async fn release_step_slot(&self, slot: i64) -> Result<(), StoreError> {
        self.run(Alone::Autocommit, move |conn| {
            Box::pin(async move { Sqlite::release_step_slot(conn, slot).await })
        })
        .await
    }

    async fn step_slot_free(&self, request: &StepSlotRequest) -> Result<bool, StoreError> {
        Sqlite::step_slot_free(&self.reads, request).await
    }
}

#[async_trait]
impl LimitStore for PostgresStore {
    async fn take_step_slot(&self, request: &StepSlotRequest) -> Result<Option<i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Takers of one step take turns, each counting what the previous one committed.
        let locked = sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!(
                "reprise.step:{}/{}",
                request.instance, request.step
            ))
            .execute(&mut *tx)
            .await;
        let taken = match locked {
            Ok(_) => Postgres::take_step_slot(&mut tx, request).await,
            Err(err) => Err(err.into()),
        };
        settle(tx, taken).await
    }

    async fn release_step_slot(&self, slot: i64) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        Postgres::release_step_slot(&mut conn, slot).await
    }

    async fn step_slot_free(&self, request: &StepSlotRequest) -> Result<bool, StoreError> {
        Postgres::step_slot_free(&self.pool, request).await
    }
}
