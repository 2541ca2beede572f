//! The runtime's dispatch handle: what a serving node's loops need to drive workflows they
//! claimed, recovered or adopted, and nothing else (tokio's `Runtime`/`Handle` split). The
//! loops themselves live in `node/`; callers that only start and await workflows use
//! [`Runtime`](crate::runtime::Runtime).

use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::runtime::drive::{self, Begin, DriveGuard};
use crate::runtime::error::RuntimeError;
use crate::runtime::scheduling::delayed::start_due;
use crate::runtime::shared::Shared;
use reprise_store::{Store, WorkflowRecord};

/// Drives workflows for a node's dispatchers, adoption and recovery; cheap to clone.
#[derive(Clone)]
pub struct Dispatch {
    shared: Arc<Shared>,
}

impl Dispatch {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Dispatch { shared }
    }

    /// The store the runtime writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// The executor this runtime drives workflows as.
    pub fn executor_id(&self) -> &str {
        &self.shared.options.executor_id
    }

    /// The runtime's counters, which a dispatcher adds its queue waits to.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// This host took its lease of `lease` with a renewal sent at `sent`: from now on its
    /// executions halt before an outside effect once the lease is no longer fresh.
    pub fn lease_taken(&self, lease: Duration, sent: Instant) {
        self.shared.lease.arm(lease, sent);
    }

    /// The database accepted a renewal of this host's lease sent at `sent`.
    pub fn lease_renewed(&self, sent: Instant) {
        self.shared.lease.renewed(sent);
    }

    /// Declares a queue so starts may name it; returns the signal that wakes its dispatcher.
    pub fn declare_queue(&self, name: &str) -> Arc<Notify> {
        let mut queues = self
            .shared
            .queues
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        queues.entry(name.to_string()).or_default().clone()
    }

    /// Drives a workflow claimed from a queue in the background; `slot` is dropped when it
    /// ends, which frees the queue's slot.
    pub fn spawn_claimed<G: DriveGuard>(&self, record: WorkflowRecord, slot: G) {
        drive::spawn_with(&self.shared, Begin::Created(Box::new(record)), slot);
    }

    /// Recovers (in the background) a PENDING workflow of a queue whose dispatcher gave it
    /// `slot`, dropped when it ends.
    pub fn spawn_recovered<G: DriveGuard>(&self, workflow_id: &str, slot: G) {
        drive::spawn_with(&self.shared, Begin::Id(workflow_id.to_string()), slot);
    }

    /// Recovers workflows adopted from a dead executor: those of a declared queue wait for a
    /// slot of its dispatcher ([`Dispatch::next_adopted`]), the others start at once.
    pub fn recover_adopted(&self, adopted: Vec<WorkflowRecord>) {
        for workflow in adopted {
            let signal = workflow
                .queue_name
                .as_deref()
                .and_then(|queue| self.shared.queue_signal(queue).ok());
            match (signal, workflow.queue_name) {
                (Some(signal), Some(queue)) => {
                    // A panic elsewhere cannot leave a queue of ids half-written: take it as
                    // it is rather than drop an adopted workflow.
                    self.shared
                        .adopted
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(queue)
                        .or_default()
                        .push_back(workflow.id);
                    signal.notify_one();
                }
                _ => drive::spawn(&self.shared, Begin::Id(workflow.id)),
            }
        }
    }

    /// The next adopted workflow of `queue` waiting for a slot, oldest first.
    pub fn next_adopted(&self, queue: &str) -> Option<String> {
        self.shared
            .adopted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(queue)?
            .pop_front()
    }

    /// This executor's PENDING workflows of `queue`, oldest first: what its dispatcher
    /// recovers before it claims anything new.
    pub async fn pending_in_queue(&self, queue: &str) -> Result<Vec<String>, RuntimeError> {
        let pending = self
            .shared
            .store
            .pending_workflows(&self.shared.options.executor_id)
            .await?;
        Ok(pending
            .into_iter()
            .filter(|w| w.queue_name.as_deref() == Some(queue))
            .map(|w| w.id)
            .collect())
    }

    /// Starts every PENDING workflow this executor owns in the background, except those of a
    /// declared queue: its dispatcher recovers them within the queue's limits. Returns how many
    /// it owns, both kinds.
    pub async fn spawn_recovery(&self) -> Result<usize, RuntimeError> {
        let pending = self
            .shared
            .store
            .pending_workflows(&self.shared.options.executor_id)
            .await?;
        let count = pending.len();
        for workflow in pending {
            let dispatched = workflow
                .queue_name
                .as_deref()
                .is_some_and(|queue| self.shared.queue_signal(queue).is_ok());
            if !dispatched {
                drive::spawn(&self.shared, Begin::Id(workflow.id));
            }
        }
        Ok(count)
    }

    /// Starts delayed workflows of no queue as they come due, in the background, until
    /// `stop`.
    pub fn spawn_delayed_starts(&self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(start_due(self.shared.clone(), stop))
    }

    /// Stops, at their next durable call, the executions in this process whose workflows were
    /// cancelled by another process (the CLI, another server on the same database). Checks
    /// every [`CANCELLATION_POLL`](crate::runtime::CANCELLATION_POLL) with one query for all
    /// running workflows, until `stop`; on Postgres each cancel is also pushed as it commits,
    /// and stops its execution at once.
    pub fn spawn_cancellation_watcher(
        &self,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let running = self.shared.running.clone();
        let (shared, watching) = (self.shared.clone(), self.shared.clone());
        let cancelled = move |id: &str| shared.cancelled(id);
        let watched = move || watching.completions.any();
        running.spawn_watcher(self.shared.store.clone(), stop, cancelled, watched)
    }
}
