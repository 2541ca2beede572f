//! Executor leases: a renewal takes or refreshes the executor's row, the listing counts the
//! PENDING workflows each owns, and a lease not renewed within its length is expired.

use reprise_host::store::{
    Lapsed, NewWorkflow, StepRecord, Store, StoreError, TrapRecord, WorkflowEnd, WorkflowStatus,
    now_ms,
};

use super::{ids, new_workflow, step, trap};

fn owned_by(id: &str, executor: &str) -> NewWorkflow {
    NewWorkflow {
        executor_id: executor.into(),
        begin_execution: true,
        ..new_workflow(id)
    }
}

pub async fn leases_are_renewed_and_list_what_each_executor_owns(store: &dyn Store) {
    for (id, executor) in [("a1", "host-a"), ("a2", "host-a"), ("b1", "host-b")] {
        store
            .insert_workflow(&owned_by(id, executor))
            .await
            .expect("insert");
    }
    let started = now_ms();
    store
        .renew_lease("host-a", started, 5_000)
        .await
        .expect("lease a");
    store
        .renew_lease("host-b", started, 50)
        .await
        .expect("lease b");
    let executors = store.executors(None).await.expect("list");
    let ids: Vec<_> = executors.iter().map(|e| e.executor_id.as_str()).collect();
    assert_eq!(ids, ["host-a", "host-b"]);
    assert_eq!(executors[0].pending, 2, "host-a owns two PENDING workflows");
    assert_eq!(executors[1].pending, 1);
    assert_eq!(executors[0].started_at, started);
    assert!(!executors[0].expired(now_ms()), "just renewed");

    // host-b stops renewing: past its 50 ms lease it is expired, host-a renewed is not.
    let before = executors[0].renewed_at;
    let later = executors[1].renewed_at + 51;
    store
        .renew_lease("host-a", started, 5_000)
        .await
        .expect("renew a");
    let executors = store.executors(None).await.expect("list again");
    assert!(
        executors[0].renewed_at >= before,
        "the renewal moved forward"
    );
    assert!(executors[1].expired(later), "{:?}", executors[1]);
    assert!(!executors[0].expired(executors[0].renewed_at + 5_000));
}

/// A lease that has already run out when it is taken: the executor counts as dead at once.
const RUN_OUT: i64 = -1_000;

pub async fn writes_under_a_stale_epoch_are_refused(store: &dyn Store) {
    store
        .insert_workflow(&owned_by("wf", "host-a"))
        .await
        .expect("insert");
    let first = store.get_workflow("wf").await.expect("get").expect("row");
    // host-b takes the workflow over: host-a's execution holds the old epoch from now on.
    let second = store
        .begin_execution("wf", "host-b", first.epoch)
        .await
        .expect("begin");
    assert!(second.epoch > first.epoch);
    let stale = |mut step: StepRecord| {
        step.epoch = Some(first.epoch);
        step
    };
    let refused = store.record_step(&stale(step("wf", 0))).await;
    assert!(
        matches!(&refused, Err(StoreError::Fenced { epoch, current, .. })
            if *epoch == first.epoch && *current == second.epoch),
        "{refused:?}"
    );
    let trap = TrapRecord {
        epoch: Some(first.epoch),
        ..trap("panic", "late")
    };
    let refused = store.record_trap("wf", &trap).await;
    assert!(
        matches!(refused, Err(StoreError::Fenced { .. })),
        "{refused:?}"
    );
    let end = WorkflowEnd::Success("1".into());
    let refused = store.finish_workflow("wf", &end, Some(first.epoch)).await;
    assert!(
        matches!(refused, Err(StoreError::Fenced { .. })),
        "{refused:?}"
    );
    // A second begin from what host-a read is refused too: one owner at a time.
    let refused = store.begin_execution("wf", "host-a", first.epoch).await;
    assert!(
        matches!(refused, Err(StoreError::Fenced { .. })),
        "{refused:?}"
    );

    // Nothing of host-a's landed; host-b writes under its epoch.
    let record = store.get_workflow("wf").await.expect("get").expect("row");
    assert_eq!((record.status, record.traps), (WorkflowStatus::Pending, 0));
    assert!(store.steps("wf").await.expect("steps").is_empty());
    let mut own = step("wf", 0);
    own.epoch = Some(second.epoch);
    store.record_step(&own).await.expect("own step");
    let ended = store
        .finish_workflow("wf", &end, Some(second.epoch))
        .await
        .expect("finish");
    assert_eq!(ended.status, WorkflowStatus::Success);
    // Once ended, a stale finish changes nothing and hears the first ending.
    let late = store
        .finish_workflow("wf", &WorkflowEnd::Error("late".into()), Some(first.epoch))
        .await
        .expect("ended");
    assert_eq!(late.output.as_deref(), Some("1"));
}

pub async fn a_dead_executors_pending_work_is_adopted_once(store: &dyn Store) {
    for (id, executor) in [
        ("d1", "dead"),
        ("d2", "dead"),
        ("d3", "dead"),
        ("l1", "live"),
    ] {
        store
            .insert_workflow(&owned_by(id, executor))
            .await
            .expect("insert");
    }
    let finished = owned_by("d0", "dead");
    store.insert_workflow(&finished).await.expect("insert");
    store
        .finish_workflow("d0", &WorkflowEnd::Success("0".into()), None)
        .await
        .expect("finish");
    let now = now_ms();
    store.renew_lease("dead", now, RUN_OUT).await.expect("dead");
    store.renew_lease("live", now, 60_000).await.expect("live");
    let before = store.get_workflow("d1").await.expect("get").expect("row");

    // A live executor's work is never adopted.
    let none = store
        .adopt_workflows("live", "adopter", 10, None)
        .await
        .expect("adopt live");
    assert!(none.is_empty(), "{none:?}");

    let first = store
        .adopt_workflows("dead", "adopter", 2, None)
        .await
        .expect("adopt");
    assert_eq!(ids(first.clone()), ["d1", "d2"], "oldest first, at most 2");
    assert!(first.iter().all(|w| w.executor_id == "adopter"));
    assert!(first[0].epoch > before.epoch);
    let rest = store
        .adopt_workflows("dead", "other", 10, None)
        .await
        .expect("adopt rest");
    assert_eq!(ids(rest), ["d3"], "the ended d0 and adopted ones stay");
    assert!(
        store
            .adopt_workflows("dead", "other", 10, None)
            .await
            .expect("nothing left")
            .is_empty()
    );
    // What the dead executor still writes for them is refused.
    let mut late = step("d1", 0);
    late.epoch = Some(before.epoch);
    let refused = store.record_step(&late).await;
    assert!(
        matches!(refused, Err(StoreError::Fenced { .. })),
        "{refused:?}"
    );

    // An executor that renewed its lease keeps its work.
    store
        .insert_workflow(&owned_by("b1", "back"))
        .await
        .expect("insert");
    store.renew_lease("back", now, RUN_OUT).await.expect("back");
    store
        .renew_lease("back", now, 60_000)
        .await
        .expect("renewed");
    assert!(
        store
            .adopt_workflows("back", "adopter", 10, None)
            .await
            .expect("adopt back")
            .is_empty()
    );
}

/// Work left PENDING by an executor that never held a lease (a `reprise run` of an older
/// version) is listed as expired and adopted; `only` takes just the one named.
pub async fn work_of_an_executor_without_a_lease_is_adoptable(store: &dyn Store) {
    for id in ["n1", "n2"] {
        store
            .insert_workflow(&owned_by(id, "never-leased"))
            .await
            .expect("insert");
    }
    let executors = store.executors(None).await.expect("list");
    let listed = executors
        .iter()
        .find(|e| e.executor_id == "never-leased")
        .expect("an owner without a lease is listed");
    assert_eq!(listed.pending, 2);
    assert!(listed.expired(now_ms()), "no lease is an expired lease");

    // Nobody adopts from itself.
    assert!(
        store
            .adopt_workflows("never-leased", "never-leased", 10, None)
            .await
            .expect("adopt self")
            .is_empty()
    );
    let one = store
        .adopt_workflows("never-leased", "adopter", 10, Some("n2"))
        .await
        .expect("adopt one");
    assert_eq!(ids(one), ["n2"], "only the one named");
    let rest = store
        .adopt_workflows("never-leased", "adopter", 10, None)
        .await
        .expect("adopt rest");
    assert_eq!(ids(rest), ["n1"]);
}

/// What the adoption loop reads: every lease, PENDING work counted only where the lease ran
/// out (a live host's many parked workflows are not counted each round), and executors that
/// never took a lease only when asked.
pub async fn the_adoption_view_counts_only_lapsed_work(store: &dyn Store) {
    let now = now_ms();
    store
        .renew_lease("alive", now, 60_000)
        .await
        .expect("alive");
    store.renew_lease("gone", now, 1_000).await.expect("gone");
    // Both renewed now; judged five seconds on, only the one-second lease has run out.
    let later = now_ms() + 5_000;
    for (id, owner) in [
        ("a1", "alive"),
        ("a2", "alive"),
        ("g1", "gone"),
        ("o1", "orphan"),
    ] {
        store
            .insert_workflow(&owned_by(id, owner))
            .await
            .expect("insert");
    }
    let pending = |listed: &[reprise_host::store::ExecutorRecord], id: &str| {
        listed
            .iter()
            .find(|e| e.executor_id == id)
            .map(|e| e.pending)
    };
    let all = store.executors(None).await.expect("all");
    assert_eq!(
        (
            pending(&all, "alive"),
            pending(&all, "gone"),
            pending(&all, "orphan")
        ),
        (Some(2), Some(1), Some(1))
    );
    let lapsed = Lapsed {
        now: later,
        orphans: false,
    };
    let view = store.executors(Some(lapsed)).await.expect("lapsed");
    assert_eq!(
        (
            pending(&view, "alive"),
            pending(&view, "gone"),
            pending(&view, "orphan")
        ),
        (Some(0), Some(1), None),
        "the live lease is listed (it shares the work) but not counted"
    );
    let with_orphans = Lapsed {
        now: later,
        orphans: true,
    };
    let view = store.executors(Some(with_orphans)).await.expect("lapsed");
    assert_eq!(pending(&view, "orphan"), Some(1));
}
