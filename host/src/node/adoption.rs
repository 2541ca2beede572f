//! Adoption: when an executor's lease runs out, the live ones take over its PENDING workflows
//! and recover them by replay. Each round every live executor adopts its share of what a dead
//! one owns, a batch at a time, so the work spreads across them; an adopted workflow of a queue
//! waits for a slot of that queue's dispatcher here, so the queue's limits hold. Adoption gives
//! each workflow a new ownership epoch, so whatever the old owner still writes (it was only
//! paused) is refused.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::runtime::Dispatch;
use reprise_store::{ExecutorRecord, Lapsed, now_ms};

/// Most workflows one adoption statement takes: small enough that live executors alternate and
/// so share a dead one's work, large enough that thousands are adopted within a second.
pub const BATCH: u32 = 100;

/// How soon the next round comes while a dead executor still owns work.
const AGAIN: Duration = Duration::from_millis(50);

/// How often a round also looks for PENDING work of executors that never took a lease (left by
/// a version from before leases): a scan of every PENDING workflow, which a host with many
/// parked would otherwise pay every round.
const ORPHANS_EVERY: Duration = Duration::from_secs(60);

/// Whom to adopt from and how many: for every other executor whose lease ran out at `now` and
/// that owns PENDING workflows, an equal share of them among the live executors (`me`
/// included), at most `batch`.
pub fn plan(executors: &[ExecutorRecord], me: &str, now: i64, batch: u32) -> Vec<(String, u32)> {
    let live = executors
        .iter()
        .filter(|e| e.executor_id == me || !e.expired(now))
        .count()
        .max(1) as u64;
    executors
        .iter()
        .filter(|e| e.executor_id != me && e.expired(now) && e.pending > 0)
        .map(|dead| {
            let share = dead.pending.div_ceil(live).min(u64::from(batch));
            (dead.executor_id.clone(), share as u32)
        })
        .collect()
}

/// Looks every `every` (a third of the lease) for executors presumed dead and adopts their work
/// for `dispatch`'s executor, until `stop`. A failed round is logged and tried again.
pub fn spawn(
    dispatch: Dispatch,
    every: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut orphans_looked: Option<tokio::time::Instant> = None;
        loop {
            let orphans = orphans_looked.is_none_or(|at| at.elapsed() >= ORPHANS_EVERY);
            if orphans {
                orphans_looked = Some(tokio::time::Instant::now());
            }
            let wait = match round(&dispatch, orphans).await {
                Ok(0) => every,
                Ok(_) => AGAIN,
                Err(err) => {
                    tracing::warn!("cannot adopt the work of dead executors: {err}");
                    every
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return,
            }
        }
    })
}

/// One round: adopts this executor's share from every dead one and hands what it took to be
/// recovered. Returns how many it adopted.
async fn round(dispatch: &Dispatch, orphans: bool) -> Result<usize, reprise_store::StoreError> {
    let store = dispatch.store();
    let me = dispatch.executor_id();
    let now = now_ms();
    let executors = store.executors(Some(Lapsed { now, orphans })).await?;
    let mut adopted = 0;
    for (dead, share) in plan(&executors, me, now, BATCH) {
        let taken = store.adopt_workflows(&dead, me, share, None).await?;
        if taken.is_empty() {
            continue;
        }
        tracing::info!(executor_id = %me, from = %dead, count = taken.len(), "adopted the PENDING workflows of an executor whose lease ran out");
        adopted += taken.len();
        dispatch.recover_adopted(taken);
    }
    Ok(adopted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn executor(id: &str, renewed_at: i64, pending: u64) -> ExecutorRecord {
        ExecutorRecord {
            executor_id: id.into(),
            started_at: 0,
            renewed_at,
            lease_ms: 1_000,
            pending,
        }
    }

    #[test]
    fn live_executors_share_a_dead_ones_work() {
        let now = 10_000;
        let executors = [
            executor("a", now, 5),
            executor("b", now - 100, 0),
            executor("dead", now - 1_001, 301),
        ];
        // a and b are live, so each takes half, rounded up, at most a batch.
        assert_eq!(plan(&executors, "a", now, 1_000), [("dead".into(), 151)]);
        assert_eq!(plan(&executors, "a", now, 100), [("dead".into(), 100)]);
    }

    #[test]
    fn nothing_is_adopted_from_the_living_from_oneself_or_from_an_idle_corpse() {
        let now = 10_000;
        let executors = [
            executor("me", now - 5_000, 7),
            executor("alive", now - 1_000, 9),
            executor("idle", now - 9_000, 0),
        ];
        // "me" was paused past its own lease: it still never adopts from itself.
        assert!(plan(&executors, "me", now, BATCH).is_empty());
    }
}
