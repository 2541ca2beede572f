//! The writer's requests for messages, events and streams, delayed starts and deadlines: each write and the position it is
//! recorded at run in one savepoint, so they commit (or roll back) together even inside a
//! batch shared with other requests.

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Sqlite};

use super::outcome::{Outcome, Reply};
use crate::store::waits_sql::Waits;
use crate::store::written::StepRow;
use crate::store::{NewMessage, StoreError, WorkflowRecord};

/// A write of the waiting kind, owning its data.
pub(in crate::store) enum WaitWrite {
    Send {
        message: NewMessage,
        record: Option<StepRow>,
        reply: Reply<bool>,
    },
    Receive {
        workflow_id: String,
        topic: String,
        at: StepRow,
        timed_out: bool,
        reply: Reply<Option<String>>,
    },
    SetEvent {
        workflow_id: String,
        key: String,
        value: String,
        record: Option<StepRow>,
        reply: Reply<()>,
    },
    WriteStream {
        workflow_id: String,
        key: String,
        value: Option<String>,
        record: Option<StepRow>,
        reply: Reply<u64>,
    },
    ClaimDue {
        executor_id: String,
        max: u32,
        only: Option<String>,
        reply: Reply<Vec<WorkflowRecord>>,
    },
    Expire {
        workflow_id: String,
        reason: String,
        reply: Reply<WorkflowRecord>,
    },
}

/// Runs `work` in a savepoint (a transaction of its own when none is open): kept whole, or
/// undone whole.
macro_rules! whole {
    ($conn:expr, |$tx:ident| $work:expr) => {{
        async {
            let mut $tx = $conn.begin().await?;
            match $work.await {
                Ok(value) => {
                    $tx.commit().await?;
                    Ok(value)
                }
                Err(err) => {
                    if let Err(rollback) = $tx.rollback().await {
                        tracing::debug!(error = %rollback, "rollback of a failed write");
                    }
                    Err(err)
                }
            }
        }
        .await
    }};
}

impl WaitWrite {
    pub(super) fn reject(self, err: StoreError) {
        match self {
            WaitWrite::Send { reply, .. } => drop(reply.send(Err(err))),
            WaitWrite::Receive { reply, .. } => drop(reply.send(Err(err))),
            WaitWrite::SetEvent { reply, .. } => drop(reply.send(Err(err))),
            WaitWrite::WriteStream { reply, .. } => drop(reply.send(Err(err))),
            WaitWrite::ClaimDue { reply, .. } => drop(reply.send(Err(err))),
            WaitWrite::Expire { reply, .. } => drop(reply.send(Err(err))),
        }
    }

    pub(super) async fn apply(self, conn: &mut SqliteConnection) -> Outcome {
        match self {
            WaitWrite::Send {
                message,
                record,
                reply,
            } => {
                let result: Result<bool, StoreError> = whole!(conn, |tx| Sqlite::send_message(
                    &mut tx,
                    &message,
                    record.as_ref()
                ));
                Outcome::held(reply, result)
            }
            WaitWrite::Receive {
                workflow_id,
                topic,
                at,
                timed_out,
                reply,
            } => {
                let result: Result<Option<String>, StoreError> =
                    whole!(conn, |tx| Sqlite::receive_message(
                        &mut tx,
                        &workflow_id,
                        &topic,
                        &at,
                        timed_out
                    ));
                Outcome::held(reply, result)
            }
            WaitWrite::SetEvent {
                workflow_id,
                key,
                value,
                record,
                reply,
            } => {
                let result: Result<(), StoreError> = whole!(conn, |tx| Sqlite::set_event(
                    &mut tx,
                    &workflow_id,
                    &key,
                    &value,
                    record.as_ref()
                ));
                Outcome::held(reply, result)
            }
            WaitWrite::WriteStream {
                workflow_id,
                key,
                value,
                record,
                reply,
            } => {
                let result: Result<u64, StoreError> = whole!(conn, |tx| Sqlite::write_stream(
                    &mut tx,
                    &workflow_id,
                    &key,
                    value.as_deref(),
                    record.as_ref()
                ));
                Outcome::held(reply, result)
            }
            WaitWrite::ClaimDue {
                executor_id,
                max,
                only,
                reply,
            } => {
                let claimed = Sqlite::claim_due(conn, &executor_id, max, only.as_deref()).await;
                Outcome::held(reply, claimed)
            }
            WaitWrite::Expire {
                workflow_id,
                reason,
                reply,
            } => {
                let expired: Result<WorkflowRecord, StoreError> =
                    whole!(conn, |tx| Sqlite::expire_workflow(
                        &mut tx,
                        &workflow_id,
                        &reason
                    ));
                Outcome::held(reply, expired)
            }
        }
    }
}

impl Waits for Sqlite {}
