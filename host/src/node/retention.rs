//! Retention: ended workflows older than a period are deleted with their steps, in batches of
//! [`BATCH`], each its own short transaction, so writers wait at most one batch.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use reprise_store::{Store, StoreError, now_ms};

/// Workflows deleted per transaction.
pub const BATCH: u32 = 500;

/// Deletes every ended workflow last changed more than `age` ago; returns how many.
pub async fn delete_older_than(store: &dyn Store, age: Duration) -> Result<u64, StoreError> {
    let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_ms().saturating_sub(age_ms);
    let mut total = 0;
    loop {
        let deleted = store.delete_ended(cutoff, BATCH).await?;
        total += u64::from(deleted);
        if deleted < BATCH {
            return Ok(total);
        }
        // Let the writes queued behind this batch go first.
        tokio::task::yield_now().await;
    }
}

/// `reprise serve`'s `retention`: deletes what is older than `retention`, at start and then
/// every half of it (at least every minute), until `stop`.
pub fn spawn(
    store: Arc<dyn Store>,
    retention: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let every = (retention / 2).clamp(Duration::from_millis(10), Duration::from_secs(60));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            match delete_older_than(&*store, retention).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(
                    deleted,
                    retention_ms = retention.as_millis() as u64,
                    "deleted ended workflows past their retention"
                ),
                Err(err) => tracing::warn!("retention could not delete old workflows: {err}"),
            }
        }
    })
}
