//! Every kind of trap is contained, classified and stored with the workflow; the host survives
//! them all, and code that changes its durable calls on replay fails with a clear error.

use crate::common;
use crate::guests::CHAOS;

use common::{Harness, options, with_limits};
use reprise_host::{InstanceLimits, WorkflowStatus};

/// Each trap recovered once, then given up on: two executions, both classified.
async fn trapped(
    workflow: &str,
    input: &str,
    limits: InstanceLimits,
) -> reprise_host::WorkflowRecord {
    let mut h = Harness::new(with_limits(limits, 1)).await;
    let wf = h.run(CHAOS, workflow, input).await;
    assert_eq!(
        wf.status,
        WorkflowStatus::MaxRecoveryAttemptsExceeded,
        "{wf:?}"
    );
    assert_eq!(wf.executions, 2, "{wf:?}");
    wf
}

#[tokio::test]
async fn an_infinite_loop_ends_on_the_cpu_limit() {
    let limits = InstanceLimits {
        fuel: 50_000_000,
        ..InstanceLimits::default()
    };
    let wf = trapped("spin", "null", limits).await;
    assert_eq!(wf.trap_class.as_deref(), Some("cpu_limit"));
}

#[tokio::test]
async fn the_cpu_budget_bounds_each_step_and_stretch_not_the_whole_workflow() {
    let limits = InstanceLimits {
        fuel: 20_000_000,
        ..InstanceLimits::default()
    };
    // Twelve steps that each burn well under the budget, far over it together.
    let mut h = Harness::new(with_limits(limits, 1)).await;
    let wf = h.run(CHAOS, "chain", "[12, 1000000]").await;
    assert_eq!(wf.status, WorkflowStatus::Success, "{wf:?}");
    assert_eq!(wf.executions, 1, "{wf:?}");
    // One step over the budget is still a runaway, ended by the limit.
    let wf = trapped("chain", "[1, 100000000]", limits).await;
    assert_eq!(wf.trap_class.as_deref(), Some("cpu_limit"), "{wf:?}");
}

#[tokio::test]
async fn a_stack_overflow_is_contained() {
    let wf = trapped("recurse", "100000000", InstanceLimits::default()).await;
    assert_eq!(wf.trap_class.as_deref(), Some("stack_overflow"), "{wf:?}");
}

#[tokio::test]
async fn one_huge_stack_frame_is_a_stack_overflow() {
    let limits = InstanceLimits {
        memory_bytes: 128 << 20,
        ..InstanceLimits::default()
    };
    let wf = trapped("big_frame", "24", limits).await;
    assert_eq!(wf.trap_class.as_deref(), Some("stack_overflow"), "{wf:?}");
}

#[tokio::test]
pub(crate) async fn a_panic_is_classified_with_its_message() {
    let wf = trapped(
        "panic",
        r#""the sky is falling""#,
        InstanceLimits::default(),
    )
    .await;
    assert_eq!(wf.trap_class.as_deref(), Some("panic"));
    let message = wf.trap_message.unwrap_or_default();
    assert!(message.contains("the sky is falling"), "{message}");
}

#[tokio::test]
async fn unreachable_without_a_panic_is_its_own_class() {
    let wf = trapped("unreachable", "null", InstanceLimits::default()).await;
    assert_eq!(wf.trap_class.as_deref(), Some("unreachable"));
}

#[tokio::test]
async fn changed_durable_calls_on_replay_fail_the_workflow_as_non_determinism() {
    let mut h = Harness::new(options(3)).await;
    let wf = h.run(CHAOS, "nondeterministic", "null").await;
    assert_eq!(wf.status, WorkflowStatus::Error, "{wf:?}");
    let error = wf.error.unwrap_or_default();
    assert!(error.contains("non-determinism"), "{error}");
    assert!(
        error.contains("\"first\"") && error.contains("\"second\""),
        "names both steps: {error}"
    );
    assert_eq!(
        wf.executions, 2,
        "failed on the first recovery, not retried further"
    );
    assert_eq!(
        h.executions_of(&wf.id, "second"),
        0,
        "the mismatched step never ran"
    );
}

#[tokio::test]
async fn output_over_the_cap_is_an_error_and_nothing_is_recorded_as_output() {
    let limits = InstanceLimits {
        max_output_bytes: 1024,
        ..InstanceLimits::default()
    };
    let mut h = Harness::new(with_limits(limits, 1)).await;
    let wf = h.run(CHAOS, "big_output", "4096").await;
    assert_eq!(wf.status, WorkflowStatus::Error, "{wf:?}");
    assert_eq!(wf.output, None);
    let error = wf.error.unwrap_or_default();
    assert!(error.contains("exceeds the limit of 1024 bytes"), "{error}");

    let small = h.run(CHAOS, "big_output", "100").await;
    assert_eq!(small.status, WorkflowStatus::Success);
    assert_eq!(small.output.map(|o| o.len()), Some(102));
}

#[tokio::test]
async fn wasi_clocks_and_random_are_deterministic_per_workflow() {
    let mut hash_orders = Vec::new();
    for _ in 0..2 {
        let h = Harness::new(options(0)).await;
        let component = h.component(CHAOS).await;
        let wf = h
            .runtime
            .run(&component, "clock", "null", Some("same-id".into()))
            .await
            .expect("run");
        assert_eq!(wf.status, WorkflowStatus::Success, "{wf:?}");
        let output: serde_json::Value =
            serde_json::from_str(wf.output.as_deref().unwrap_or("null")).expect("json");
        assert_eq!(
            output["system_time_ms"].as_i64(),
            Some(wf.created_at),
            "the WASI wall clock is virtual: it starts at the workflow's creation time"
        );
        hash_orders.push(output["hash_map"].clone());
    }
    assert_eq!(
        hash_orders[0], hash_orders[1],
        "HashMap order is seeded by the workflow id, not by chance"
    );
}

#[tokio::test]
async fn a_durable_sleep_records_its_wake_up_time() {
    let mut h = Harness::new(options(0)).await;
    let wf = h.run(CHAOS, "sleepy", "10").await;
    assert_eq!(wf.status, WorkflowStatus::Success);
    assert_eq!(wf.output.as_deref(), Some(r#""awake""#));
    let steps = h.steps(&wf.id).await;
    assert_eq!(steps[0].name, "reprise.sleep");
    let wake_at: i64 = steps[0]
        .output
        .as_deref()
        .unwrap_or("0")
        .parse()
        .expect("wake time recorded");
    assert!(wake_at >= wf.created_at + 10);
}
