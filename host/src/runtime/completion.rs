//! Who waits for which workflow to end. A waiter registers before it reads the workflow's
//! status, so a completion that lands in between still wakes it; completions in other
//! processes are noticed by polling at [`POLL_INTERVAL`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::store::WorkflowRecord;

/// How often a waiter re-reads the database for workflows finished by other processes.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Waiters by workflow id.
#[derive(Default)]
pub(crate) struct Completions {
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>,
}

impl Completions {
    /// The map, even after a panic elsewhere: a skipped registration would strand a waiter.
    fn waiters(&self) -> MutexGuard<'_, HashMap<String, Vec<oneshot::Sender<()>>>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A future that resolves when `complete(id)` is called (or the registry is dropped).
    pub(crate) fn register(&self, id: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut waiters = self.waiters();
        let list = waiters.entry(id.to_string()).or_default();
        // Waiters that gave up (timed out, polled) leave closed senders behind.
        list.retain(|w| !w.is_closed());
        list.push(tx);
        rx
    }

    /// Wakes everyone waiting for `id`.
    pub(crate) fn complete(&self, id: &str) {
        let woken = self.waiters().remove(id);
        for waiter in woken.into_iter().flatten() {
            let _ = waiter.send(());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_registered_waiter_is_woken_by_completion() {
        let completions = Completions::default();
        let first = completions.register("a");
        let other = completions.register("b");
        completions.complete("a");
        assert!(first.await.is_ok());
        drop(other);
        assert!(completions.waiters().contains_key("b"));
    }
}
