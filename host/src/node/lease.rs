//! An executor's lease: a serving host renews its row every third of the lease, so others
//! (and `reprise executors`) can tell a live host from one that died with work it owned. Each
//! renewal the database accepts also tells this host's executions that they may still act.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::runtime::Dispatch;
use reprise_store::{StoreError, now_ms};

/// The lease when the config names none: a dead host is noticed within this.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);

/// Takes the lease of `dispatch`'s executor (an error if the database refuses), then renews
/// it every third of `lease` in the background until `stop`. A renewal that fails is logged
/// and tried again at the next tick; meanwhile the lease ages, and once it is too old the
/// executions halt before their next outside effect.
pub async fn take(
    dispatch: Dispatch,
    lease: Duration,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, StoreError> {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let every = (lease / 3).max(Duration::from_millis(10));
    let started_at = now_ms();
    let executor_id = dispatch.executor_id().to_string();
    let sent = Instant::now();
    dispatch
        .store()
        .renew_lease(&executor_id, started_at, lease_ms)
        .await?;
    dispatch.lease_taken(lease, sent);
    Ok(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        // After a pause, renew once at once rather than once per missed tick.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate: the lease was just taken.
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            let sent = Instant::now();
            match dispatch
                .store()
                .renew_lease(&executor_id, started_at, lease_ms)
                .await
            {
                Ok(()) => dispatch.lease_renewed(sent),
                Err(err) => {
                    tracing::warn!(executor_id, "cannot renew the executor's lease: {err}")
                }
            }
        }
    }))
}
