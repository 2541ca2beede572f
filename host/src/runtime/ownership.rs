//! Whether this host may still act on the workflows it owns. A host holds a lease that others
//! read by the database's clock; it judges its own by its monotonic clock since the last
//! renewal the database accepted, with a margin. Once that is too old (the process was
//! paused, the database was unreachable) another host may have adopted its work, so every
//! execution here halts before its next outside effect until the lease is renewed, then
//! re-reads its workflow's epoch: the same, it goes on; another, it stops for good. A renewal
//! that comes after such a lapse counts it, so an execution that only wakes after the renewal
//! (the whole process was paused) still re-reads its epoch before it acts.
//!
//! What remains is a pause between this check and the effect itself: a step's effect is
//! then exactly once only where the outside honours the step's idempotency key.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The fraction of the lease a renewal is trusted for: renewals come every third of the
/// lease, so two may fail before executions halt, and a third of the lease is left before
/// other hosts may adopt.
const TRUSTED: (u32, u32) = (2, 3);

/// This host's lease as its executions see it.
#[derive(Debug)]
pub(crate) struct LeaseClock {
    base: Instant,
    /// How long a renewal is trusted (ms); 0 while the host holds no lease (a process that
    /// owns nothing another host could adopt).
    trusted_ms: AtomicU64,
    /// When the last accepted renewal was sent, in ms since `base`.
    renewed_ms: AtomicU64,
    /// How many times the lease went untrusted before a renewal came.
    lapses: AtomicU64,
    renewed: Notify,
}

impl Default for LeaseClock {
    fn default() -> Self {
        LeaseClock {
            base: Instant::now(),
            trusted_ms: AtomicU64::new(0),
            renewed_ms: AtomicU64::new(0),
            lapses: AtomicU64::new(0),
            renewed: Notify::new(),
        }
    }
}

impl LeaseClock {
    /// From now on the host holds a lease of `lease`, first renewed at `sent`.
    pub(crate) fn arm(&self, lease: Duration, sent: Instant) {
        let trusted = lease * TRUSTED.0 / TRUSTED.1;
        self.renewed(sent);
        self.trusted_ms.store(
            u64::try_from(trusted.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            Ordering::Release,
        );
    }

    /// The database accepted a renewal sent at `sent` (taken before the request, so the
    /// lease is never trusted past what the database granted).
    pub(crate) fn renewed(&self, sent: Instant) {
        let at = u64::try_from(sent.saturating_duration_since(self.base).as_millis())
            .unwrap_or(u64::MAX);
        let before = self.renewed_ms.fetch_max(at, Ordering::AcqRel);
        let trusted = self.trusted_ms.load(Ordering::Acquire);
        if trusted > 0 && at.saturating_sub(before) >= trusted {
            self.lapses.fetch_add(1, Ordering::AcqRel);
        }
        self.renewed.notify_waiters();
    }

    /// Whether the host may act now: it holds no lease, or its last renewal is recent.
    pub(crate) fn fresh(&self) -> bool {
        self.fresh_at(Instant::now())
    }

    fn fresh_at(&self, now: Instant) -> bool {
        let trusted = self.trusted_ms.load(Ordering::Acquire);
        if trusted == 0 {
            return true;
        }
        let now =
            u64::try_from(now.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX);
        now.saturating_sub(self.renewed_ms.load(Ordering::Acquire)) < trusted
    }

    /// How many lapses renewals have ended so far: an execution that saw fewer must re-read
    /// its epoch before it acts.
    pub(crate) fn lapses(&self) -> u64 {
        self.lapses.load(Ordering::Acquire)
    }

    /// Waits until the lease is fresh again.
    pub(crate) async fn until_fresh(&self) {
        loop {
            let renewed = self.renewed.notified();
            if self.fresh() {
                return;
            }
            renewed.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock whose process started a second ago.
    fn started_a_second_ago() -> LeaseClock {
        LeaseClock {
            base: Instant::now() - Duration::from_secs(1),
            ..LeaseClock::default()
        }
    }

    #[test]
    fn a_host_without_a_lease_may_always_act() {
        assert!(LeaseClock::default().fresh());
    }

    #[test]
    fn a_renewal_is_trusted_for_two_thirds_of_the_lease() {
        let clock = LeaseClock::default();
        let (base, ms) = (clock.base, Duration::from_millis);
        clock.arm(ms(300), base);
        assert!(clock.fresh_at(base + ms(199)));
        assert!(!clock.fresh_at(base + ms(200)), "paused past two thirds");
        clock.renewed(base + ms(150));
        assert!(clock.fresh_at(base + ms(300)));
        assert_eq!(clock.lapses(), 0, "renewed in time");
        clock.renewed(base + ms(400));
        assert_eq!(
            clock.lapses(),
            1,
            "renewed only after the lease went untrusted"
        );
        // An older renewal answered late moves nothing back.
        clock.renewed(base + ms(10));
        assert!(clock.fresh_at(base + ms(300)));
    }

    #[tokio::test]
    async fn halted_executions_go_on_once_the_lease_is_renewed() {
        let clock = std::sync::Arc::new(started_a_second_ago());
        clock.arm(Duration::from_millis(30), clock.base);
        assert!(!clock.fresh());
        let waiter = tokio::spawn({
            let clock = clock.clone();
            async move { clock.until_fresh().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        clock.renewed(Instant::now());
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken by the renewal")
            .expect("joined");
    }
}
