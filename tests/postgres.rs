//! The Postgres backend under the real runtime: real guests (as the SQLite tests run them) on a
//! fresh database of a real, throwaway Postgres cluster. What every store must do is checked on
//! Postgres by the contract suite (tests/store_contract.rs).
//!
//! The tests share one cluster per test process (see `common/postgres.rs`). Where Postgres
//! cannot be started they fail, saying what is missing.

mod common;

use std::sync::Arc;

use common::{Harness, options, with_limits};
use reprise::store::{Store, open_store};
use reprise::{Durability, InstanceLimits, RuntimeOptions, WorkflowStatus};

/// A store on a fresh database named `name`.
async fn store(name: &str) -> Arc<dyn Store> {
    let url = common::postgres::database(name).await;
    open_store(&url, Durability::Synced)
        .await
        .expect("open postgres store")
}

#[tokio::test]
async fn fib_runs_and_an_existing_id_returns_the_same_record() {
    let mut h = Harness::with_store(store("fib").await, options(3)).await;
    let component = h.component("fib").await;
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
async fn workflow_out_of_memory_is_recovered_by_replay() {
    let limited: RuntimeOptions = with_limits(
        InstanceLimits {
            memory_bytes: 32 << 20,
            ..InstanceLimits::default()
        },
        3,
    );
    let mut h = Harness::with_store(store("oom").await, limited).await;
    let wf = h.run("memhog", "oom_once", "64").await;

    assert_eq!(wf.status, WorkflowStatus::Success, "{wf:?}");
    assert_eq!(wf.output.as_deref(), Some(r#""recovered""#));
    assert_eq!(wf.executions, 2, "one trap, one recovery");
    assert_eq!(wf.trap_class.as_deref(), Some("out_of_memory"));
    assert_eq!(
        h.executions_of(&wf.id, "small"),
        3,
        "small(1), small(2) once each, small(3) after recovery"
    );
    assert_eq!(h.replays_of(&wf.id, "small"), 2);
    assert_eq!(h.steps(&wf.id).await.len(), 3);
}
