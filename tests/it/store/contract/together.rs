//! Writes of many workflows in flight at once. Backends gather them into shared statements and
//! commits (SQLite's writer batches, Postgres's combiner); whatever shares a statement, each
//! caller hears its own answer, and a refused write never sinks the ones beside it.

use futures_util::future::join_all;
use reprise_host::store::{StepRecord, Store, StoreError, WorkflowEnd, WorkflowStatus};

use super::{new_workflow, step};

/// Workflows written at once.
const WORKFLOWS: u32 = 48;
/// Steps each records.
const STEPS: u32 = 4;

/// What one workflow's writer does and how each refusal must read; every third workflow also
/// repeats a step, every fifth tries a step under a stale epoch, every seventh ends twice.
async fn write_one(store: &dyn Store, i: u32) -> Result<(), String> {
    let id = format!("wf-{i}");
    let epoch = store
        .get_workflow(&id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no row")?
        .epoch;
    let mine = |function_id| StepRecord {
        epoch: Some(epoch),
        ..step(&id, function_id)
    };
    for function_id in 0..STEPS {
        store
            .record_step(&mine(function_id))
            .await
            .map_err(|e| format!("{id} step {function_id}: {e}"))?;
        if i.is_multiple_of(3) && function_id == 1 {
            match store.record_step(&mine(0)).await {
                Err(StoreError::StepAlreadyRecorded { function_id: 0, .. }) => {}
                other => return Err(format!("{id}: a repeated step gave {other:?}")),
            }
        }
        if i.is_multiple_of(5) && function_id == 2 {
            let stale = StepRecord {
                epoch: Some(epoch + 1),
                ..step(&id, 99)
            };
            match store.record_step(&stale).await {
                Err(StoreError::Fenced { .. }) => {}
                other => return Err(format!("{id}: a stale step gave {other:?}")),
            }
        }
    }
    match store.record_step(&step(&format!("ghost-{i}"), 0)).await {
        Err(StoreError::UnknownWorkflow(_)) => {}
        other => return Err(format!("ghost-{i}: a step of no workflow gave {other:?}")),
    }
    let end = WorkflowEnd::Success(i.to_string());
    let ended = store
        .finish_workflow(&id, &end, Some(epoch))
        .await
        .map_err(|e| format!("{id} end: {e}"))?;
    if ended.status != WorkflowStatus::Success || ended.output.as_deref() != Some(&*i.to_string()) {
        return Err(format!("{id}: the ending answered {ended:?}"));
    }
    if i.is_multiple_of(7) {
        let late = WorkflowEnd::Error("late".to_owned());
        let kept = store
            .finish_workflow(&id, &late, Some(epoch))
            .await
            .map_err(|e| format!("{id} second end: {e}"))?;
        if kept.status != WorkflowStatus::Success {
            return Err(format!(
                "{id}: a second ending replaced the first: {kept:?}"
            ));
        }
    }
    Ok(())
}

pub async fn writes_in_flight_together_each_get_their_own_answer(store: &dyn Store) {
    for i in 0..WORKFLOWS {
        store
            .insert_workflow(&new_workflow(&format!("wf-{i}")))
            .await
            .expect("insert");
    }
    let answers = join_all((0..WORKFLOWS).map(|i| write_one(store, i))).await;
    let failures: Vec<_> = answers.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{failures:#?}");
    for i in 0..WORKFLOWS {
        let id = format!("wf-{i}");
        let steps = store.steps(&id).await.expect("steps");
        let positions: Vec<_> = steps.iter().map(|s| s.function_id).collect();
        assert_eq!(positions, (0..STEPS).collect::<Vec<_>>(), "{id}");
        assert!(
            steps
                .iter()
                .all(|s| s.output.as_deref() == Some(&*s.function_id.to_string())),
            "{id}: {steps:?}"
        );
        let record = store.get_workflow(&id).await.expect("read").expect("row");
        assert_eq!(record.output.as_deref(), Some(&*i.to_string()), "{id}");
    }
}
