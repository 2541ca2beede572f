//! Schedules as stored: a cron expression, the workflow it starts, and how far it has fired.
//! The statements are shared by both backends, as [`Dialect`]'s are.

use sqlx::{Encode, Executor, IntoArguments, Pool, Type};

use super::rows::Columns;
use super::shared::Dialect;
use super::{StoreError, now_ms};
pub use reprise_protocol::wire::CatchUp;

/// A schedule's row.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRecord {
    /// Its name, part of every firing's workflow id.
    pub name: String,
    /// The cron expression (with seconds, UTC).
    pub cron: String,
    /// The workflow each firing starts.
    pub workflow: String,
    /// The instance it runs on.
    pub instance: String,
    /// JSON text of the input each firing gets.
    pub input: String,
    /// The queue each firing is enqueued on, if any.
    pub queue: Option<String>,
    /// What happens to firings missed while no host ran.
    pub catch_up: CatchUp,
    /// Paused schedules do not fire (a trigger or a backfill still does).
    pub paused: bool,
    /// The scheduled time of its latest firing (ms).
    pub last_fired: Option<i64>,
    /// When it was added (ms): the first firing is the expression's first time after it.
    pub created_at: i64,
}

const COLUMNS: &str =
    "name, cron, workflow, instance, input, queue_name, catch_up, paused, last_fired, created_at";

fn schedule_from_row(row: &impl Columns) -> Result<ScheduleRecord, StoreError> {
    const T: &str = "schedules";
    let catch_up = row.text(T, "catch_up")?;
    Ok(ScheduleRecord {
        name: row.text(T, "name")?,
        cron: row.text(T, "cron")?,
        workflow: row.text(T, "workflow")?,
        instance: row.text(T, "instance")?,
        input: row.text(T, "input")?,
        queue: row.opt_text(T, "queue_name")?,
        catch_up: catch_up
            .parse()
            .map_err(|message| StoreError::Corrupt { table: T, message })?,
        paused: row.int(T, "paused")? != 0,
        last_fired: row.opt_int(T, "last_fired")?,
        created_at: row.int(T, "created_at")?,
    })
}

pub(super) trait Schedules: Dialect
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
    /// Adds a schedule; returns false when one of that name exists. With `replace`, an
    /// existing one takes the new definition and keeps its pause and its last firing.
    async fn put_schedule(
        conn: &mut Self::Connection,
        schedule: &ScheduleRecord,
        replace: bool,
    ) -> Result<bool, StoreError> {
        let query = if replace {
            sqlx::query(
                "INSERT INTO schedules (name, cron, workflow, instance, input, queue_name, \
                 catch_up, paused, last_fired, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                 ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, \
                 workflow = excluded.workflow, instance = excluded.instance, \
                 input = excluded.input, queue_name = excluded.queue_name, \
                 catch_up = excluded.catch_up, updated_at = excluded.updated_at RETURNING name",
            )
        } else {
            sqlx::query(
                "INSERT INTO schedules (name, cron, workflow, instance, input, queue_name, \
                 catch_up, paused, last_fired, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                 ON CONFLICT (name) DO NOTHING RETURNING name",
            )
        };
        let rows = query
            .bind(schedule.name.as_str())
            .bind(schedule.cron.as_str())
            .bind(schedule.workflow.as_str())
            .bind(schedule.instance.as_str())
            .bind(schedule.input.as_str())
            .bind(schedule.queue.as_deref())
            .bind(schedule.catch_up.as_str())
            .bind(i64::from(schedule.paused))
            .bind(schedule.last_fired)
            .bind(now_ms())
            .fetch_all(conn)
            .await?;
        Ok(!rows.is_empty())
    }

    /// Every schedule, by name; `name` picks one.
    async fn schedules(
        pool: &Pool<Self>,
        name: Option<&str>,
    ) -> Result<Vec<ScheduleRecord>, StoreError> {
        let mut query = sqlx::QueryBuilder::<Self>::new("SELECT ");
        query.push(COLUMNS).push(" FROM schedules");
        if let Some(name) = name {
            query.push(" WHERE name = ").push_bind(name.to_owned());
        }
        query.push(" ORDER BY name");
        let rows = query.build().fetch_all(pool).await?;
        rows.iter().map(schedule_from_row).collect()
    }

    /// Pauses or resumes a schedule; false when there is none of that name.
    async fn pause_schedule(
        conn: &mut Self::Connection,
        name: &str,
        paused: bool,
    ) -> Result<bool, StoreError> {
        let rows = sqlx::query(
            "UPDATE schedules SET paused = $1, updated_at = $2 WHERE name = $3 RETURNING name",
        )
        .bind(i64::from(paused))
        .bind(now_ms())
        .bind(name)
        .fetch_all(conn)
        .await?;
        Ok(!rows.is_empty())
    }

    /// Deletes a schedule (its firings' workflows stay); false when there is none.
    async fn delete_schedule(conn: &mut Self::Connection, name: &str) -> Result<bool, StoreError> {
        let rows = sqlx::query("DELETE FROM schedules WHERE name = $1 RETURNING name")
            .bind(name)
            .fetch_all(conn)
            .await?;
        Ok(!rows.is_empty())
    }

    /// Moves a schedule's last firing forward to `fired` (never back).
    async fn advance_schedule(
        conn: &mut Self::Connection,
        name: &str,
        fired: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE schedules SET last_fired = $1, updated_at = $2 \
             WHERE name = $3 AND (last_fired IS NULL OR last_fired < $1)",
        )
        .bind(fired)
        .bind(now_ms())
        .bind(name)
        .execute(conn)
        .await?;
        Ok(())
    }
}
