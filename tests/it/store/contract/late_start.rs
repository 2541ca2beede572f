//! A start whose code ran before its row was written: the row it ran on is the row written,
//! and one that ended before it made a durable call is written ended, in one commit.

use reprise_host::store::{NewWorkflow, Store, WorkflowEnd, WorkflowStatus, now_ms};

use super::new_workflow;

fn started(id: &str) -> NewWorkflow {
    NewWorkflow {
        begin_execution: true,
        timeout_ms: Some(60_000),
        ..new_workflow(id)
    }
}

pub async fn a_start_written_late_is_the_row_it_ran_on(store: &dyn Store) {
    // Written well after it began: every time in the row is the one it ran with.
    let at = now_ms() - 5_000;
    let new = started("late-running");
    let ran_on = new.record_at(at);
    let inserted = store.insert_workflow_at(&new, at, None).await.unwrap();
    assert!(inserted.created);
    assert_eq!(inserted.record, ran_on);
    assert_eq!(
        store.get_workflow(&new.id).await.unwrap(),
        Some(ran_on.clone())
    );
    assert_eq!(ran_on.status, WorkflowStatus::Pending);
    assert_eq!((ran_on.executions, ran_on.started_at), (1, Some(at)));
    assert_eq!(ran_on.deadline_at, Some(at + 60_000));
}

pub async fn a_start_that_ended_before_its_row_is_written_ended(store: &dyn Store) {
    let at = now_ms() - 5_000;
    let new = started("late-ended");
    let end = WorkflowEnd::Success("42".into());
    let inserted = store
        .insert_workflow_at(&new, at, Some(&end))
        .await
        .unwrap();
    assert!(inserted.created);
    let expected = reprise_host::store::WorkflowRecord {
        status: WorkflowStatus::Success,
        output: Some("42".into()),
        ..new.record_at(at)
    };
    assert_eq!(inserted.record, expected);
    assert_eq!(
        store.get_workflow(&new.id).await.unwrap(),
        Some(expected.clone())
    );
    assert!(store.steps(&new.id).await.unwrap().is_empty());

    // Its ending is its first: a late one keeps it.
    let late = WorkflowEnd::Error("late".into());
    let kept = store
        .finish_workflow(&new.id, &late, Some(0))
        .await
        .unwrap();
    assert_eq!(kept, expected);

    // An existing id is never rewritten, whatever the late start says.
    let again = NewWorkflow {
        input: "\"other\"".into(),
        ..started("late-ended")
    };
    let failed = WorkflowEnd::Error("boom".into());
    let existing = store
        .insert_workflow_at(&again, at + 1, Some(&failed))
        .await
        .unwrap();
    assert!(!existing.created);
    assert_eq!(existing.record, expected);

    // A failure is written as one, with its error.
    let error = store
        .insert_workflow_at(&started("late-failed"), at, Some(&failed))
        .await
        .unwrap();
    assert_eq!(error.record.status, WorkflowStatus::Error);
    assert_eq!(error.record.error.as_deref(), Some("boom"));
    assert_eq!(error.record.output, None);
}
