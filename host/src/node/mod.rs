//! A serving node: everything a long-running host does besides answering the API, started and
//! stopped as one. It holds this executor's lease, recovers what the executor owns, dispatches
//! its queues, adopts the work of dead executors, starts delayed workflows, fires schedules,
//! deletes past retention, and stops executions cancelled elsewhere. `reprise serve` and the
//! bench start one; each loop lives in its own module here.

pub mod adoption;
pub mod lease;
pub mod queue;
pub mod retention;
pub mod schedule;
pub mod scheduler;
pub mod serving;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reprise_protocol::wire::ScheduleBody;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::runtime::{Runtime, RuntimeError};
pub use queue::QueueOptions;
use reprise_store::StoreError;
use scheduler::{ScheduleError, Scheduler};

/// What a node serves beyond its runtime.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The queues this node dispatches, by name.
    pub queues: BTreeMap<String, QueueOptions>,
    /// This executor's lease: another host adopts its work once it goes unrenewed this long.
    pub lease: Duration,
    /// Delete ended workflows older than this.
    pub retention: Option<Duration>,
    /// The components schedules may start workflows of, by instance name.
    pub serving: Arc<serving::Serving>,
    /// Schedules to create or update at start (the config's).
    pub schedules: Vec<ScheduleBody>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            queues: BTreeMap::new(),
            lease: lease::DEFAULT_LEASE,
            retention: None,
            serving: Arc::new(serving::Serving::new(BTreeMap::new(), BTreeMap::new())),
            schedules: Vec::new(),
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A configured schedule is invalid or could not be stored.
    #[error("the configured schedules: {0}")]
    Schedules(#[from] ScheduleError),
    /// The database refused this executor's lease.
    #[error("cannot take this executor's lease: {0}")]
    Lease(#[source] StoreError),
    /// Recovery at start could not list this executor's workflows.
    #[error("cannot recover this executor's workflows: {0}")]
    Recovery(#[from] RuntimeError),
}

/// How a node's shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Every running workflow finished within the grace period.
    pub finished: bool,
    /// Workflows parked in a wait: they stay PENDING and resume at the next start.
    pub parked: usize,
}

/// A running node; [`Node::shutdown`] stops it in order.
pub struct Node {
    runtime: Runtime,
    scheduler: Arc<Scheduler>,
    recovered: usize,
    /// Stops taking work: dispatchers, adoption, delayed starts, schedules, retention.
    stop_dispatch: CancellationToken,
    dispatch_loops: Vec<JoinHandle<()>>,
    /// Stops what must outlive the drain: the cancellation watcher (and the lease).
    stop_watching: CancellationToken,
    watch_loops: Vec<JoinHandle<()>>,
    lease: JoinHandle<()>,
}

impl Node {
    /// Takes the lease, then recovers and starts every loop. The lease comes first: from then
    /// on no other host adopts what this one owns, and what others adopted while it was away
    /// is no longer listed as its own.
    pub async fn start(runtime: Runtime, options: NodeOptions) -> Result<Node, NodeError> {
        let scheduler = Arc::new(Scheduler::new(runtime.clone(), options.serving));
        scheduler.put_configured(options.schedules).await?;
        let dispatch = runtime.dispatch();
        let stop_watching = CancellationToken::new();
        let lease = lease::take(dispatch.clone(), options.lease, stop_watching.clone())
            .await
            .map_err(NodeError::Lease)?;
        let stop_dispatch = CancellationToken::new();
        let mut dispatch_loops =
            queue::start_dispatchers(&dispatch, &options.queues, stop_dispatch.clone());
        let recovered = dispatch.spawn_recovery().await?;
        dispatch_loops.push(adoption::spawn(
            dispatch.clone(),
            options.lease / 3,
            stop_dispatch.clone(),
        ));
        dispatch_loops.push(dispatch.spawn_delayed_starts(stop_dispatch.clone()));
        dispatch_loops.push(scheduler.spawn(stop_dispatch.clone()));
        if let Some(age) = options.retention {
            dispatch_loops.push(retention::spawn(
                runtime.store().clone(),
                age,
                stop_dispatch.clone(),
            ));
        }
        let watch_loops = vec![dispatch.spawn_cancellation_watcher(stop_watching.clone())];
        Ok(Node {
            runtime,
            scheduler,
            recovered,
            stop_dispatch,
            dispatch_loops,
            stop_watching,
            watch_loops,
            lease,
        })
    }

    /// The schedules this node fires, for the admin API.
    pub fn scheduler(&self) -> &Arc<Scheduler> {
        &self.scheduler
    }

    /// How many PENDING workflows of this executor recovery at start resumed: those of no
    /// queue at once, those of a queue through its dispatcher, within its limits.
    pub fn recovered(&self) -> usize {
        self.recovered
    }

    /// Stops taking work, lets running workflows finish within `grace`, then stops renewing
    /// the lease and the remaining loops. What did not finish stays PENDING: it resumes at the
    /// next start, or on another host once this lease runs out.
    pub async fn shutdown(self, grace: Duration) -> Drained {
        self.stop_dispatch.cancel();
        for task in self.dispatch_loops {
            let _ = task.await;
        }
        let finished = self.runtime.drain(grace).await;
        // Renewed while draining: the lease says this host still works on what it owns.
        self.lease.abort();
        self.stop_watching.cancel();
        for task in self.watch_loops {
            let _ = task.await;
        }
        Drained {
            finished,
            parked: self.runtime.instance_usage().parked,
        }
    }
}
