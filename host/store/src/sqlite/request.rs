//! What the writer is asked to do. The kinds it writes together in multi-row statements (new
//! workflows, step checkpoints, endings) are variants it can gather; every other write reaches
//! it as a closure over the connection ([`Write`]), spelled once where the store method is.

use std::future::Future;
use std::pin::Pin;

use sqlx::Sqlite;
use sqlx::sqlite::SqliteConnection;

use super::outcome::{Outcome, Reply};
use crate::shared::Dialect;
use crate::written::StepRow;
use crate::{Inserted, NewWorkflow, StoreError, WorkflowEnd, WorkflowRecord, now_ms};

/// A future that borrows the writer's connection.
pub(crate) type BoxFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// A write, owning its data so it can cross to the writer task.
pub(super) enum Request {
    InsertWorkflow {
        // Boxed: a new workflow is the largest request by far, and every slot of the queue
        // (filled mostly with steps) would otherwise be as large.
        new: Box<NewWorkflow>,
        reply: Reply<Inserted>,
    },
    RecordStep {
        step: StepRow,
        reply: Reply<()>,
    },
    Finish {
        workflow_id: String,
        end: WorkflowEnd,
        epoch: Option<u64>,
        reply: Reply<WorkflowRecord>,
    },
    /// Any other write.
    Other(Box<dyn Write>),
}

/// A write other than the gathered kinds: its statements and the reply they answer.
pub(super) trait Write: Send {
    /// Runs its statements on the writer's connection (in its open transaction, if any).
    fn apply<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Outcome>;
    /// Answers without running: the batch failed before its turn.
    fn reject(self: Box<Self>, err: StoreError);
    /// Whether it must run inside a transaction even when it arrives alone.
    fn needs_transaction(&self) -> bool;
}

/// Whether a closure's statements only make sense together, or a read that explains its write
/// must see the same state: then it runs in a transaction even alone. All such writes are
/// rare admin operations, so the BEGIN and COMMIT round trips do not matter there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alone {
    /// One writing statement: autocommit is enough.
    Autocommit,
    /// Several statements that stand or fall together.
    Transaction,
}

/// A closure and the reply its result goes to.
pub(super) struct Closure<T, F> {
    pub(super) run: F,
    pub(super) reply: Reply<T>,
    pub(super) alone: Alone,
}

impl<T, F> Write for Closure<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
        + Send
        + 'static,
{
    fn apply<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Outcome> {
        let Closure { run, reply, .. } = *self;
        Box::pin(async move { Outcome::held(reply, run(conn).await) })
    }

    fn reject(self: Box<Self>, err: StoreError) {
        drop(self.reply.send(Err(err)));
    }

    fn needs_transaction(&self) -> bool {
        self.alone == Alone::Transaction
    }
}

impl Request {
    /// Answers without running: the batch failed before this request's turn.
    pub(super) fn reject(self, err: StoreError) {
        match self {
            Request::InsertWorkflow { reply, .. } => drop(reply.send(Err(err))),
            Request::RecordStep { reply, .. } => drop(reply.send(Err(err))),
            Request::Finish { reply, .. } => drop(reply.send(Err(err))),
            Request::Other(write) => write.reject(err),
        }
    }

    /// Whether the request must run inside a transaction even when it arrives alone.
    pub(super) fn needs_transaction(&self) -> bool {
        match self {
            Request::Other(write) => write.needs_transaction(),
            _ => false,
        }
    }

    /// Runs the request's statements on the writer's connection (in its open transaction, if
    /// any).
    pub(super) async fn apply(self, conn: &mut SqliteConnection) -> Outcome {
        match self {
            Request::InsertWorkflow { new, reply } => {
                let inserted = Sqlite::insert_workflow(conn, &new, now_ms(), None).await;
                Outcome::Inserted(reply, Box::new(inserted))
            }
            Request::RecordStep { step, reply } => {
                Outcome::Unit(reply, Sqlite::record_step(conn, &step).await)
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
            Request::Other(write) => write.apply(conn).await,
        }
    }
}
