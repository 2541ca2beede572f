//! Who waits for which workflow to end. A waiter registers before it reads the workflow's
//! status, so a completion that lands in between still wakes it; completions in other
//! processes are noticed by polling at [`POLL_INTERVAL`].

use std::time::Duration;

use tokio::sync::oneshot;

use crate::runtime::waiting::signals::Waiters;
use reprise_store::WorkflowRecord;

/// How often a waiter re-reads the database for workflows finished by other processes.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Waiters by workflow id.
#[derive(Default)]
pub(crate) struct Completions {
    waiters: Waiters<String>,
}

impl Completions {
    /// A future that resolves when `complete(id)` is called (or the registry is dropped).
    pub(crate) fn register(&self, id: &str) -> oneshot::Receiver<()> {
        self.waiters.register(&id.to_string())
    }

    /// Wakes everyone waiting for `id`.
    pub(crate) fn complete(&self, id: &str) {
        self.waiters.wake(&id.to_string());
    }
}

/// How a wait for a workflow's end came out.
pub(crate) enum Waited {
    /// It reached a terminal status.
    Ended(Box<WorkflowRecord>),
    /// The timeout passed first.
    TimedOut,
    /// No workflow has that id.
    Unknown,
}
