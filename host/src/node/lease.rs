//! An executor's lease: `reprise serve` renews its row every third of the lease, so others
//! (and `reprise executors`) can tell a live host from one that died with work it owned.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use reprise_store::{Store, StoreError, now_ms};

/// The lease when the config names none: a dead host is noticed within this.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);

/// Takes `executor_id`'s lease (an error if the database refuses), then renews it every third
/// of `lease` in the background until `stop`. A renewal that fails is logged and tried again at
/// the next tick: the lease has two more.
pub async fn take(
    store: Arc<dyn Store>,
    executor_id: String,
    lease: Duration,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, StoreError> {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let every = (lease / 3).max(Duration::from_millis(10));
    let started_at = now_ms();
    store
        .renew_lease(&executor_id, started_at, lease_ms)
        .await?;
    Ok(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        // The first tick is immediate: the lease was just taken.
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            if let Err(err) = store.renew_lease(&executor_id, started_at, lease_ms).await {
                tracing::warn!(executor_id, "cannot renew the executor's lease: {err}");
            }
        }
    }))
}
