//! The SQL of messages, events and streams, written once for both backends like [`Dialect`]'s.
//!
//! A write that a workflow makes from its code carries the position it is recorded at: the
//! write and the record commit together (SQLite runs them in a savepoint of its writer's
//! transaction, Postgres in a transaction of their own), so a replay never sends, consumes or
//! appends twice, and a message consumed is one recorded.

use sqlx::{Encode, Executor, IntoArguments, Pool, Type};

use super::rows::{Columns, to_u32, to_u64, workflow_from_row};
use super::shared::{Dialect, workflow_columns};
use super::waits::{
    Change, EventRecord, MessageRecord, NewMessage, StreamEntry, StreamInfo, StreamRead, Waited,
};
use super::written::StepRow;
use super::{StoreError, WorkflowRecord, now_ms};

/// A foreign key names the workflow a row belongs to: a violation means it does not exist.
fn unknown_workflow_or(err: sqlx::Error, workflow_id: &str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation => {
            StoreError::UnknownWorkflow(workflow_id.to_owned())
        }
        _ => StoreError::from(err),
    }
}

fn corrupt(table: &'static str, message: String) -> StoreError {
    StoreError::Corrupt { table, message }
}

pub(super) trait Waits: Dialect
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
    /// Starts delayed workflows of no queue whose time has come (see `Store::claim_due`).
    async fn claim_due(
        conn: &mut Self::Connection,
        executor_id: &str,
        max: u32,
        only: Option<&str>,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        let mut query = sqlx::QueryBuilder::<Self>::new(
            "UPDATE workflow_status SET status = 'PENDING', executions = 1, epoch = epoch + 1, \
             executor_id = ",
        );
        let now = now_ms();
        query
            .push_bind(executor_id.to_owned())
            .push(", started_at = ")
            .push_bind(now)
            .push(", updated_at = ")
            .push_bind(now)
            // The deadline its timeout gives from now, as `first_deadline!` writes it.
            .push(
                ", deadline_at = CASE WHEN timeout_ms IS NULL THEN deadline_at \
                 WHEN deadline_at IS NOT NULL AND deadline_at < ",
            )
            .push_bind(now)
            .push(" + timeout_ms THEN deadline_at ELSE ")
            .push_bind(now)
            .push(" + timeout_ms END")
            .push(
                " WHERE status = 'ENQUEUED' AND workflow_id IN (SELECT workflow_id \
                 FROM workflow_status WHERE status = 'ENQUEUED' AND queue_name IS NULL \
                 AND not_before <= ",
            )
            .push_bind(now);
        if let Some(id) = only {
            query.push(" AND workflow_id = ").push_bind(id.to_owned());
        }
        query
            .push(" ORDER BY not_before LIMIT ")
            .push_bind(i64::from(max))
            .push(Self::SKIP_LOCKED)
            .push(concat!(") RETURNING ", workflow_columns!()));
        let rows = query.build().fetch_all(conn).await?;
        let mut claimed = rows
            .iter()
            .map(workflow_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|w| w.not_before);
        Ok(claimed)
    }

    /// The earliest `not_before` of a delayed workflow of no queue.
    async fn next_due(pool: &Pool<Self>) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT min(not_before) AS due FROM workflow_status \
             WHERE status = 'ENQUEUED' AND queue_name IS NULL",
        )
        .fetch_one(pool)
        .await?;
        row.opt_int("workflow_status", "due")
    }

    /// Cancels an active workflow with `reason` as its error; returns its row either way.
    async fn expire_workflow(
        conn: &mut Self::Connection,
        workflow_id: &str,
        reason: &str,
    ) -> Result<WorkflowRecord, StoreError> {
        let rows = sqlx::query(concat!(
            "UPDATE workflow_status SET status = 'CANCELLED', error = $1, updated_at = $2 \
             WHERE workflow_id = $3 AND status IN ('ENQUEUED', 'PENDING', 'PAUSED') RETURNING ",
            workflow_columns!()
        ))
        .bind(reason)
        .bind(now_ms())
        .bind(workflow_id)
        .fetch_all(&mut *conn)
        .await?;
        if let Some(row) = rows.first() {
            return workflow_from_row(row);
        }
        Self::select_workflow(conn, workflow_id)
            .await?
            .ok_or_else(|| StoreError::UnknownWorkflow(workflow_id.to_owned()))
    }

    /// Tells other processes of `change` when the transaction commits: Postgres's `NOTIFY`;
    /// nothing on SQLite, whose other processes poll.
    async fn announce(_conn: &mut Self::Connection, _change: &Change) -> Result<(), StoreError> {
        Ok(())
    }

    /// What every write from workflow code ends with: its step record (a replay finds it and
    /// writes nothing again), and the change told to other processes.
    async fn remember(
        conn: &mut Self::Connection,
        record: Option<&StepRow>,
        change: Change,
    ) -> Result<(), StoreError> {
        if let Some(record) = record {
            Self::record_step(&mut *conn, record).await?;
        }
        Self::announce(conn, &change).await
    }

    /// Stores a message unless one with its id was stored for its destination; returns
    /// whether it is new. An unknown destination is [`StoreError::UnknownWorkflow`].
    async fn send_message(
        conn: &mut Self::Connection,
        message: &NewMessage,
        record: Option<&StepRow>,
    ) -> Result<bool, StoreError> {
        let rows = sqlx::query(
            "INSERT INTO notifications (destination_id, topic, message, message_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (destination_id, message_id) DO NOTHING RETURNING seq",
        )
        .bind(message.destination_id.as_str())
        .bind(message.topic.as_str())
        .bind(message.message.as_str())
        .bind(message.message_id.as_str())
        .bind(now_ms())
        .fetch_all(&mut *conn)
        .await
        .map_err(|err| unknown_workflow_or(err, &message.destination_id))?;
        let change = Change::Message {
            workflow_id: message.destination_id.clone(),
            topic: message.topic.clone(),
        };
        Self::remember(conn, record, change).await?;
        Ok(!rows.is_empty())
    }

    /// Consumes the oldest message of the workflow's topic and records it at `at`; with none,
    /// records the timeout at `at` when `timed_out`, and nothing otherwise.
    async fn receive_message(
        conn: &mut Self::Connection,
        workflow_id: &str,
        topic: &str,
        at: &StepRow,
        timed_out: bool,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "UPDATE notifications SET consumed_at = $1, consumed_by = $2 WHERE seq = ( \
               SELECT seq FROM notifications \
               WHERE destination_id = $3 AND topic = $4 AND consumed_at IS NULL \
               ORDER BY seq LIMIT 1) \
             RETURNING message",
        )
        .bind(now_ms())
        .bind(i64::from(at.function_id))
        .bind(workflow_id)
        .bind(topic)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .next();
        let message = row
            .map(|row| row.text("notifications", "message"))
            .transpose()?;
        let output = match &message {
            Some(text) => Waited::value_text(text).map_err(|e| {
                corrupt(
                    "notifications",
                    format!("a message to {workflow_id} is not JSON: {e}"),
                )
            })?,
            None if timed_out => Waited::timed_out_text(),
            None => return Ok(None),
        };
        let record = StepRow {
            output: Some(output),
            ..at.clone()
        };
        Self::record_step(conn, &record).await?;
        Ok(message)
    }

    /// Sets an event of a workflow to `value` (JSON text), recorded at `record` if given.
    async fn set_event(
        conn: &mut Self::Connection,
        workflow_id: &str,
        key: &str,
        value: &str,
        record: Option<&StepRow>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO workflow_events (workflow_id, key, value, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (workflow_id, key) \
             DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(workflow_id)
        .bind(key)
        .bind(value)
        .bind(now_ms())
        .execute(&mut *conn)
        .await
        .map_err(|err| unknown_workflow_or(err, workflow_id))?;
        let change = Change::Event {
            workflow_id: workflow_id.to_owned(),
            key: key.to_owned(),
        };
        Self::remember(conn, record, change).await
    }

    /// Appends `value` to a stream (`None` closes it) and returns its offset; a closed stream
    /// takes nothing more ([`StoreError::StreamClosed`]).
    async fn write_stream(
        conn: &mut Self::Connection,
        workflow_id: &str,
        key: &str,
        value: Option<&str>,
        record: Option<&StepRow>,
    ) -> Result<u64, StoreError> {
        const T: &str = "streams";
        // The last row, by the primary key: a closing row is always the last.
        let last = sqlx::query(
            "SELECT position, value FROM streams WHERE workflow_id = $1 AND key = $2 \
             ORDER BY position DESC LIMIT 1",
        )
        .bind(workflow_id)
        .bind(key)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .next();
        let position = match last {
            Some(row) if row.opt_text(T, "value")?.is_none() => {
                return Err(StoreError::StreamClosed {
                    workflow_id: workflow_id.to_owned(),
                    key: key.to_owned(),
                });
            }
            Some(row) => row.int(T, "position")? + 1,
            None => 0,
        };
        sqlx::query(
            "INSERT INTO streams (workflow_id, key, position, value, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(workflow_id)
        .bind(key)
        .bind(position)
        .bind(value)
        .bind(now_ms())
        .execute(&mut *conn)
        .await
        .map_err(|err| unknown_workflow_or(err, workflow_id))?;
        let change = Change::Stream {
            workflow_id: workflow_id.to_owned(),
            key: key.to_owned(),
        };
        Self::remember(conn, record, change).await?;
        to_u64(position, T, "position")
    }

    /// See `MailboxStore::workflow_version`.
    async fn workflow_version(
        pool: &Pool<Self>,
        workflow_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT app_version FROM workflow_status WHERE workflow_id = $1")
            .bind(workflow_id)
            .fetch_optional(pool)
            .await?;
        row.map(|row| row.text("workflow_status", "app_version"))
            .transpose()
    }

    /// Whether a message waits unconsumed on the workflow's topic.
    async fn has_message(
        pool: &Pool<Self>,
        workflow_id: &str,
        topic: &str,
    ) -> Result<bool, StoreError> {
        let rows = sqlx::query(
            "SELECT seq FROM notifications \
             WHERE destination_id = $1 AND topic = $2 AND consumed_at IS NULL LIMIT 1",
        )
        .bind(workflow_id)
        .bind(topic)
        .fetch_all(pool)
        .await?;
        Ok(!rows.is_empty())
    }

    /// Every message sent to a workflow, in send order.
    async fn messages(
        pool: &Pool<Self>,
        workflow_id: &str,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        const T: &str = "notifications";
        let rows = sqlx::query(
            "SELECT seq, destination_id, topic, message, message_id, created_at, consumed_at, \
             consumed_by FROM notifications WHERE destination_id = $1 ORDER BY seq",
        )
        .bind(workflow_id)
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(MessageRecord {
                    seq: row.int(T, "seq")?,
                    destination_id: row.text(T, "destination_id")?,
                    topic: row.text(T, "topic")?,
                    message: row.text(T, "message")?,
                    message_id: row.text(T, "message_id")?,
                    created_at: row.int(T, "created_at")?,
                    consumed_at: row.opt_int(T, "consumed_at")?,
                    consumed_by: row
                        .opt_int(T, "consumed_by")?
                        .map(|p| to_u32(p, T, "consumed_by"))
                        .transpose()?,
                })
            })
            .collect()
    }

    /// A workflow's events, by key; `key` picks one.
    async fn events(
        pool: &Pool<Self>,
        workflow_id: &str,
        key: Option<&str>,
    ) -> Result<Vec<EventRecord>, StoreError> {
        const T: &str = "workflow_events";
        let rows = sqlx::query(
            "SELECT workflow_id, key, value, updated_at FROM workflow_events \
             WHERE workflow_id = $1 AND ($2 IS NULL OR key = $2) ORDER BY key",
        )
        .bind(workflow_id)
        .bind(key)
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(EventRecord {
                    workflow_id: row.text(T, "workflow_id")?,
                    key: row.text(T, "key")?,
                    value: row.text(T, "value")?,
                    updated_at: row.int(T, "updated_at")?,
                })
            })
            .collect()
    }

    /// Up to `max` values of a stream from `offset`, and whether none will follow them.
    async fn read_stream(
        pool: &Pool<Self>,
        workflow_id: &str,
        key: &str,
        offset: u64,
        max: u32,
    ) -> Result<StreamRead, StoreError> {
        const T: &str = "streams";
        // The status first: a workflow that has ended wrote all it ever will before that.
        let ended = Self::get_workflow(pool, workflow_id)
            .await?
            .ok_or_else(|| StoreError::UnknownWorkflow(workflow_id.to_owned()))?
            .status
            .is_terminal();
        let rows = sqlx::query(
            "SELECT position, value, created_at FROM streams \
             WHERE workflow_id = $1 AND key = $2 AND position >= $3 ORDER BY position LIMIT $4",
        )
        .bind(workflow_id)
        .bind(key)
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .bind(i64::from(max))
        .fetch_all(pool)
        .await?;
        let mut read = StreamRead {
            entries: Vec::with_capacity(rows.len()),
            closed: false,
        };
        for row in &rows {
            match row.opt_text(T, "value")? {
                Some(value) => read.entries.push(StreamEntry {
                    offset: to_u64(row.int(T, "position")?, T, "position")?,
                    value,
                    created_at: row.int(T, "created_at")?,
                }),
                None => read.closed = true,
            }
        }
        if rows.len() < max as usize {
            read.closed |= ended;
        }
        Ok(read)
    }

    /// A workflow's streams, by key.
    async fn streams(pool: &Pool<Self>, workflow_id: &str) -> Result<Vec<StreamInfo>, StoreError> {
        const T: &str = "streams";
        // As a read says: a stream of a workflow that has ended is closed, closed or not.
        let ended = Self::get_workflow(pool, workflow_id)
            .await?
            .is_some_and(|workflow| workflow.status.is_terminal());
        let rows = sqlx::query(
            "SELECT key, count(value) AS written, count(*) - count(value) AS closes \
             FROM streams WHERE workflow_id = $1 GROUP BY key ORDER BY key",
        )
        .bind(workflow_id)
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StreamInfo {
                    key: row.text(T, "key")?,
                    values: to_u64(row.int(T, "written")?, T, "written")?,
                    closed: ended || row.int(T, "closes")? > 0,
                })
            })
            .collect()
    }

    /// Bytes a workflow holds in the messages it sent (their ids start `<id>#`), its events'
    /// values and its streams.
    async fn bytes_held(pool: &Pool<Self>, workflow_id: &str) -> Result<u64, StoreError> {
        const T: &str = "notifications";
        let ((open, close), bytewise) = (Self::BYTES_OF, Self::BYTEWISE);
        let sql = format!(
            "SELECT (SELECT COALESCE(SUM({open}message{close}), 0) FROM notifications \
                     WHERE message_id{bytewise} >= $1 AND message_id{bytewise} < $2) \
                  + (SELECT COALESCE(SUM({open}value{close}), 0) FROM workflow_events \
                     WHERE workflow_id = $3) \
                  + (SELECT COALESCE(SUM({open}value{close}), 0) FROM streams \
                     WHERE workflow_id = $3) AS held"
        );
        // `$` follows `#`: the range holds exactly the ids that start `<id>#`.
        // Only the dialect's own constants are spliced in.
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(format!("{workflow_id}#"))
            .bind(format!("{workflow_id}$"))
            .bind(workflow_id)
            .fetch_one(pool)
            .await?;
        to_u64(row.int(T, "held")?, T, "held")
    }

    /// What was sent, set or written since `since` (ms), for waiters in other processes.
    async fn changes_since(pool: &Pool<Self>, since: i64) -> Result<Vec<Change>, StoreError> {
        const T: &str = "notifications";
        let rows = sqlx::query(
            "SELECT 'm' AS kind, destination_id AS workflow_id, topic AS key FROM notifications \
               WHERE consumed_at IS NULL AND created_at >= $1 \
             UNION SELECT 'e', workflow_id, key FROM workflow_events WHERE updated_at >= $1 \
             UNION SELECT 's', workflow_id, key FROM streams WHERE created_at >= $1",
        )
        .bind(since)
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|row| {
                let (workflow_id, key) = (row.text(T, "workflow_id")?, row.text(T, "key")?);
                Ok(match row.text(T, "kind")?.as_str() {
                    "m" => Change::Message {
                        workflow_id,
                        topic: key,
                    },
                    "e" => Change::Event { workflow_id, key },
                    _ => Change::Stream { workflow_id, key },
                })
            })
            .collect()
    }
}
