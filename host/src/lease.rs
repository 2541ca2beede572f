//! An executor's lease: `reprise serve` renews its row every third of the lease, so others
//! (and `reprise executors`) can tell a live host from one that died with work it owned.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::{Store, now_ms};

/// The lease when the config names none: a dead host is noticed within this.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);

/// Renews `executor_id`'s lease at once and then every third of `lease`, until `stop`. A
/// renewal that fails is logged and tried again at the next tick: the lease has two more.
pub fn spawn(
    store: Arc<dyn Store>,
    executor_id: String,
    lease: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let every = (lease / 3).max(Duration::from_millis(10));
    let started_at = now_ms();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            if let Err(err) = store.renew_lease(&executor_id, started_at, lease_ms).await {
                tracing::warn!(executor_id, "cannot renew the executor's lease: {err}");
            }
        }
    })
}
