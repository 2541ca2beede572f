//! Each row of DESIGN.md's failure-semantics table (all but the Postgres one), against real
//! guests on a real SQLite file: statuses, attempt counts, recorded outputs, and how many times
//! each step's code actually ran. The scenarios listed in `on_each_backend!` below run on a
//! fresh Postgres database too (`postgres::<scenario>`, next to `sqlite::<scenario>`).

use crate::common;
use crate::guests::{CHAOS, FIB, MEMHOG, PROVISION};

use common::backend::{Backend, on_each_backend};
use common::{Harness, options, with_limits};
use reprise_host::{InstanceLimits, RuntimeEvent, RuntimeOptions, TrapClass, WorkflowStatus};

const LIMIT: u64 = 32 << 20;

fn limited(max_recovery_attempts: u32) -> RuntimeOptions {
    let limits = InstanceLimits {
        memory_bytes: LIMIT,
        ..InstanceLimits::default()
    };
    with_limits(limits, max_recovery_attempts)
}

on_each_backend!(
    workflow_out_of_memory_is_recovered_and_completed_steps_are_not_rerun,
    starting_an_existing_id_returns_that_workflow_and_runs_nothing,
);

#[tokio::test]
pub(crate) async fn step_error_is_retried_with_backoff_then_exhausted_and_catchable() {
    let mut h = Harness::new(options(3)).await;
    let wf = h.run(PROVISION, "provision", r#""eu-west""#).await;

    assert_eq!(wf.status, WorkflowStatus::Success, "{wf:?}");
    assert_eq!(
        wf.output.as_deref(),
        Some("true"),
        "the workflow caught MaxStepRetriesExceeded"
    );
    assert_eq!(wf.executions, 1, "a step error is not a trap: no recovery");
    assert_eq!(
        h.executions_of(&wf.id, "provision_vm"),
        3,
        "3 attempts, as the policy says"
    );

    let steps = h.steps(&wf.id).await;
    assert_eq!(steps.len(), 1);
    let step = &steps[0];
    assert_eq!(step.attempts, 3);
    let failure = step.error.as_ref().expect("recorded failure");
    assert!(failure.retries_exhausted);
    assert_eq!(failure.attempt_errors.len(), 3);
    for (i, error) in failure.attempt_errors.iter().enumerate() {
        assert!(
            error.contains(&format!("attempt {}/3", i + 1)),
            "attempt number visible to the step: {error}"
        );
    }
    // interval 20 ms, rate 2.0: 20 + 40 ms of backoff between the three attempts.
    assert!(
        step.completed_at - step.started_at >= 60,
        "backoff was waited: {step:?}"
    );
}

#[tokio::test]
async fn step_error_without_retries_fails_the_workflow_once() {
    let mut h = Harness::new(options(3)).await;
    let wf = h.run(PROVISION, "provision_once", r#""eu-west""#).await;
    assert_eq!(wf.status, WorkflowStatus::Error, "{wf:?}");
    assert!(
        wf.error.as_deref().unwrap_or("").contains("no capacity"),
        "{wf:?}"
    );
    assert_eq!(wf.executions, 1);
    let steps = h.steps(&wf.id).await;
    assert_eq!(steps[0].attempts, 1);
    assert!(!steps[0].error.as_ref().expect("failure").retries_exhausted);
}

#[tokio::test]
pub(crate) async fn step_out_of_memory_recovers_by_replay_bounded_by_max_recovery_attempts() {
    let mut h = Harness::new(limited(3)).await;
    let wf = h.run(MEMHOG, "step_oom", "64").await;

    assert_eq!(
        wf.status,
        WorkflowStatus::MaxRecoveryAttemptsExceeded,
        "{wf:?}"
    );
    assert_eq!(wf.executions, 4, "one execution plus three recoveries");
    assert_eq!(wf.trap_class.as_deref(), Some("out_of_memory"));
    assert!(
        wf.error
            .as_deref()
            .unwrap_or("")
            .contains("exceeded 3 recovery attempts"),
        "{wf:?}"
    );
    assert_eq!(
        h.executions_of(&wf.id, "small"),
        2,
        "completed steps never run twice"
    );
    assert_eq!(
        h.replays_of(&wf.id, "small"),
        6,
        "replayed in each of 3 recoveries"
    );
    assert_eq!(
        h.executions_of(&wf.id, "hog"),
        4,
        "the step that ran out of memory re-ran each time"
    );
    let traps = h
        .events()
        .iter()
        .filter(|e| {
            matches!(
                e,
                RuntimeEvent::ExecutionTrapped {
                    class: TrapClass::OutOfMemory,
                    ..
                }
            )
        })
        .count();
    assert_eq!(traps, 4);
    let steps = h.steps(&wf.id).await;
    assert_eq!(
        steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["small", "small"]
    );
}

#[tokio::test]
async fn isolated_step_out_of_memory_is_a_step_error_and_the_workflow_lives_on() {
    let mut h = Harness::new(limited(3)).await;
    let wf = h.run(MEMHOG, "isolated_oom", "64").await;

    assert_eq!(wf.status, WorkflowStatus::Success, "{wf:?}");
    assert_eq!(
        wf.output.as_deref(),
        Some(r#""contained after 3 attempts""#)
    );
    assert_eq!(wf.executions, 1, "the workflow's instance never trapped");
    assert_eq!(wf.trap_class, None);
    let isolated_traps = h
        .events()
        .iter()
        .filter(|e| {
            matches!(
                e,
                RuntimeEvent::IsolatedStepTrapped {
                    class: TrapClass::OutOfMemory,
                    ..
                }
            )
        })
        .count();
    assert_eq!(
        isolated_traps, 3,
        "each attempt ran in a fresh instance that ran out of memory"
    );
    let steps = h.steps(&wf.id).await;
    let names: Vec<_> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["small", "hog_isolated", "small"],
        "the workflow went on after the step"
    );
    let failure = steps[1]
        .error
        .as_ref()
        .expect("isolated step failure recorded");
    assert!(failure.retries_exhausted);
    assert!(failure.message.contains("out of memory"), "{failure:?}");
}

#[tokio::test]
async fn workflow_returning_an_error_ends_error_without_recovery() {
    let mut h = Harness::new(options(3)).await;
    let wf = h.run(MEMHOG, "fails", "null").await;
    assert_eq!(wf.status, WorkflowStatus::Error);
    assert_eq!(wf.error.as_deref(), Some("deliberate failure"));
    assert_eq!(wf.executions, 1);
    assert_eq!(h.executions_of(&wf.id, "small"), 1);
}

/// A scenario of [`on_each_backend!`]: a test on SQLite and one on Postgres.
async fn workflow_out_of_memory_is_recovered_and_completed_steps_are_not_rerun(backend: Backend) {
    let mut h = backend.harness(limited(3)).await;
    let wf = h.run(MEMHOG, "oom_once", "64").await;

    assert_eq!(wf.status, WorkflowStatus::Success, "{wf:?}");
    assert_eq!(wf.output.as_deref(), Some(r#""recovered""#));
    assert_eq!(wf.executions, 2, "one trap, one recovery");
    assert_eq!(
        wf.trap_class.as_deref(),
        Some("out_of_memory"),
        "the trap is kept with the workflow"
    );
    assert_eq!(
        h.executions_of(&wf.id, "small"),
        3,
        "small(1), small(2) once each, small(3) after recovery"
    );
    assert_eq!(h.replays_of(&wf.id, "small"), 2);
    assert_eq!(h.steps(&wf.id).await.len(), 3);
}

#[tokio::test]
async fn workflow_out_of_memory_every_time_stops_at_the_recovery_bound() {
    let mut h = Harness::new(limited(2)).await;
    let wf = h.run(MEMHOG, "workflow_oom", "64").await;
    assert_eq!(
        wf.status,
        WorkflowStatus::MaxRecoveryAttemptsExceeded,
        "{wf:?}"
    );
    assert_eq!(wf.executions, 3);
    assert_eq!(
        h.executions_of(&wf.id, "small"),
        2,
        "completed steps ran once across 3 executions"
    );
}

#[tokio::test]
async fn out_of_memory_is_deterministic_and_a_larger_limit_succeeds() {
    let mut messages = Vec::new();
    for _ in 0..5 {
        let mut h = Harness::new(limited(0)).await;
        let wf = h.run(MEMHOG, "step_oom", "40").await;
        assert_eq!(wf.status, WorkflowStatus::MaxRecoveryAttemptsExceeded);
        assert_eq!(wf.trap_class.as_deref(), Some("out_of_memory"));
        let steps = h.steps(&wf.id).await;
        assert_eq!(
            steps.len(),
            2,
            "trapped at the same step: after small, small"
        );
        messages.push(wf.trap_message.clone().expect("trap message"));
    }
    assert!(
        messages.windows(2).all(|w| w[0] == w[1]),
        "same byte count every run: {messages:?}"
    );

    let roomy = with_limits(
        InstanceLimits {
            memory_bytes: 256 << 20,
            ..InstanceLimits::default()
        },
        0,
    );
    let mut h = Harness::new(roomy).await;
    let wf = h.run(MEMHOG, "step_oom", "40").await;
    assert_eq!(wf.status, WorkflowStatus::Success, "{wf:?}");
    assert_eq!(h.steps(&wf.id).await.len(), 3);
}

/// A scenario of [`on_each_backend!`]: a test on SQLite and one on Postgres.
async fn starting_an_existing_id_returns_that_workflow_and_runs_nothing(backend: Backend) {
    let mut h = backend.harness(options(3)).await;
    let component = h.component(FIB).await;
    let first = h
        .runtime
        .run(&component, "fib", "10", Some("fib-10".into()))
        .await
        .expect("run");
    assert_eq!(first.status, WorkflowStatus::Success, "{first:?}");
    assert_eq!(first.output.as_deref(), Some("55"));
    assert_eq!(first.executions, 1);
    assert!(first.started_at.is_some(), "{first:?}");
    let steps = h.steps("fib-10").await;
    assert_eq!(steps.len(), 10, "{steps:?}");
    assert!(
        steps
            .iter()
            .all(|s| s.name == "fib_step" && s.error.is_none())
    );
    assert_eq!(
        steps.iter().map(|s| s.function_id).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    let executed = h.executions_of("fib-10", "fib_step");
    assert_eq!(executed, 10);

    let again = h
        .runtime
        .run(&component, "fib", "10", Some("fib-10".into()))
        .await
        .expect("run");
    assert_eq!(again, first, "the same record, not a second execution");
    assert_eq!(h.executions_of("fib-10", "fib_step"), executed);
    assert_eq!(h.replays_of("fib-10", "fib_step"), 0);
    // The component is pinned by digest in the database.
    let bytes = h
        .store
        .get_component(&first.app_version)
        .await
        .expect("get component");
    assert!(bytes.is_some_and(|b| !b.is_empty()));
}

#[tokio::test]
async fn run_with_the_id_of_a_pending_workflow_resumes_it() {
    let mut h = Harness::new(options(3)).await;
    let component = h.component(FIB).await;
    let started = h
        .runtime
        .start(&component, "fib", "12", Some("resume-me".into()))
        .await
        .expect("start");
    assert!(started.created);
    assert_eq!(
        started.record.status,
        WorkflowStatus::Pending,
        "created, not yet run"
    );

    let done = h
        .runtime
        .run(&component, "fib", "12", Some("resume-me".into()))
        .await
        .expect("run");
    assert_eq!(done.status, WorkflowStatus::Success);
    assert_eq!(done.output.as_deref(), Some("144"));
    assert_eq!(done.executions, 1);
    assert_eq!(h.executions_of("resume-me", "fib_step"), 12);
}

/// A step left out of `export!` registered itself: an isolated one runs in its fresh
/// instance, and the component's definitions list it.
#[tokio::test]
async fn a_step_missing_from_export_is_registered_all_the_same() {
    let mut harness = Harness::new(options(10)).await;
    let component = harness.component(CHAOS).await;
    let unlisted = component
        .definitions
        .steps
        .iter()
        .find(|s| s.name == "unlisted")
        .expect("the unlisted step is defined");
    assert!(unlisted.isolated);
    let record = harness.run(CHAOS, "calls_unlisted", "null").await;
    assert_eq!(record.status, WorkflowStatus::Success, "{:?}", record.error);
    assert_eq!(record.output.as_deref(), Some("1"));
    assert_eq!(harness.executions_of(&record.id, "unlisted"), 1);
}
