//! Quotas: what one instance's workflows may take of what all tenants share, so one guest
//! cannot fill the disk or the database for everyone. Per workflow: how many children it
//! starts, and how many bytes it holds in the messages it sent, its events and its streams.
//! Per instance: how many workflows start each second in this process. A quota reached is a
//! clear error to the guest (recorded, so a replay sees the same) or a 429 to a client, and
//! `/metrics` counts it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// One instance's quotas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quotas {
    /// Children one workflow may start, over its whole life.
    pub max_children: u32,
    /// Bytes one workflow may hold in the messages it sent, its events' values and its
    /// streams, together.
    pub max_held_bytes: u64,
    /// Workflows of the instance this process starts per second (any start: API, client,
    /// CLI, children, schedules); `None` for no bound. Bursts of one second's worth pass.
    pub starts_per_second: Option<u32>,
}

impl Quotas {
    /// 10,000 children per workflow.
    pub const DEFAULT_MAX_CHILDREN: u32 = 10_000;
    /// 256 MiB held per workflow.
    pub const DEFAULT_MAX_HELD_BYTES: u64 = 256 << 20;
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            max_children: Self::DEFAULT_MAX_CHILDREN,
            max_held_bytes: Self::DEFAULT_MAX_HELD_BYTES,
            starts_per_second: None,
        }
    }
}

/// Which quota refused something: the label of `reprise_quota_refusals_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// [`Quotas::max_children`].
    Children,
    /// [`Quotas::max_held_bytes`].
    HeldBytes,
    /// [`Quotas::starts_per_second`].
    Starts,
}

impl Quota {
    /// Every quota, in the order `/metrics` lists them.
    pub const ALL: [Quota; 3] = [Quota::Children, Quota::HeldBytes, Quota::Starts];

    /// The label and config key.
    pub fn as_str(self) -> &'static str {
        match self {
            Quota::Children => "max_children",
            Quota::HeldBytes => "max_held_bytes",
            Quota::Starts => "starts_per_second",
        }
    }
}

/// Why a workflow may not start another child.
pub fn children_refused(instance: &str, max: u32) -> String {
    format!(
        "quota reached: a workflow of instance {instance:?} may start at most {max} children \
         (quotas.max_children)"
    )
}

/// Why a write would take a workflow past what it may hold.
pub fn held_bytes_refused(instance: &str, held: u64, more: u64, max: u64) -> String {
    format!(
        "quota reached: this write of {more} bytes would make the workflow hold {} bytes in \
         messages, events and streams; instance {instance:?} allows {max} \
         (quotas.max_held_bytes)",
        held.saturating_add(more)
    )
}

/// Starts per second, per instance, as token buckets.
#[derive(Debug, Default)]
pub(crate) struct StartRates {
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl StartRates {
    /// Takes one start of `instance` from its bucket of `per_second`: whether it may start.
    pub(crate) fn admit(&self, instance: &str, per_second: u32, now: Instant) -> bool {
        let rate = f64::from(per_second.max(1));
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(instance.to_string()).or_insert(Bucket {
            tokens: rate,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_lets_a_second_worth_through_then_refills() {
        let rates = StartRates::default();
        let t0 = Instant::now();
        let admitted = (0..5).filter(|_| rates.admit("a", 3, t0)).count();
        assert_eq!(admitted, 3, "a burst of one second's worth");
        assert!(rates.admit("b", 3, t0), "each instance has its own");
        assert!(!rates.admit("a", 3, t0 + Duration::from_millis(100)));
        assert!(rates.admit("a", 3, t0 + Duration::from_millis(400)));
    }
}
