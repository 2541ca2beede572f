//! Executor leases: a renewal takes or refreshes the executor's row, the listing counts the
//! PENDING workflows each owns, and a lease not renewed within its length is expired.

use reprise::store::{NewWorkflow, Store, now_ms};

use super::new_workflow;

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
    let executors = store.executors().await.expect("list");
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
    let executors = store.executors().await.expect("list again");
    assert!(
        executors[0].renewed_at >= before,
        "the renewal moved forward"
    );
    assert!(executors[1].expired(later), "{:?}", executors[1]);
    assert!(!executors[0].expired(executors[0].renewed_at + 5_000));
}
