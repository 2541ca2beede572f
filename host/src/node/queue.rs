//! Queue dispatch: one task per queue claims ENQUEUED workflows within the queue's limits and
//! drives them. It wakes on an enqueue in this process or a finished workflow of the queue, on
//! Postgres also on another host's (LISTEN/NOTIFY), and polls to notice the rest: other
//! processes' work on SQLite, rate-limit windows reopening. At start it first
//! recovers the queue's workflows a previous process left PENDING, each in a slot of its own,
//! so a restart never runs more than the limit.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::runtime::{Dispatch, DriveGuard};
use reprise_store::{Change, QueueClaim, RateLimit, now_ms};

/// How often a dispatcher looks for work it was not told about (other processes' enqueues,
/// rate-limit windows reopening).
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A queue's limits, as its dispatcher enforces them (the config file's `[queues.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueOptions {
    /// Most workflows of this queue running at once across all executors.
    pub concurrency: Option<u32>,
    /// Most running at once in this process.
    pub worker_concurrency: Option<u32>,
    /// At most so many starts per window.
    pub rate_limit: Option<RateLimit>,
    /// `concurrency` and `rate_limit` hold per partition key, and partitions take turns.
    pub partitioned: bool,
    /// Whether a workflow parked in a wait (a sleep, a `recv`, a child, a step slot) keeps its
    /// worker slot (`worker_concurrency`); when false it gives it back and takes one again
    /// when it wakes, so waiting workflows do not keep new ones from starting.
    pub count_waiting: bool,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            concurrency: None,
            worker_concurrency: None,
            rate_limit: None,
            partitioned: false,
            count_waiting: true,
        }
    }
}

/// Local slots of a queue without a worker concurrency limit.
const UNLIMITED_LOCAL_SLOTS: usize = 1024;

/// A claimed workflow's hold on a local slot; freeing it wakes the dispatcher to claim more.
struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    slots: Arc<Semaphore>,
    wake: Arc<Notify>,
    count_waiting: bool,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit, dispatcher: &Dispatcher) -> Slot {
        Slot {
            permit: Some(permit),
            slots: dispatcher.slots.clone(),
            wake: dispatcher.wake.clone(),
            count_waiting: dispatcher.config.count_waiting,
        }
    }
}

impl DriveGuard for Slot {
    fn parked(&mut self) {
        if !self.count_waiting && self.permit.take().is_some() {
            self.wake.notify_one();
        }
    }

    /// A woken workflow waits its turn for a slot; the semaphore serves waiters before the
    /// dispatcher's new claims.
    async fn unparking(&mut self) {
        if self.permit.is_none() {
            self.permit = self.slots.clone().acquire_owned().await.ok();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.permit.take().is_some() {
            self.wake.notify_one();
        }
    }
}

/// Starts one dispatcher per queue; they stop when `stop` is cancelled.
pub fn start_dispatchers(
    dispatch: &Dispatch,
    queues: &std::collections::BTreeMap<String, QueueOptions>,
    stop: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut wakes = std::collections::HashMap::new();
    let mut dispatchers: Vec<_> = queues
        .iter()
        .map(|(name, config)| {
            let wake = dispatch.declare_queue(name);
            wakes.insert(name.clone(), wake.clone());
            let dispatcher = Dispatcher {
                dispatch: dispatch.clone(),
                queue: name.clone(),
                config: config.clone(),
                wake,
                slots: Arc::new(Semaphore::new(
                    config
                        .worker_concurrency
                        .map_or(UNLIMITED_LOCAL_SLOTS, |n| n as usize),
                )),
            };
            tokio::spawn(dispatcher.run(stop.clone()))
        })
        .collect();
    if let Some(feed) = dispatch.store().change_feed() {
        dispatchers.push(tokio::spawn(hear_other_hosts(feed, wakes, stop)));
    }
    dispatchers
}

/// Where the database pushes changes (Postgres), wakes a queue's dispatcher as soon as
/// another host enqueues on it or frees one of its slots, rather than at its next poll.
async fn hear_other_hosts(
    mut feed: tokio::sync::mpsc::UnboundedReceiver<Change>,
    wakes: std::collections::HashMap<String, Arc<Notify>>,
    stop: CancellationToken,
) {
    loop {
        let change = tokio::select! {
            _ = stop.cancelled() => return,
            change = feed.recv() => change,
        };
        match change {
            Some(Change::Queued { queue }) => {
                if let Some(wake) = wakes.get(&queue) {
                    wake.notify_one();
                }
            }
            Some(_) => {}
            None => return,
        }
    }
}

struct Dispatcher {
    dispatch: Dispatch,
    queue: String,
    config: QueueOptions,
    wake: Arc<Notify>,
    slots: Arc<Semaphore>,
}

impl Dispatcher {
    async fn run(self, stop: CancellationToken) {
        tracing::debug!(queue = %self.queue, "dispatcher started");
        tokio::select! {
            _ = stop.cancelled() => return,
            recovered = self.recover() => if let Err(err) = recovered {
                tracing::warn!(queue = %self.queue, "cannot recover the queue's PENDING workflows: {err}");
            },
        }
        loop {
            if let Err(err) = self.dispatch_once().await {
                tracing::warn!(queue = %self.queue, "dispatch failed, will retry: {err}");
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
        tracing::debug!(queue = %self.queue, "dispatcher stopped");
    }

    /// Recovers this executor's PENDING workflows of the queue, each once a slot is free (in
    /// order, before any new claim).
    async fn recover(&self) -> Result<(), crate::runtime::RuntimeError> {
        let pending = self.dispatch.pending_in_queue(&self.queue).await?;
        if !pending.is_empty() {
            tracing::info!(queue = %self.queue, count = pending.len(), "recovering the queue's pending workflows");
        }
        for id in pending {
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                break;
            };
            let slot = Slot::new(permit, self);
            self.dispatch.spawn_recovered(&id, slot);
        }
        Ok(())
    }

    /// Recovers the workflows adopted from dead executors first, then claims as many
    /// workflows as the free local slots and the queue's limits allow.
    async fn dispatch_once(&self) -> Result<(), reprise_store::StoreError> {
        while let Ok(permit) = self.slots.clone().try_acquire_owned() {
            let Some(id) = self.dispatch.next_adopted(&self.queue) else {
                break;
            };
            let slot = Slot::new(permit, self);
            self.dispatch.spawn_recovered(&id, slot);
        }
        loop {
            let free = self.slots.available_permits();
            if free == 0 {
                return Ok(());
            }
            let claim = QueueClaim {
                queue: self.queue.clone(),
                executor_id: self.dispatch.executor_id().to_string(),
                max: u32::try_from(free).unwrap_or(u32::MAX),
                concurrency: self.config.concurrency,
                rate_limit: self.config.rate_limit,
                partitioned: self.config.partitioned,
            };
            let claimed = self.dispatch.store().claim_queued(&claim).await?;
            let got = claimed.len();
            let now = now_ms();
            for record in claimed {
                let waited = u64::try_from(now - record.created_at).unwrap_or(0);
                self.dispatch
                    .metrics()
                    .enqueue_to_start(&self.queue, Duration::from_millis(waited));
                let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                    // Cannot happen: we claimed no more than the free permits. Run it anyway
                    // rather than leave a claimed workflow unattended.
                    self.dispatch.spawn_claimed(record, ());
                    continue;
                };
                let slot = Slot::new(permit, self);
                self.dispatch.spawn_claimed(record, slot);
            }
            // Fewer than asked means the queue is empty or at a global limit for now.
            if got < free {
                return Ok(());
            }
        }
    }
}
