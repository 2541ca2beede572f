//! Component versions (the `VersionStore` role): the digest of a call's arguments kept with
//! its step, moving a workflow to another version (`upgrade_workflow`) and the record it
//! leaves, naming stored versions and counting the workflows in flight on each
//! (`name_component`, `component_versions`), bringing a workflow over from another database
//! (`import_workflow`), and starting a workflow's next run under its id (`continue_as_new`,
//! `runs`). Each refusal is checked to leave the workflow, its epoch and its steps as they were.

use std::time::Duration;

use reprise_host::store::{
    NewWorkflow, StepFailureRecord, StepRecord, Store, StoreError, WorkflowEnd, WorkflowRecord,
    WorkflowStatus,
};

use super::{ids, new_workflow, queued, step};

/// The name of the record an upgrade puts in a workflow's history
/// (`reprise_protocol::recorded::UPGRADE`).
const UPGRADE: &str = "reprise.upgrade";

async fn workflow(store: &dyn Store, id: &str) -> WorkflowRecord {
    store.get_workflow(id).await.expect("get").expect("exists")
}

async fn steps(store: &dyn Store, id: &str) -> Vec<StepRecord> {
    store.steps(id).await.expect("steps")
}

/// Steps as they are compared when the epoch that committed them is not the point.
fn uncommitted(steps: Vec<StepRecord>) -> Vec<StepRecord> {
    steps
        .into_iter()
        .map(|s| StepRecord {
            committed_epoch: None,
            ..s
        })
        .collect()
}

fn changed(err: &StoreError, id: &str) -> bool {
    matches!(err, StoreError::ChangedWhileChecked(w) if w == id)
}

pub async fn step_args_digests_round_trip(store: &dyn Store) {
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    let with = |function_id, args: Option<&str>| StepRecord {
        args: args.map(str::to_owned),
        ..step("wf", function_id)
    };
    store
        .record_step(&with(0, Some("abc123")))
        .await
        .expect("record with a digest");
    store
        .record_step(&with(1, None))
        .await
        .expect("record without");
    // Two at once: SQLite's writer may commit them as one multi-row insert.
    let (two, three) = (with(2, Some("def456")), with(3, None));
    let (two, three) = tokio::join!(store.record_step(&two), store.record_step(&three));
    two.expect("record 2");
    three.expect("record 3");
    let read: Vec<_> = steps(store, "wf")
        .await
        .into_iter()
        .map(|s| (s.function_id, s.args))
        .collect();
    assert_eq!(
        read,
        vec![
            (0, Some("abc123".to_owned())),
            (1, None),
            (2, Some("def456".to_owned())),
            (3, None),
        ]
    );
}

pub async fn upgrade_switches_the_version_under_the_epoch_and_records_the_move(store: &dyn Store) {
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    let began = store
        .begin_execution("wf", "exec-a", 0)
        .await
        .expect("begin");
    for position in 0..=2 {
        store
            .record_step(&step("wf", position))
            .await
            .expect("record");
    }
    let before = workflow(store, "wf").await;
    let steps_before = steps(store, "wf").await;
    assert_eq!(before.app_version, "sha256:abc");

    // A stale epoch: an execution began (or the workflow moved) since the caller read it.
    let err = store
        .upgrade_workflow("wf", began.epoch - 1, 3, "sha256:new")
        .await
        .expect_err("stale epoch");
    assert!(changed(&err, "wf"), "{err:?}");
    assert_eq!(workflow(store, "wf").await, before);
    assert_eq!(steps(store, "wf").await, steps_before);

    // Something is recorded at the position the upgrade would take.
    let err = store
        .upgrade_workflow("wf", began.epoch, 2, "sha256:new")
        .await
        .expect_err("position taken");
    assert!(changed(&err, "wf"), "{err:?}");
    assert_eq!(workflow(store, "wf").await, before);
    assert_eq!(steps(store, "wf").await, steps_before);

    let upgraded = store
        .upgrade_workflow("wf", began.epoch, 3, "sha256:new")
        .await
        .expect("upgrade");
    assert_eq!(upgraded.app_version, "sha256:new");
    assert_eq!(upgraded.epoch, began.epoch + 1);
    assert_eq!(upgraded.status, WorkflowStatus::Pending);
    assert_eq!(
        (upgraded.input.as_str(), upgraded.executions),
        (before.input.as_str(), before.executions)
    );
    assert_eq!(workflow(store, "wf").await, upgraded);
    let after = steps(store, "wf").await;
    assert_eq!(after.len(), 4, "{after:?}");
    assert_eq!(after[..3], steps_before[..]);
    let moved = &after[3];
    assert_eq!((moved.function_id, moved.name.as_str()), (3, UPGRADE));
    assert_eq!(moved.error, None);
    let output: serde_json::Value =
        serde_json::from_str(moved.output.as_deref().expect("an output")).expect("JSON");
    assert_eq!(
        output,
        serde_json::json!({"from": "sha256:abc", "to": "sha256:new"})
    );
    // The execution that held the old epoch is stopped at its next write.
    let late = StepRecord {
        epoch: Some(began.epoch),
        ..step("wf", 4)
    };
    let err = store.record_step(&late).await.expect_err("fenced");
    assert!(matches!(err, StoreError::Fenced { .. }), "{err:?}");
    // The epoch the upgrade took is stale now too.
    let err = store
        .upgrade_workflow("wf", began.epoch, 4, "sha256:newer")
        .await
        .expect_err("stale after the upgrade");
    assert!(changed(&err, "wf"), "{err:?}");
    assert_eq!(workflow(store, "wf").await, upgraded);

    // An ENQUEUED workflow moves too; an ended one does not.
    store
        .insert_workflow(&queued("waiting", "q", 0))
        .await
        .expect("insert queued");
    let waiting = store
        .upgrade_workflow("waiting", 0, 0, "sha256:new")
        .await
        .expect("upgrade queued");
    assert_eq!(
        (waiting.status, waiting.app_version.as_str(), waiting.epoch),
        (WorkflowStatus::Enqueued, "sha256:new", 1)
    );
    store
        .insert_workflow(&new_workflow("done"))
        .await
        .expect("insert");
    store
        .finish_workflow("done", &WorkflowEnd::Success("1".to_owned()), None)
        .await
        .expect("finish");
    let done = workflow(store, "done").await;
    let err = store
        .upgrade_workflow("done", done.epoch, 0, "sha256:new")
        .await
        .expect_err("ended");
    assert!(changed(&err, "done"), "{err:?}");
    assert_eq!(workflow(store, "done").await, done);
    assert!(steps(store, "done").await.is_empty());

    let err = store
        .upgrade_workflow("ghost", 0, 0, "sha256:new")
        .await
        .expect_err("unknown");
    assert!(
        matches!(err, StoreError::UnknownWorkflow(ref id) if id == "ghost"),
        "{err:?}"
    );
}

pub async fn component_versions_are_named_once_and_count_workflows_in_flight(store: &dyn Store) {
    // Stored first, but last by digest: the listing must go by age.
    store
        .put_component("sha256:bbb", b"first version", None)
        .await
        .expect("put");
    tokio::time::sleep(Duration::from_millis(10)).await;
    store
        .put_component("sha256:aaa", b"second", None)
        .await
        .expect("put");
    store
        .name_component("sha256:bbb", "orders")
        .await
        .expect("name");
    let on = |id: &str, digest: &str| NewWorkflow {
        app_version: digest.to_owned(),
        ..new_workflow(id)
    };
    store
        .insert_workflow(&on("running", "sha256:bbb"))
        .await
        .expect("insert");
    store
        .insert_workflow(&NewWorkflow {
            app_version: "sha256:bbb".to_owned(),
            ..queued("waiting", "q", 0)
        })
        .await
        .expect("insert queued");
    for (id, digest) in [("failed", "sha256:bbb"), ("done", "sha256:aaa")] {
        store
            .insert_workflow(&on(id, digest))
            .await
            .expect("insert");
    }
    store
        .finish_workflow("failed", &WorkflowEnd::Error("bad".to_owned()), None)
        .await
        .expect("fail");
    store
        .finish_workflow("done", &WorkflowEnd::Success("1".to_owned()), None)
        .await
        .expect("finish");
    assert_eq!(
        store
            .get_workflow("waiting")
            .await
            .expect("get")
            .map(|w| w.status),
        Some(WorkflowStatus::Enqueued)
    );

    let versions = store.component_versions().await.expect("versions");
    let seen: Vec<_> = versions
        .iter()
        .map(|v| (v.digest.as_str(), v.name.as_deref(), v.size, v.in_flight))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("sha256:bbb", Some("orders"), 13, 2),
            ("sha256:aaa", None, 6, 0),
        ]
    );
    assert!(
        versions[0].first_seen < versions[1].first_seen,
        "{versions:?}"
    );

    // A version keeps its first name.
    store
        .name_component("sha256:bbb", "billing")
        .await
        .expect("name again");
    let names: Vec<_> = store
        .component_versions()
        .await
        .expect("versions")
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, vec![Some("orders".to_owned()), None]);
}

pub async fn import_creates_the_workflow_as_it_was_once(store: &dyn Store) {
    let imported = WorkflowRecord {
        input: r#"{"n":7}"#.to_owned(),
        app_version: "sha256:far".to_owned(),
        executor_id: "exec-far".to_owned(),
        created_at: 1_234,
        started_at: Some(1_300),
        run: 2,
        memory_limit: Some(64 << 20),
        ..WorkflowRecord::example("moved", WorkflowStatus::Pending)
    };
    let history = vec![
        StepRecord {
            args: Some("d0".to_owned()),
            ..step("moved", 0)
        },
        StepRecord {
            output: None,
            error: Some(StepFailureRecord {
                message: "boom".to_owned(),
                attempt_errors: vec!["boom".to_owned()],
                retries_exhausted: true,
            }),
            ..step("moved", 1)
        },
    ];
    store
        .import_workflow(&imported, &history)
        .await
        .expect("import");
    let read = workflow(store, "moved").await;
    assert_eq!(
        (
            read.status,
            read.created_at,
            read.run,
            read.input.as_str(),
            read.app_version.as_str(),
        ),
        (
            WorkflowStatus::Pending,
            1_234,
            2,
            r#"{"n":7}"#,
            "sha256:far"
        )
    );
    assert_eq!(
        (
            read.name.as_str(),
            read.executor_id.as_str(),
            read.started_at,
            read.memory_limit,
            read.executions,
        ),
        ("flow", "exec-far", Some(1_300), Some(64 << 20), 1)
    );
    let read_steps = steps(store, "moved").await;
    assert_eq!(uncommitted(read_steps.clone()), history);
    // It is pending under its owner, for it to recover.
    assert_eq!(
        ids(store.pending_workflows("exec-far").await.expect("pending")),
        vec!["moved"]
    );

    // Again (from another export, say): refused, and the first stays as it was.
    let again = WorkflowRecord {
        input: r#"{"n":8}"#.to_owned(),
        run: 5,
        ..imported.clone()
    };
    let err = store
        .import_workflow(&again, &[step("moved", 0), step("moved", 5)])
        .await
        .expect_err("exists");
    assert!(
        matches!(err, StoreError::WorkflowExists(ref id) if id == "moved"),
        "{err:?}"
    );
    assert_eq!(workflow(store, "moved").await, read);
    assert_eq!(steps(store, "moved").await, read_steps);

    // An id started here is taken as well, and its steps are not touched.
    store
        .insert_workflow(&new_workflow("local"))
        .await
        .expect("insert");
    let err = store
        .import_workflow(
            &WorkflowRecord::example("local", WorkflowStatus::Success),
            &[step("local", 0)],
        )
        .await
        .expect_err("exists");
    assert!(matches!(err, StoreError::WorkflowExists(_)), "{err:?}");
    assert!(steps(store, "local").await.is_empty());
    assert_eq!(
        workflow(store, "local").await.status,
        WorkflowStatus::Pending
    );
}

pub async fn continue_as_new_keeps_the_run_and_starts_the_next(store: &dyn Store) {
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    store
        .insert_workflow(&new_workflow("once"))
        .await
        .expect("insert");
    let began = store
        .begin_execution("wf", "exec-a", 0)
        .await
        .expect("begin");
    store.record_step(&step("wf", 0)).await.expect("record");
    store
        .record_step(&StepRecord {
            args: Some("digest-1".to_owned()),
            epoch: Some(began.epoch),
            ..step("wf", 1)
        })
        .await
        .expect("record");
    let before = workflow(store, "wf").await;
    let history = steps(store, "wf").await;
    assert_eq!((before.run, before.executions), (0, 1));

    let next_input = r#"{"who":"again"}"#;
    let continued = store
        .continue_as_new("wf", began.epoch, next_input, "sha256:v2")
        .await
        .expect("continue");
    assert_eq!(continued.run, 1);
    assert_eq!(continued.input, next_input);
    assert_eq!(continued.app_version, "sha256:v2");
    assert_eq!(continued.epoch, began.epoch + 1);
    assert_eq!(continued.executions, 0);
    assert_eq!(continued.status, WorkflowStatus::Pending);
    assert_eq!(workflow(store, "wf").await, continued);
    assert!(steps(store, "wf").await.is_empty());

    let runs = store.runs("wf").await.expect("runs");
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(
        (
            run.run,
            run.input.as_str(),
            run.app_version.as_str(),
            run.next_input.as_str()
        ),
        (0, before.input.as_str(), "sha256:abc", next_input)
    );
    // The history as recorded, digests included (which execution committed each row is not
    // kept with it).
    assert_eq!(run.steps, uncommitted(history));
    assert_eq!(run.started_at, before.started_at);
    assert!(
        run.ended_at >= before.started_at.expect("started"),
        "{run:?}"
    );

    // The next run records from position 0 again; the old execution is fenced off.
    store.record_step(&step("wf", 0)).await.expect("record");
    let late = StepRecord {
        epoch: Some(began.epoch),
        ..step("wf", 1)
    };
    let err = store.record_step(&late).await.expect_err("fenced");
    assert!(matches!(err, StoreError::Fenced { .. }), "{err:?}");
    let current = workflow(store, "wf").await;
    let current_steps = steps(store, "wf").await;

    // The old epoch continues nothing.
    let err = store
        .continue_as_new("wf", began.epoch, r#"{"who":"stale"}"#, "sha256:v3")
        .await
        .expect_err("stale epoch");
    assert!(
        matches!(
            err,
            StoreError::Fenced { ref workflow_id, epoch, current }
                if workflow_id == "wf" && epoch == began.epoch && current == continued.epoch
        ),
        "{err:?}"
    );
    assert_eq!(workflow(store, "wf").await, current);
    assert_eq!(steps(store, "wf").await, current_steps);
    assert_eq!(store.runs("wf").await.expect("runs"), runs);

    assert!(store.runs("once").await.expect("runs").is_empty());
    assert!(store.runs("ghost").await.expect("runs").is_empty());
}
