//! The Postgres write combiner: the new workflows, step checkpoints and endings of many
//! workflows written as one multi-row statement of each kind instead of one transaction per
//! call.
//!
//! Postgres spends its CPU per transaction and per statement far more than per row, so a host
//! with many workflows in flight gathers what they ask while the previous flush is on its way,
//! and writes each flush as at most three statements ([`bulk`](super::bulk)), each committed
//! alone. Their texts do not depend on the batch's size, so they stay prepared. `RETURNING`
//! says which rows were written: each of those callers hears of its commit; any other write
//! runs again alone, where the statement every single write runs gives its own answer (fenced,
//! duplicate, unknown, already ended, an existing id). A bulk statement that fails as a whole
//! (a deduplication clash, a deadlock with an adoption, a dropped connection) sends every one
//! of its writes that way too. Nothing is answered before its commit returned.
//!
//! A write that finds the combiner idle (nothing queued, no flush on its way) is flushed alone
//! on the caller's task: its single-row statement, with no hop to the combiner's task.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Postgres;
use sqlx::postgres::{PgConnection, PgPool};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::bells::{Bells, tell_queue};
use super::bulk;
use crate::echo::echo;
use crate::shared::Dialect;
use crate::written::StepRow;
use crate::{Inserted, NewWorkflow, StoreError, WorkflowEnd, WorkflowRecord, now_ms};

/// Most writes one flush takes.
const MAX_FLUSH: usize = 512;
/// Flushes on their way at once. One, as SQLite's writer: while it is on its way, the next
/// gathers everything that arrives, and a bigger flush costs Postgres fewer transactions per
/// write. Measured with one executor on 2 cores: 5,900 one-step workflows/s with one flight,
/// 4,700 with two, 3,700 with four, 2,600 with eight.
const FLUSHES_IN_FLIGHT: usize = 1;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A new workflow and who waits for its commit.
type InsertJob = (NewWorkflow, Reply<Inserted>);
/// A step and who waits for its commit.
type StepJob = (StepRow, Reply<()>);

/// An ending and who waits for it.
struct FinishJob {
    workflow_id: String,
    end: WorkflowEnd,
    epoch: Option<u64>,
    reply: Reply<WorkflowRecord>,
}

enum Job {
    Insert(InsertJob),
    Step(StepJob),
    Finish(FinishJob),
}

/// The combiner's door: cloned with the store, it stops when the last clone is gone.
#[derive(Debug, Clone)]
pub(super) struct Combiner {
    jobs: mpsc::Sender<Job>,
    flights: Arc<Semaphore>,
    target: Arc<Target>,
}

/// Where flushes go, and how many went.
#[derive(Debug)]
struct Target {
    pool: PgPool,
    /// Coalesces the `NOTIFY`s of the queues that got work or a free slot.
    bells: Bells,
    /// Flushes written so far, a write alone counting as one.
    trips: AtomicU64,
}

impl Combiner {
    /// Starts the combiner's task on the current runtime.
    pub(super) fn start(pool: PgPool) -> Combiner {
        let (jobs, queue) = mpsc::channel(4 * MAX_FLUSH);
        let flights = Arc::new(Semaphore::new(FLUSHES_IN_FLIGHT));
        let target = Arc::new(Target {
            pool,
            bells: Bells::default(),
            trips: AtomicU64::new(0),
        });
        tokio::spawn(gather(queue, Arc::clone(&flights), Arc::clone(&target)));
        Combiner {
            jobs,
            flights,
            target,
        }
    }

    /// Flushes written so far, a write alone counting as one: writes per trip shows how well
    /// the combiner gathers.
    pub(super) fn trips(&self) -> u64 {
        self.target.trips.load(Ordering::Relaxed)
    }

    pub(super) async fn insert(&self, new: NewWorkflow) -> Result<Inserted, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.write(Job::Insert((new, reply)), answer).await
    }

    pub(super) async fn record_step(&self, step: StepRow) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.write(Job::Step((step, reply)), answer).await
    }

    pub(super) async fn finish(
        &self,
        workflow_id: String,
        end: WorkflowEnd,
        epoch: Option<u64>,
    ) -> Result<WorkflowRecord, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Finish(FinishJob {
            workflow_id,
            end,
            epoch,
            reply,
        });
        self.write(job, answer).await
    }

    /// Writes `job` and waits for its `answer`. When nothing is queued or on its way, the job
    /// has nothing to share a statement with: it is flushed alone here, sparing the hop to the
    /// combiner's task, holding a flight meanwhile so that writes arriving beside it gather.
    async fn write<T>(
        &self,
        job: Job,
        answer: oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let idle = self.jobs.capacity() == self.jobs.max_capacity()
            && self.flights.available_permits() == FLUSHES_IN_FLIGHT;
        match idle.then(|| self.flights.try_acquire().ok()).flatten() {
            Some(_flight) => self.target.flush(vec![job]).await,
            None => self
                .jobs
                .send(job)
                .await
                .map_err(|_| StoreError::WriterGone)?,
        }
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// Takes whatever is queued whenever a flush may start, and starts it.
async fn gather(mut queue: mpsc::Receiver<Job>, flights: Arc<Semaphore>, target: Arc<Target>) {
    let mut batch = Vec::with_capacity(MAX_FLUSH);
    loop {
        let Ok(flight) = Arc::clone(&flights).acquire_owned().await else {
            return;
        };
        if queue.recv_many(&mut batch, MAX_FLUSH).await == 0 {
            return;
        }
        let jobs = std::mem::replace(&mut batch, Vec::with_capacity(MAX_FLUSH));
        let target = Arc::clone(&target);
        tokio::spawn(async move {
            target.flush(jobs).await;
            drop(flight);
        });
    }
}

/// One flush's writes by kind.
#[derive(Default)]
struct Flush {
    inserts: Vec<InsertJob>,
    steps: Vec<StepJob>,
    finishes: Vec<FinishJob>,
}

impl Target {
    /// Writes one flush and answers every job: new workflows, then steps, then endings. A
    /// workflow's step is only asked for after its row's commit returned, and its ending after
    /// its last step's, so no two writes of one workflow meet in one flush.
    async fn flush(&self, jobs: Vec<Job>) {
        self.trips.fetch_add(1, Ordering::Relaxed);
        let mut flush = Flush::default();
        for job in jobs {
            match job {
                Job::Insert(insert) => flush.inserts.push(insert),
                Job::Step(step) => flush.steps.push(step),
                Job::Finish(finish) => flush.finishes.push(finish),
            }
        }
        let mut conn = match self.pool.acquire().await {
            Ok(conn) => conn,
            Err(err) => {
                let cause = StoreError::from(err);
                tracing::warn!(error = %cause, "no connection for a flush of writes");
                return answer_all(flush, &cause);
            }
        };
        let mut queues = BTreeSet::new();
        if !flush.inserts.is_empty() {
            queues.extend(insert_all(&mut conn, flush.inserts).await);
        }
        if !flush.steps.is_empty() {
            record_steps(&mut conn, flush.steps).await;
        }
        if !flush.finishes.is_empty() {
            queues.extend(finish_all(&mut conn, flush.finishes).await);
        }
        // Dispatchers of these queues have new work or a free slot.
        for queue in queues {
            tell_queue(&self.bells, &mut conn, &queue).await;
        }
    }
}

/// Without a connection for the flush, every write of it hears why.
fn answer_all(flush: Flush, cause: &StoreError) {
    let copy = echo(cause);
    for (_, reply) in flush.inserts {
        drop(reply.send(Err(copy())));
    }
    for (_, reply) in flush.steps {
        drop(reply.send(Err(copy())));
    }
    for finish in flush.finishes {
        drop(finish.reply.send(Err(copy())));
    }
}

/// The new workflows in one statement when there are several, the rest alone; the queues
/// that got work.
async fn insert_all(conn: &mut PgConnection, inserts: Vec<InsertJob>) -> BTreeSet<String> {
    let mut created = HashMap::new();
    if inserts.len() > 1 {
        match bulk::insert_workflows(conn, &inserts).await {
            Ok(records) => created = records,
            Err(err) => tracing::debug!(error = %err, "bulk insert failed; one by one"),
        }
    }
    let mut queues = BTreeSet::new();
    for (new, reply) in inserts {
        let result = match created.remove(&new.id) {
            Some(record) => Ok(Inserted {
                created: true,
                record,
            }),
            None => Postgres::insert_workflow(conn, &new, now_ms(), None).await,
        };
        if let (Ok(inserted), Some(queue)) = (&result, &new.queue_name)
            && inserted.created
        {
            queues.insert(queue.clone());
        }
        drop(reply.send(result));
    }
    queues
}

/// The steps in one statement when there are several; each one the bulk statement did not
/// write runs alone for its own answer.
async fn record_steps(conn: &mut PgConnection, mut steps: Vec<StepJob>) {
    let mut written = BTreeSet::new();
    if steps.len() > 1 {
        // One order for every flush's row locks, so two flushes never wait on each other.
        steps.sort_by(|(a, _), (b, _)| {
            (a.workflow_id.as_str(), a.function_id).cmp(&(b.workflow_id.as_str(), b.function_id))
        });
        match bulk::insert_steps(conn, &steps).await {
            Ok(rows) => written = rows,
            Err(err) => tracing::debug!(error = %err, "bulk step insert failed; one by one"),
        }
    }
    for (step, reply) in steps {
        let key = (step.workflow_id.clone(), i64::from(step.function_id));
        let result = if written.contains(&key) {
            Ok(())
        } else {
            Postgres::record_step(conn, &step).await
        };
        drop(reply.send(result));
    }
}

/// The endings in one statement when there are several, the rest alone; the queues whose
/// workflows ended (their dispatchers have a free slot).
async fn finish_all(conn: &mut PgConnection, mut finishes: Vec<FinishJob>) -> BTreeSet<String> {
    let mut ended = HashMap::new();
    if finishes.len() > 1 {
        finishes.sort_by(|a, b| a.workflow_id.cmp(&b.workflow_id));
        let endings: Vec<_> = finishes
            .iter()
            .map(|f| bulk::Ending {
                workflow_id: &f.workflow_id,
                end: &f.end,
                epoch: f.epoch,
            })
            .collect();
        match bulk::update_endings(conn, &endings).await {
            Ok(records) => ended = records,
            Err(err) => tracing::debug!(error = %err, "bulk ending failed; one by one"),
        }
    }
    let mut queues = BTreeSet::new();
    for finish in finishes {
        let result = match ended.remove(&finish.workflow_id) {
            Some(record) => Ok(record),
            None => {
                Postgres::finish_workflow(conn, &finish.workflow_id, &finish.end, finish.epoch)
                    .await
            }
        };
        if let Ok(WorkflowRecord {
            queue_name: Some(queue),
            ..
        }) = &result
        {
            queues.insert(queue.clone());
        }
        drop(finish.reply.send(result));
    }
    queues
}
