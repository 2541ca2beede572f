//! What the host counts for `/metrics`: Prometheus text, no registry crate. Counters are
//! atomics bumped on the hot path (a relaxed add each); database-derived gauges (workflows by
//! status, queue depth) are read when scraped.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::limits::TrapClass;
use crate::store::{QueueDepth, WorkflowStatus};

const TRAP_CLASSES: [TrapClass; 6] = TrapClass::ALL;

/// Upper bounds (µs) of the checkpoint latency buckets: from a page-cache commit to a slow fsync.
const LATENCY_BOUNDS_US: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 500_000,
];

/// Counters of one runtime.
#[derive(Default)]
pub struct Metrics {
    workflows_started: AtomicU64,
    finished: [AtomicU64; WorkflowStatus::ALL.len()],
    steps_executed: AtomicU64,
    steps_replayed: AtomicU64,
    step_retries: AtomicU64,
    traps: [AtomicU64; 6],
    isolated_traps: [AtomicU64; 6],
    checkpoint_buckets: [AtomicU64; 12],
    checkpoint_count: AtomicU64,
    checkpoint_sum_us: AtomicU64,
}

fn status_index(status: WorkflowStatus) -> usize {
    match status {
        WorkflowStatus::Enqueued => 0,
        WorkflowStatus::Pending => 1,
        WorkflowStatus::Success => 2,
        WorkflowStatus::Error => 3,
        WorkflowStatus::Cancelled => 4,
        WorkflowStatus::MaxRecoveryAttemptsExceeded => 5,
        WorkflowStatus::Paused => 6,
    }
}

fn trap_index(class: TrapClass) -> usize {
    TRAP_CLASSES.iter().position(|c| *c == class).unwrap_or(5)
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub(crate) fn workflow_started(&self) {
        bump(&self.workflows_started);
    }
    pub(crate) fn workflow_finished(&self, status: WorkflowStatus) {
        bump(&self.finished[status_index(status)]);
    }
    pub(crate) fn step_executed(&self) {
        bump(&self.steps_executed);
    }
    pub(crate) fn step_replayed(&self) {
        bump(&self.steps_replayed);
    }
    pub(crate) fn step_retried(&self) {
        bump(&self.step_retries);
    }
    pub(crate) fn trapped(&self, class: TrapClass) {
        bump(&self.traps[trap_index(class)]);
    }
    pub(crate) fn isolated_trapped(&self, class: TrapClass) {
        bump(&self.isolated_traps[trap_index(class)]);
    }

    /// Records how long one checkpoint took to commit.
    pub(crate) fn checkpoint(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if let Some(bucket) = LATENCY_BOUNDS_US.iter().position(|bound| us <= *bound) {
            bump(&self.checkpoint_buckets[bucket]);
        }
        bump(&self.checkpoint_count);
        self.checkpoint_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of these counters plus the database's gauges.
    pub fn render(&self, by_status: &[(WorkflowStatus, u64)], queues: &[QueueDepth]) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            &mut out,
            "reprise_workflows",
            "gauge",
            "Workflows in the database by status.",
        );
        for (status, count) in by_status {
            let _ = writeln!(out, "reprise_workflows{{status=\"{status}\"}} {count}");
        }
        family(
            &mut out,
            "reprise_workflows_started_total",
            "counter",
            "Workflows created by this process.",
        );
        let _ = writeln!(
            out,
            "reprise_workflows_started_total {}",
            load(&self.workflows_started)
        );
        family(
            &mut out,
            "reprise_workflows_finished_total",
            "counter",
            "Workflows this process ended, by status.",
        );
        for status in [
            WorkflowStatus::Success,
            WorkflowStatus::Error,
            WorkflowStatus::Cancelled,
            WorkflowStatus::MaxRecoveryAttemptsExceeded,
        ] {
            let count = load(&self.finished[status_index(status)]);
            let _ = writeln!(
                out,
                "reprise_workflows_finished_total{{status=\"{status}\"}} {count}"
            );
        }
        family(
            &mut out,
            "reprise_steps_total",
            "counter",
            "Step positions by what happened: executed or replayed.",
        );
        let _ = writeln!(
            out,
            "reprise_steps_total{{outcome=\"executed\"}} {}",
            load(&self.steps_executed)
        );
        let _ = writeln!(
            out,
            "reprise_steps_total{{outcome=\"replayed\"}} {}",
            load(&self.steps_replayed)
        );
        family(
            &mut out,
            "reprise_step_retries_total",
            "counter",
            "Failed step attempts that were retried.",
        );
        let _ = writeln!(
            out,
            "reprise_step_retries_total {}",
            load(&self.step_retries)
        );
        family(
            &mut out,
            "reprise_traps_total",
            "counter",
            "Traps by class and by role: the workflow's own instance or an isolated step's.",
        );
        for class in TRAP_CLASSES {
            let i = trap_index(class);
            let _ = writeln!(
                out,
                "reprise_traps_total{{class=\"{class}\",role=\"workflow\"}} {}",
                load(&self.traps[i])
            );
            let _ = writeln!(
                out,
                "reprise_traps_total{{class=\"{class}\",role=\"isolated_step\"}} {}",
                load(&self.isolated_traps[i])
            );
        }
        family(
            &mut out,
            "reprise_queue_depth",
            "gauge",
            "Workflows waiting (enqueued) and running (pending) per queue.",
        );
        for queue in queues {
            let _ = writeln!(
                out,
                "reprise_queue_depth{{queue=\"{}\",state=\"enqueued\"}} {}",
                queue.queue, queue.enqueued
            );
            let _ = writeln!(
                out,
                "reprise_queue_depth{{queue=\"{}\",state=\"pending\"}} {}",
                queue.queue, queue.pending
            );
        }
        family(
            &mut out,
            "reprise_checkpoint_latency_seconds",
            "histogram",
            "Time to commit one step outcome.",
        );
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BOUNDS_US.iter().zip(&self.checkpoint_buckets) {
            cumulative += load(bucket);
            let _ = writeln!(
                out,
                "reprise_checkpoint_latency_seconds_bucket{{le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            );
        }
        let count = load(&self.checkpoint_count);
        let _ = writeln!(
            out,
            "reprise_checkpoint_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "reprise_checkpoint_latency_seconds_sum {}",
            load(&self.checkpoint_sum_us) as f64 / 1e6
        );
        let _ = writeln!(out, "reprise_checkpoint_latency_seconds_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `instance` names configured instances elsewhere; where a trap happened is its role.
    #[test]
    fn traps_are_labelled_by_role_not_instance() {
        let metrics = Metrics::default();
        metrics.trapped(TrapClass::Panic);
        metrics.isolated_trapped(TrapClass::OutOfMemory);
        let text = metrics.render(&[], &[]);
        assert!(
            text.contains("reprise_traps_total{class=\"panic\",role=\"workflow\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("reprise_traps_total{class=\"out_of_memory\",role=\"isolated_step\"} 1"),
            "{text}"
        );
        assert!(!text.contains("instance="), "{text}");
    }
}
