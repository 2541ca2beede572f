//! Retention: ended workflows older than a cutoff are deleted with their steps, in batches;
//! nothing active, and no child an active parent may still await.

use reprise_host::store::{NewWorkflow, Store, WorkflowEnd, WorkflowStatus, now_ms};

use super::{new_workflow, queued, step};

async fn ended(store: &dyn Store, id: &str, end: WorkflowEnd) {
    store
        .insert_workflow(&new_workflow(id))
        .await
        .expect("insert");
    store.record_step(&step(id, 0)).await.expect("step");
    store.finish_workflow(id, &end, None).await.expect("finish");
}

pub async fn retention_deletes_only_ended_workflows_older_than_the_cutoff(store: &dyn Store) {
    ended(store, "ok", WorkflowEnd::Success("1".into())).await;
    ended(store, "failed", WorkflowEnd::Error("no".into())).await;
    store
        .insert_workflow(&new_workflow("cancelled"))
        .await
        .expect("insert");
    store
        .record_step(&step("cancelled", 0))
        .await
        .expect("step");
    store.cancel_workflow("cancelled").await.expect("cancel");
    store
        .insert_workflow(&new_workflow("running"))
        .await
        .expect("insert");
    store.record_step(&step("running", 0)).await.expect("step");
    store
        .insert_workflow(&queued("waiting", "q", 0))
        .await
        .expect("insert");
    // A finished child of a running parent: the parent may still await it.
    store
        .insert_workflow(&new_workflow("parent"))
        .await
        .expect("insert");
    let child = NewWorkflow {
        parent_workflow_id: Some("parent".into()),
        ..new_workflow("child")
    };
    store.insert_workflow(&child).await.expect("insert");
    store
        .finish_workflow("child", &WorkflowEnd::Success("3".into()), None)
        .await
        .expect("finish");

    // Nothing ended before the epoch.
    assert_eq!(store.delete_ended(0, 100).await.expect("gc"), 0);

    // Everything ended so far is older than a cutoff in the future: two per batch.
    let cutoff = now_ms() + 60_000;
    assert_eq!(store.delete_ended(cutoff, 2).await.expect("gc"), 2);
    assert_eq!(store.delete_ended(cutoff, 2).await.expect("gc"), 1);
    assert_eq!(store.delete_ended(cutoff, 2).await.expect("gc"), 0);
    for gone in ["ok", "failed", "cancelled"] {
        assert!(
            store.get_workflow(gone).await.expect("get").is_none(),
            "{gone}"
        );
        assert!(
            store.steps(gone).await.expect("steps").is_empty(),
            "{gone}'s steps"
        );
    }
    for kept in ["running", "waiting", "parent", "child"] {
        assert!(
            store.get_workflow(kept).await.expect("get").is_some(),
            "{kept}"
        );
    }
    assert_eq!(store.steps("running").await.expect("steps").len(), 1);

    // Once the parent ends, its child goes with it.
    store
        .finish_workflow("parent", &WorkflowEnd::Success("4".into()), None)
        .await
        .expect("finish");
    let cutoff = now_ms() + 60_000;
    assert_eq!(store.delete_ended(cutoff, 100).await.expect("gc"), 2);

    // A deleted id starts a new workflow that sees none of the old one's steps.
    let again = store
        .insert_workflow(&new_workflow("ok"))
        .await
        .expect("insert");
    assert!(again.created, "a new workflow, not the deleted one");
    assert_eq!(again.record.status, WorkflowStatus::Pending);
    assert!(store.steps("ok").await.expect("steps").is_empty());
}

/// A large deletion runs in batches while another workflow keeps committing steps: every
/// write succeeds, and only the ended workflows go.
pub async fn retention_in_batches_lets_writers_through(store: &dyn Store) {
    for i in 0..1_200 {
        let id = format!("old-{i}");
        store
            .insert_workflow(&new_workflow(&id))
            .await
            .expect("insert");
        store
            .finish_workflow(&id, &WorkflowEnd::Success("1".into()), None)
            .await
            .expect("finish");
    }
    store
        .insert_workflow(&new_workflow("busy"))
        .await
        .expect("insert");
    let cutoff = now_ms() + 60_000;
    let writes = async {
        for function_id in 0..200 {
            store
                .record_step(&step("busy", function_id))
                .await
                .expect("a write during gc");
        }
    };
    let gc = async {
        let mut total = 0;
        loop {
            let deleted = store.delete_ended(cutoff, 100).await.expect("gc");
            total += deleted;
            if deleted < 100 {
                return total;
            }
        }
    };
    let ((), deleted) = tokio::join!(writes, gc);
    assert_eq!(deleted, 1_200);
    assert_eq!(store.steps("busy").await.expect("steps").len(), 200);
    assert_eq!(
        store
            .get_workflow("busy")
            .await
            .expect("get")
            .map(|w| w.status),
        Some(WorkflowStatus::Pending)
    );
}
