//! What the host counts for `/metrics`: Prometheus text, no registry crate. Counters are
//! atomics bumped on the hot path (a relaxed add each); database-derived gauges (workflows by
//! status, queue depth) are read when scraped.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::limits::TrapClass;
use crate::quotas::Quota;
use reprise_store::{QueueDepth, WorkflowStatus};

const TRAP_CLASSES: [TrapClass; 6] = TrapClass::ALL;

/// Upper bounds (µs) of the latency buckets: from a page-cache commit to a minute-long step.
const LATENCY_BOUNDS_US: [u64; 19] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/// Distinct label values one labelled histogram keeps; step names come from guests, so later
/// ones share the series `other` rather than grow the scrape without bound.
const MAX_SERIES: usize = 200;

/// One latency histogram.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if let Some(bucket) = LATENCY_BOUNDS_US.iter().position(|bound| us <= *bound) {
            bump(&self.buckets[bucket]);
        }
        bump(&self.count);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The series of `name` with `labels` (`key="value"` pairs, already escaped, or empty).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BOUNDS_US.iter().zip(&self.buckets) {
            cumulative += load(bucket);
            let le = *bound as f64 / 1e6;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let count = load(&self.count);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = load(&self.sum_us) as f64 / 1e6;
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {count}", braces(labels));
    }
}

/// Histograms by the value of one label.
#[derive(Default)]
struct Labelled {
    series: Mutex<BTreeMap<String, Arc<Histogram>>>,
}

impl Labelled {
    fn observe(&self, value: &str, latency: Duration) {
        let histogram = {
            let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
            let key = if series.len() >= MAX_SERIES && !series.contains_key(value) {
                "other"
            } else {
                value
            };
            series.entry(key.to_string()).or_default().clone()
        };
        histogram.observe(latency);
    }

    /// How many observations `value` has had and their mean, when it has had any.
    fn summary(&self, value: &str) -> Option<(u64, Duration)> {
        let series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let histogram = series.get(value)?;
        let count = histogram.count.load(Ordering::Relaxed);
        let sum_us = histogram.sum_us.load(Ordering::Relaxed);
        (count > 0).then(|| (count, Duration::from_micros(sum_us / count)))
    }

    fn render(&self, out: &mut String, name: &str, label: &str) {
        let series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        for (value, histogram) in series.iter() {
            histogram.render(out, name, &format!("{label}=\"{}\"", escape(value)));
        }
    }
}

/// A label value as Prometheus's text format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

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
    quota_refusals: [AtomicU64; Quota::ALL.len()],
    checkpoints: Histogram,
    /// From a step's first attempt starting to its outcome committed, by step name.
    step_durations: Labelled,
    /// From enqueue to the dispatcher starting the workflow, by queue.
    queue_waits: Labelled,
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
    pub(crate) fn quota_refused(&self, quota: Quota) {
        let i = Quota::ALL.iter().position(|q| *q == quota).unwrap_or(0);
        bump(&self.quota_refusals[i]);
    }

    /// Records how long one checkpoint took to commit.
    pub(crate) fn checkpoint(&self, latency: Duration) {
        self.checkpoints.observe(latency);
    }

    /// Records how long a step took, all its attempts and backoffs included.
    pub(crate) fn step_duration(&self, step: &str, duration: Duration) {
        self.step_durations.observe(step, duration);
    }

    /// Workflows this runtime started from `queue`, and their mean wait from enqueue.
    pub fn queue_starts(&self, queue: &str) -> Option<(u64, Duration)> {
        self.queue_waits.summary(queue)
    }

    /// Records how long a workflow waited on `queue` before it started.
    pub(crate) fn enqueue_to_start(&self, queue: &str, wait: Duration) {
        self.queue_waits.observe(queue, wait);
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
            "reprise_quota_refusals_total",
            "counter",
            "Starts, child starts and writes refused by an instance's quota, by quota.",
        );
        for (quota, count) in Quota::ALL.iter().zip(&self.quota_refusals) {
            let _ = writeln!(
                out,
                "reprise_quota_refusals_total{{quota=\"{}\"}} {}",
                quota.as_str(),
                load(count)
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
        self.checkpoints
            .render(&mut out, "reprise_checkpoint_latency_seconds", "");
        family(
            &mut out,
            "reprise_step_duration_seconds",
            "histogram",
            "From a step's first attempt to its committed outcome, retries included, by step.",
        );
        self.step_durations
            .render(&mut out, "reprise_step_duration_seconds", "step");
        family(
            &mut out,
            "reprise_enqueue_to_start_seconds",
            "histogram",
            "From a workflow's enqueue to its start by a dispatcher, by queue.",
        );
        self.queue_waits
            .render(&mut out, "reprise_enqueue_to_start_seconds", "queue");
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

    #[test]
    fn step_durations_and_queue_waits_are_histograms_by_label() {
        let metrics = Metrics::default();
        metrics.step_duration("charge", Duration::from_millis(3));
        metrics.step_duration("charge", Duration::from_millis(30));
        metrics.enqueue_to_start("emails", Duration::from_micros(400));
        let text = metrics.render(&[], &[]);
        for line in [
            "reprise_step_duration_seconds_bucket{step=\"charge\",le=\"0.005\"} 1",
            "reprise_step_duration_seconds_bucket{step=\"charge\",le=\"+Inf\"} 2",
            "reprise_step_duration_seconds_count{step=\"charge\"} 2",
            "reprise_step_duration_seconds_sum{step=\"charge\"} 0.033",
            "reprise_enqueue_to_start_seconds_bucket{queue=\"emails\",le=\"0.0005\"} 1",
            "reprise_checkpoint_latency_seconds_count 0",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }

    #[test]
    fn guest_chosen_step_names_are_escaped_and_bounded() {
        let metrics = Metrics::default();
        metrics.step_duration("a\"b\\c\nd", Duration::from_millis(1));
        for i in 0..MAX_SERIES + 50 {
            metrics.step_duration(&format!("s{i}"), Duration::from_millis(1));
        }
        let text = metrics.render(&[], &[]);
        assert!(text.contains("step=\"a\\\"b\\\\c\\nd\""), "{text}");
        let series = text
            .lines()
            .filter(|l| l.starts_with("reprise_step_duration_seconds_count"))
            .count();
        assert_eq!(series, MAX_SERIES + 1, "200 names and `other`");
        assert!(text.contains("reprise_step_duration_seconds_count{step=\"other\"} 51"));
    }
}
