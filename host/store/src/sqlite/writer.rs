//! The writer: the only connection that writes, committing queued requests together, on a
//! thread of its own.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::batch::plan;
use super::failure::{is_crash, poisons_transaction};
use super::file::{Committed, FileIdentity};
use super::lane::{Taken, Turn};
use super::outcome::Outcome;
use super::request::Request;
use crate::StoreError;
use crate::echo::echo;

/// Most requests committed together: bounds the time one transaction holds the write lock and
/// the memory of one batch, while still letting hundreds of workflows share an fsync.
pub(super) const MAX_BATCH: usize = 512;
/// Requests that may wait for the writer before callers feel back-pressure.
pub(super) const QUEUE_DEPTH: usize = 4 * MAX_BATCH;

/// The background task that owns the writing connection until every sender is gone.
pub(super) struct Writer {
    /// To reconnect when the connection can no longer be trusted.
    options: SqliteConnectOptions,
    /// `None` after a failure, until the next batch reconnects.
    conn: Option<SqliteConnection>,
    commits: Arc<AtomicU64>,
    /// The file the commits go to, checked after each (`None` in memory).
    file: Option<FileIdentity>,
    /// The step lane's turn, held through each batch (`None` without a lane).
    lane: Option<Turn>,
    /// Held by a test while it queues requests that must meet in one batch: the writer waits
    /// for it after taking a batch's first request.
    #[cfg(test)]
    pub(super) hold: Arc<tokio::sync::Mutex<()>>,
}

impl Writer {
    pub(super) fn new(
        options: SqliteConnectOptions,
        conn: SqliteConnection,
        commits: Arc<AtomicU64>,
        lane: Option<Turn>,
    ) -> Writer {
        let file = FileIdentity::of(options.get_filename());
        Writer {
            options,
            conn: Some(conn),
            commits,
            file,
            lane,
            #[cfg(test)]
            hold: Arc::default(),
        }
    }

    /// Runs the writer on a thread of its own until every sender is gone; the receiver hears
    /// when it stopped. Its round trips to SQLite's worker thread never wait behind the
    /// runtime's other tasks (guests, most of all), which on a busy host they did for each
    /// statement of every batch.
    pub(super) fn spawn(
        self,
        queue: mpsc::Receiver<Request>,
    ) -> std::io::Result<oneshot::Receiver<()>> {
        // No I/O driver: the writer waits only on channels, so a wake-up is a futex, not an
        // eventfd write and an epoll round.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let (stopped, done) = oneshot::channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                runtime.block_on(self.run(queue));
                let _ = stopped.send(());
            })?;
        Ok(done)
    }

    async fn run(mut self, mut queue: mpsc::Receiver<Request>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        // `recv_many` waits for the first request, then takes whatever else is already queued.
        while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
            #[cfg(test)]
            drop(self.hold.lock().await);
            // What came while the batch was taken joins it.
            while batch.len() < MAX_BATCH
                && let Ok(request) = queue.try_recv()
            {
                batch.push(request);
            }
            if self.conn.is_none() {
                match SqliteConnection::connect_with(&self.options).await {
                    Ok(conn) => self.conn = Some(conn),
                    Err(err) => {
                        tracing::error!(error = %err, "cannot reopen the sqlite writer connection");
                        reject_all(&mut batch, StoreError::from(err));
                        continue;
                    }
                }
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let committed = Committed {
                count: &self.commits,
                file: self.file.as_ref(),
            };
            // One writer at a time: a step on the lane finishes its commit first.
            // `try_lock` first: it never spends the task's cooperative budget, so an idle lane
            // does not make the writer yield with a batch in hand.
            let turn = match &self.lane {
                Some(turn) => Some(match turn.try_lock() {
                    Ok(turn) => turn,
                    Err(_) => turn.lock().await,
                }),
                None => None,
            };
            if !write_batch(conn, &mut batch, committed, turn).await {
                // A transaction SQLite rolled back on its own leaves sqlx believing it is
                // still open, and a crashed worker stays crashed: start afresh rather than fail
                // every later write.
                tracing::warn!("reopening the sqlite writer connection after a failure");
                if let Some(conn) = self.conn.take() {
                    drop(conn.close().await);
                }
            }
        }
        if let Some(conn) = self.conn.take()
            && let Err(err) = conn.close().await
        {
            tracing::warn!(error = %err, "closing the sqlite writer connection failed");
        }
        tracing::debug!("sqlite writer stopped");
    }
}

/// Answers every request of `batch` with `cause` (one gets the original, the others a copy).
fn reject_all(batch: &mut Vec<Request>, cause: StoreError) {
    let copy = echo(&cause);
    if let Some(last) = batch.pop() {
        for request in batch.drain(..) {
            request.reject(copy());
        }
        last.reject(cause);
    }
}

/// Whether the connection is still fit for the next batch: no transaction left open, worker
/// alive.
fn still_usable(conn: &SqliteConnection, errors: &[Option<&StoreError>]) -> bool {
    !errors.iter().flatten().any(|err| is_crash(err)) && !conn.is_in_transaction()
}

/// Runs `batch` in one transaction with one commit, then gives back the lane's `turn` and
/// answers every request: a workflow that hears its answer may take the lane at once. Returns
/// whether the connection is still usable.
async fn write_batch(
    conn: &mut SqliteConnection,
    batch: &mut Vec<Request>,
    committed: Committed<'_>,
    turn: Option<Taken<'_>>,
) -> bool {
    let size = batch.len();
    if size == 1
        && !batch[0].needs_transaction()
        && let Some(request) = batch.pop()
    {
        return write_alone(conn, request, committed, turn).await;
    }
    // IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so a statement
    // in the middle of the batch never meets a lock it cannot wait for.
    let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(err) => {
            tracing::warn!(error = %err, size, "cannot begin a write transaction");
            let cause = StoreError::from(err);
            // A failed BEGIN leaves no transaction behind; only a dead worker needs a reconnect.
            let usable = !is_crash(&cause);
            drop(turn);
            reject_all(batch, cause);
            return usable;
        }
    };

    let mut outcomes = Vec::with_capacity(size);
    let mut poisoned = None;
    for phase in plan(batch.drain(..)) {
        if let Some(copy) = &poisoned {
            phase.reject(copy);
            continue;
        }
        for outcome in phase.apply(&mut tx).await {
            // A constraint error only undoes its own statement; anything else (I/O, disk full,
            // out of memory) may have rolled back the whole transaction behind our back.
            if poisoned.is_none()
                && let Some(err) = outcome.error().filter(|e| poisons_transaction(e))
            {
                poisoned = Some(echo(err));
            }
            outcomes.push(outcome);
        }
    }

    if let Some(copy) = poisoned {
        tracing::warn!(error = %copy(), size, "write batch failed; rolling it back");
        if let Err(err) = tx.rollback().await {
            tracing::debug!(error = %err, "rollback after a failed batch");
        }
        drop(turn);
        let usable = still_usable(
            conn,
            &outcomes.iter().map(Outcome::error).collect::<Vec<_>>(),
        );
        // The request that failed keeps its own error; `fail` only replaces successes.
        for mut outcome in outcomes {
            outcome.fail(&copy);
            outcome.send();
        }
        return usable;
    }
    let commit = tx.commit().await.map_err(StoreError::from);
    drop(turn);
    match commit {
        Ok(()) => {
            let settled = committed.settle();
            tracing::debug!(size, "committed write batch");
            for mut outcome in outcomes {
                if let Err(gone) = &settled {
                    outcome.fail(gone);
                }
                outcome.send();
            }
            true
        }
        Err(cause) => {
            tracing::warn!(error = %cause, size, "commit failed; every write in the batch is lost");
            let copy = echo(&cause);
            let mut original = Some(cause);
            // One request gets the original error, the others a copy.
            let last_ok = outcomes
                .iter()
                .rposition(|outcome| outcome.error().is_none());
            for (i, mut outcome) in outcomes.into_iter().enumerate() {
                if Some(i) == last_ok {
                    outcome.fail(|| original.take().unwrap_or_else(&copy));
                } else {
                    outcome.fail(&copy);
                }
                outcome.send();
            }
            // Whether SQLite kept the transaction open after a failed COMMIT depends on the
            // error; the connection is not worth the doubt.
            false
        }
    }
}

/// Runs a lone request in autocommit mode: each statement is its own transaction and commit.
///
/// Same durability as an explicit transaction, but without the BEGIN and COMMIT round trips to
/// the connection's worker thread, which would dominate a sequential workflow's step latency.
/// Only for requests whose statements are safe on their own (at most one of them writes); the
/// others say so with [`Request::needs_transaction`].
async fn write_alone(
    conn: &mut SqliteConnection,
    request: Request,
    committed: Committed<'_>,
    turn: Option<Taken<'_>>,
) -> bool {
    let mut outcome = request.apply(conn).await;
    drop(turn);
    let usable = still_usable(conn, &[outcome.error()]);
    if outcome.error().is_none()
        && let Err(gone) = committed.settle()
    {
        outcome.fail(gone);
    }
    outcome.send();
    usable
}
