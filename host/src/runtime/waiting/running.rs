//! The workflows executing in this process, each with the token that stops it; and the
//! watcher that stops the ones another process (the CLI, another server) cancelled: told at
//! once on Postgres, polled for everywhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use reprise_store::{Change, Store, now_ms};

/// How often a process looks for its running workflows having been cancelled elsewhere.
pub const CANCELLATION_POLL: Duration = Duration::from_millis(200);

/// How far back each look reaches beyond the previous one: cancels are stamped by the
/// canceller's clock, which may run behind this one's.
const CLOCK_MARGIN_MS: i64 = 10_000;

/// Cancellation tokens by workflow id.
#[derive(Default)]
pub(crate) struct Running {
    tokens: Mutex<HashMap<String, CancellationToken>>,
}

impl Running {
    /// The map, even after a panic elsewhere: inserts and removes leave it consistent, and
    /// skipping a registration would lose a cancel.
    fn tokens(&self) -> MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a workflow as executing here; its token is cancelled by [`Running::cancel`].
    pub(crate) fn register(&self, id: &str) -> CancellationToken {
        let token = CancellationToken::new();
        self.tokens().insert(id.to_string(), token.clone());
        token
    }

    pub(crate) fn unregister(&self, id: &str) {
        self.tokens().remove(id);
    }

    /// Whether the workflow is executing in this process.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.tokens().contains_key(id)
    }

    /// Stops the execution of `id` here, if one runs (or waits parked), at its next durable
    /// call; true when this call stopped it, so its end is counted once, by the host that ran
    /// it.
    pub(crate) fn cancel(&self, id: &str) -> bool {
        match self.tokens().get(id) {
            Some(token) if !token.is_cancelled() => {
                token.cancel();
                true
            }
            _ => false,
        }
    }

    fn is_empty(&self) -> bool {
        self.tokens().is_empty()
    }

    /// Every [`CANCELLATION_POLL`] until `stop`, reads which workflows were cancelled since
    /// the last look (less [`CLOCK_MARGIN_MS`]) and stops those running here: one query whose
    /// cost is the cancels, however many workflows run or wait here. Where the database pushes
    /// cancels as they commit (Postgres), stops those at once and keeps the poll as the
    /// fallback. A workflow registered after its cancel was looked for never runs: a drive
    /// reads its status before it registers it.
    /// `cancelled` is called for each workflow cancelled elsewhere (it stops the execution
    /// and wakes who waits for its end); `watched` says whether anyone else here waits for a
    /// workflow's end, which keeps the poll going when nothing runs.
    pub(crate) fn spawn_watcher(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        stop: CancellationToken,
        cancelled: impl Fn(&str) + Send + 'static,
        watched: impl Fn() -> bool + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut pushed = store.change_feed();
            let mut since = now_ms() - CLOCK_MARGIN_MS;
            loop {
                let poll = tokio::time::sleep(CANCELLATION_POLL);
                tokio::pin!(poll);
                loop {
                    let change = async {
                        match pushed.as_mut() {
                            Some(feed) => feed.recv().await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = &mut poll => break,
                        change = change => match change {
                            Some(Change::Cancelled { workflow_id }) => cancelled(&workflow_id),
                            Some(_) => {}
                            // The feed ended: the poll alone from now on.
                            None => pushed = None,
                        },
                    }
                }
                if self.is_empty() && !watched() {
                    continue;
                }
                let looked = now_ms();
                match store.cancelled_since(since).await {
                    Ok(ids) => {
                        for id in &ids {
                            cancelled(id);
                        }
                        since = looked - CLOCK_MARGIN_MS;
                    }
                    Err(err) => tracing::warn!("cannot check for cancelled workflows: {err}"),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_elsewhere_does_not_make_registrations_or_cancels_vanish() {
        let running = Arc::new(Running::default());
        let poisoner = running.clone();
        let _ = std::thread::spawn(move || {
            let _held = poisoner.tokens.lock();
            panic!("poison the registry");
        })
        .join();
        assert!(running.tokens.is_poisoned());
        let token = running.register("w");
        assert!(running.contains("w"));
        running.cancel("w");
        assert!(token.is_cancelled(), "the cancel was lost");
        running.unregister("w");
        assert!(!running.contains("w"));
    }
}
