//! What the writer is asked to do: one request per write, each with the channel its answer
//! goes back on, and how a request is run on its own.

use sqlx::Sqlite;
use sqlx::sqlite::SqliteConnection;

use super::outcome::{Outcome, Reply};
use super::schedules::ScheduleWrite;
use super::statements;
use super::waits::WaitWrite;
use crate::store::executors::Executors;
use crate::store::partitions::Partitions;
use crate::store::shared::Dialect;
use crate::store::written::StepRow;
use crate::store::{
    Began, Inserted, NewWorkflow, QueueClaim, StoreError, TrapRecord, WorkflowEnd, WorkflowRecord,
};

/// A write, owning its data so it can cross to the writer task.
pub(super) enum Request {
    PutComponent {
        digest: String,
        bytes: Vec<u8>,
        reply: Reply<()>,
    },
    InsertWorkflow {
        // Boxed: a new workflow is the largest request by far, and every slot of the queue
        // (filled mostly with steps) would otherwise be as large.
        new: Box<NewWorkflow>,
        reply: Reply<Inserted>,
    },
    BeginExecution {
        workflow_id: String,
        executor_id: String,
        epoch: u64,
        reply: Reply<Began>,
    },
    RecordStep {
        step: StepRow,
        reply: Reply<()>,
    },
    RecordTrap {
        workflow_id: String,
        class: String,
        message: String,
        memory_limit: Option<u64>,
        epoch: Option<u64>,
        reply: Reply<()>,
    },
    Finish {
        workflow_id: String,
        end: WorkflowEnd,
        epoch: Option<u64>,
        reply: Reply<WorkflowRecord>,
    },
    ClaimQueued {
        claim: QueueClaim,
        reply: Reply<Vec<WorkflowRecord>>,
    },
    Cancel {
        workflow_id: String,
        reply: Reply<WorkflowRecord>,
    },
    DeleteEnded {
        cutoff: i64,
        max: u32,
        reply: Reply<u32>,
    },
    Resume {
        workflow_id: String,
        executor_id: String,
        memory_limit: Option<u64>,
        reply: Reply<WorkflowRecord>,
    },
    Fork {
        workflow_id: String,
        new_id: String,
        from_step: u32,
        reply: Reply<WorkflowRecord>,
    },
    /// An executor's lease.
    RenewLease {
        executor_id: String,
        started_at: i64,
        lease_ms: i64,
        reply: Reply<()>,
    },
    /// A dead executor's workflows taken over.
    Adopt {
        dead: String,
        adopter: String,
        max: u32,
        reply: Reply<Vec<WorkflowRecord>>,
    },
    /// Messages, events and streams.
    Wait(WaitWrite),
    /// Schedules.
    Schedule(ScheduleWrite),
}

impl Request {
    /// Answers without running: the batch failed before this request's turn.
    pub(super) fn reject(self, err: StoreError) {
        match self {
            Request::PutComponent { reply, .. }
            | Request::RecordStep { reply, .. }
            | Request::RecordTrap { reply, .. }
            | Request::RenewLease { reply, .. } => drop(reply.send(Err(err))),
            Request::Finish { reply, .. }
            | Request::Cancel { reply, .. }
            | Request::Resume { reply, .. }
            | Request::Fork { reply, .. } => drop(reply.send(Err(err))),
            Request::ClaimQueued { reply, .. } | Request::Adopt { reply, .. } => {
                drop(reply.send(Err(err)))
            }
            Request::DeleteEnded { reply, .. } => drop(reply.send(Err(err))),
            Request::InsertWorkflow { reply, .. } => drop(reply.send(Err(err))),
            Request::BeginExecution { reply, .. } => drop(reply.send(Err(err))),
            Request::Wait(write) => write.reject(err),
            Request::Schedule(write) => write.reject(err),
        }
    }

    /// Whether the request must run inside a transaction even when it arrives alone: its
    /// statements only make sense together (a fork's row and its copied steps), or a read
    /// that explains a write (or a write that follows a read) must see the same state. All are
    /// rare admin operations, so the BEGIN and COMMIT round trips do not matter there.
    pub(super) fn needs_transaction(&self) -> bool {
        matches!(
            self,
            Request::Cancel { .. }
                | Request::Resume { .. }
                | Request::Fork { .. }
                | Request::DeleteEnded { .. }
        )
    }

    /// Runs the request's statements on the writer's connection (in its open transaction, if
    /// any).
    pub(super) async fn apply(self, conn: &mut SqliteConnection) -> Outcome {
        match self {
            Request::PutComponent {
                digest,
                bytes,
                reply,
            } => Outcome::Unit(reply, Sqlite::put_component(conn, &digest, &bytes).await),
            Request::InsertWorkflow { new, reply } => {
                Outcome::Inserted(reply, Box::new(Sqlite::insert_workflow(conn, &new).await))
            }
            Request::BeginExecution {
                workflow_id,
                executor_id,
                epoch,
                reply,
            } => Outcome::held(
                reply,
                Sqlite::begin_execution(conn, &workflow_id, &executor_id, epoch).await,
            ),
            Request::RecordStep { step, reply } => {
                Outcome::Unit(reply, Sqlite::record_step(conn, &step).await)
            }
            Request::RecordTrap {
                workflow_id,
                class,
                message,
                memory_limit,
                epoch,
                reply,
            } => {
                let trap = TrapRecord {
                    class: &class,
                    message: &message,
                    memory_limit,
                    epoch,
                };
                Outcome::Unit(reply, Sqlite::record_trap(conn, &workflow_id, &trap).await)
            }
            Request::Finish {
                workflow_id,
                end,
                epoch,
                reply,
            } => Outcome::Record(
                reply,
                Box::new(Sqlite::finish_workflow(conn, &workflow_id, &end, epoch).await),
            ),
            Request::ClaimQueued { claim, reply } if claim.partitioned => {
                Outcome::Records(reply, Sqlite::claim_partitioned(conn, &claim).await)
            }
            Request::ClaimQueued { claim, reply } => {
                Outcome::Records(reply, statements::claim_queued(conn, &claim).await)
            }
            Request::Cancel { workflow_id, reply } => Outcome::Record(
                reply,
                Box::new(Sqlite::cancel_workflow(conn, &workflow_id).await),
            ),
            Request::DeleteEnded { cutoff, max, reply } => {
                Outcome::Count(reply, Sqlite::delete_ended(conn, cutoff, max).await)
            }
            Request::Resume {
                workflow_id,
                executor_id,
                memory_limit,
                reply,
            } => Outcome::Record(
                reply,
                Box::new(
                    Sqlite::resume_workflow(conn, &workflow_id, &executor_id, memory_limit).await,
                ),
            ),
            Request::Fork {
                workflow_id,
                new_id,
                from_step,
                reply,
            } => Outcome::Record(
                reply,
                Box::new(statements::fork_workflow(conn, &workflow_id, &new_id, from_step).await),
            ),
            Request::RenewLease {
                executor_id,
                started_at,
                lease_ms,
                reply,
            } => Outcome::Unit(
                reply,
                Sqlite::renew_lease(conn, &executor_id, started_at, lease_ms).await,
            ),
            Request::Adopt {
                dead,
                adopter,
                max,
                reply,
            } => Outcome::Records(
                reply,
                Sqlite::adopt_workflows(conn, &dead, &adopter, max).await,
            ),
            Request::Wait(write) => write.apply(conn).await,
            Request::Schedule(write) => write.apply(conn).await,
        }
    }
}
