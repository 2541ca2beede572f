//! Wake-ups for waiters on messages, events and streams: a waiter registers for a [`Change`]
//! before it reads the database, so a write that lands in between still wakes it. Writes in
//! this process wake at once; writes in other processes are found by one poll for all
//! waiters (never one per waiter), at [`CHANGE_POLL`], and only while someone waits.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::oneshot;

use reprise_store::{Change, Store, now_ms};

/// How often a process with waiters looks for other processes' writes: as often as a queue's
/// dispatcher looks for their enqueues.
pub(crate) const CHANGE_POLL: Duration = Duration::from_millis(100);

/// How far each poll reaches back before the previous one began: covers the clocks of
/// processes that stamp their writes, and writes committed a little after their stamp.
const POLL_OVERLAP_MS: i64 = 1_000;

/// How often a process that is told of changes as they commit polls anyway, for those told
/// while its listening connection was down.
const FEED_FALLBACK_POLL: Duration = Duration::from_secs(1);

/// Waiters by key, each woken once.
pub(crate) struct Waiters<K> {
    waiters: Mutex<HashMap<K, Vec<oneshot::Sender<()>>>>,
}

impl<K> Default for Waiters<K> {
    fn default() -> Self {
        Waiters {
            waiters: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone> Waiters<K> {
    /// The map, even after a panic elsewhere: a skipped registration would strand a waiter.
    fn waiters(&self) -> MutexGuard<'_, HashMap<K, Vec<oneshot::Sender<()>>>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A future that resolves when `wake(key)` is called (or the registry is dropped).
    pub(crate) fn register(&self, key: &K) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut waiters = self.waiters();
        let list = waiters.entry(key.clone()).or_default();
        // Waiters that gave up (timed out, polled) leave closed senders behind.
        list.retain(|w| !w.is_closed());
        list.push(tx);
        rx
    }

    /// Drops the waiters of `key` that gave up, and the key with them when none is left: a
    /// key woken never again (a workflow that had already ended) leaves nothing behind.
    pub(crate) fn forget_closed(&self, key: &K) {
        let mut waiters = self.waiters();
        if let Some(list) = waiters.get_mut(key) {
            list.retain(|w| !w.is_closed());
            if list.is_empty() {
                waiters.remove(key);
            }
        }
    }

    /// How many keys have waiters (or had, until the next sweep).
    #[cfg(test)]
    pub(crate) fn keys(&self) -> usize {
        self.waiters().len()
    }

    /// Wakes everyone waiting for `key`.
    pub(crate) fn wake(&self, key: &K) {
        let woken = self.waiters().remove(key);
        for waiter in woken.into_iter().flatten() {
            let _ = waiter.send(());
        }
    }

    /// Whether nobody waits, for anything: one look, whatever the number of waiters. A key
    /// whose waiters all gave up still counts until the next [`sweep`](Self::sweep).
    pub(crate) fn is_idle(&self) -> bool {
        self.waiters().is_empty()
    }

    /// Drops the waiters that gave up (timed out, polled), and their keys: a walk over every
    /// waiter, so it runs every [`SWEEP_EVERY`], not at every poll.
    pub(crate) fn sweep(&self) {
        self.waiters().retain(|_, list| {
            list.retain(|w| !w.is_closed());
            !list.is_empty()
        });
    }

    #[cfg(test)]
    pub(crate) fn is_waiting(&self, key: &K) -> bool {
        self.waiters().contains_key(key)
    }
}

/// Who waits for which message, event or stream value in this process.
#[derive(Default)]
pub(crate) struct Signals {
    waiters: Waiters<Change>,
    /// Set once the poll for other processes' writes runs.
    polling: std::sync::OnceLock<()>,
}

impl Signals {
    /// Registers a waiter for `change`; from the first one on, other processes' writes are
    /// polled for too.
    pub(crate) fn register(
        self: &Arc<Self>,
        change: &Change,
        store: &Arc<dyn Store>,
    ) -> oneshot::Receiver<()> {
        let receiver = self.waiters.register(change);
        self.polling.get_or_init(|| {
            tokio::spawn(poll_changes(Arc::downgrade(self), store.clone()));
        });
        receiver
    }

    /// A write in this process: wakes its waiters at once.
    pub(crate) fn wake(&self, change: &Change) {
        self.waiters.wake(change);
    }
}

/// How often the waiters that gave up are swept away. A sweep walks every waiter: at each
/// poll, 100,000 workflows waiting in `recv` made an idle host spend 2 % of a core on it.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Every [`CHANGE_POLL`] while anyone waits, reads what every process wrote since the last
/// poll (with [`POLL_OVERLAP_MS`] to spare) and wakes whoever waits for it; where the database
/// pushes changes as they commit, wakes on those at once and polls only as a fallback, every
/// [`FEED_FALLBACK_POLL`]. Ends with the runtime.
async fn poll_changes(signals: Weak<Signals>, store: Arc<dyn Store>) {
    let mut since = now_ms() - POLL_OVERLAP_MS;
    let mut feed = store.change_feed();
    let mut swept = tokio::time::Instant::now();
    loop {
        match feed.as_mut() {
            Some(pushed) => {
                let poll = tokio::time::sleep(FEED_FALLBACK_POLL);
                tokio::pin!(poll);
                loop {
                    tokio::select! {
                        _ = &mut poll => break,
                        change = pushed.recv() => match (change, signals.upgrade()) {
                            (Some(change), Some(signals)) => signals.wake(&change),
                            (_, None) => return,
                            // The feed ended: poll from now on.
                            (None, _) => break,
                        },
                    }
                }
                if pushed.is_closed() && pushed.is_empty() {
                    feed = None;
                }
            }
            None => tokio::time::sleep(CHANGE_POLL).await,
        }
        let Some(signals) = signals.upgrade() else {
            return;
        };
        if swept.elapsed() >= SWEEP_EVERY {
            signals.waiters.sweep();
            swept = tokio::time::Instant::now();
        }
        if signals.waiters.is_idle() {
            since = now_ms() - POLL_OVERLAP_MS;
            continue;
        }
        let started = now_ms();
        match store.changes_since(since).await {
            Ok(changes) => {
                changes.iter().for_each(|change| signals.wake(change));
                since = started - POLL_OVERLAP_MS;
            }
            Err(err) => tracing::warn!("cannot look for messages and events: {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_registered_waiter_is_woken_once_and_others_stay() {
        let waiters = Waiters::<String>::default();
        let first = waiters.register(&"a".to_string());
        let other = waiters.register(&"b".to_string());
        waiters.wake(&"a".to_string());
        assert!(first.await.is_ok());
        assert!(!waiters.is_waiting(&"a".to_string()));
        assert!(waiters.is_waiting(&"b".to_string()));
        drop(other);
        assert!(!waiters.is_idle(), "until a sweep, its key stays");
        waiters.sweep();
        assert!(
            waiters.is_idle(),
            "a waiter that gave up does not count after a sweep"
        );
    }
}
