//! What operators do to workflows: cancel, resume, fork.

use reprise_host::store::{
    NewWorkflow, StepRecord, Store, StoreError, WorkflowEnd, WorkflowStatus,
};

use super::{begin, claim, ids, new_workflow, queued, status_of, step, trap};

pub async fn cancel_stops_active_workflows_and_leaves_ended_ones(store: &dyn Store) {
    store
        .insert_workflow(&queued("queued", "q", 0))
        .await
        .expect("insert");
    store
        .insert_workflow(&new_workflow("running"))
        .await
        .expect("insert");
    store
        .insert_workflow(&new_workflow("done"))
        .await
        .expect("insert");
    store
        .finish_workflow("done", &WorkflowEnd::Success("1".to_owned()), None)
        .await
        .expect("finish");

    let cancelled = store.cancel_workflow("queued").await.expect("cancel");
    assert_eq!(cancelled.status, WorkflowStatus::Cancelled);
    assert!(
        store
            .claim_queued(&claim("q", "exec-a", 5))
            .await
            .expect("claim")
            .is_empty()
    );
    assert_eq!(
        store
            .cancel_workflow("running")
            .await
            .expect("cancel")
            .status,
        WorkflowStatus::Cancelled
    );
    // A late ending does not overwrite the cancellation.
    store
        .finish_workflow("running", &WorkflowEnd::Success("1".to_owned()), None)
        .await
        .expect("finish");
    assert_eq!(status_of(store, "running").await, WorkflowStatus::Cancelled);
    let done = store.cancel_workflow("done").await.expect("cancel ended");
    assert_eq!(
        (done.status, done.output.as_deref()),
        (WorkflowStatus::Success, Some("1"))
    );
    let err = store.cancel_workflow("ghost").await.expect_err("unknown");
    assert!(
        matches!(err, StoreError::UnknownWorkflow(ref id) if id == "ghost"),
        "{err:?}"
    );
}

pub async fn resume_restarts_all_but_successes(store: &dyn Store) {
    store
        .insert_workflow(&queued("cancelled", "q", 0))
        .await
        .expect("insert");
    store
        .claim_queued(&claim("q", "exec-a", 1))
        .await
        .expect("claim");
    begin(store, "cancelled", "exec-a").await.expect("begin");
    store
        .record_trap("cancelled", &trap("panic", "boom"))
        .await
        .expect("trap");
    let trapped = store
        .get_workflow("cancelled")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(trapped.traps, 1, "a trap is counted apart from executions");
    store.cancel_workflow("cancelled").await.expect("cancel");

    let resumed = store
        .resume_workflow("cancelled", "exec-b", None)
        .await
        .expect("resume");
    assert_eq!(resumed.status, WorkflowStatus::Pending);
    assert_eq!((resumed.executions, resumed.traps), (0, 0));
    assert_eq!(resumed.executor_id, "exec-b");
    assert_eq!(resumed.trap_class.as_deref(), Some("panic"));
    assert_eq!(resumed.queue_name.as_deref(), Some("q"));
    assert!(resumed.started_at.is_some());
    // PENDING now: recovery finds it, the queue does not dispatch it again.
    assert_eq!(
        ids(store.pending_workflows("exec-b").await.expect("pending")),
        ["cancelled"]
    );
    assert!(
        store
            .claim_queued(&claim("q", "exec-a", 5))
            .await
            .expect("claim")
            .is_empty()
    );

    store
        .insert_workflow(&new_workflow("failed"))
        .await
        .expect("insert");
    store
        .finish_workflow("failed", &WorkflowEnd::Error("bad".to_owned()), None)
        .await
        .expect("finish");
    let resumed = store
        .resume_workflow("failed", "exec-b", None)
        .await
        .expect("resume");
    assert_eq!(
        (resumed.status, resumed.error),
        (WorkflowStatus::Pending, None)
    );

    store
        .insert_workflow(&new_workflow("exhausted"))
        .await
        .expect("insert");
    store
        .finish_workflow(
            "exhausted",
            &WorkflowEnd::MaxRecoveryAttemptsExceeded("traps".to_owned()),
            None,
        )
        .await
        .expect("finish");
    for _ in 0..3 {
        begin(store, "exhausted", "exec-a").await.expect("begin");
    }
    let resumed = store
        .resume_workflow("exhausted", "exec-b", None)
        .await
        .expect("resume");
    assert_eq!(
        (resumed.status, resumed.executions),
        (WorkflowStatus::Pending, 0)
    );

    // An ENQUEUED workflow starts now, skipping its queue.
    store
        .insert_workflow(&queued("waiting", "q", 0))
        .await
        .expect("insert");
    let resumed = store
        .resume_workflow("waiting", "exec-b", None)
        .await
        .expect("resume");
    assert_eq!(resumed.status, WorkflowStatus::Pending);
    assert!(resumed.started_at.is_some());

    store
        .insert_workflow(&new_workflow("ok"))
        .await
        .expect("insert");
    store
        .finish_workflow("ok", &WorkflowEnd::Success("1".to_owned()), None)
        .await
        .expect("finish");
    let err = store
        .resume_workflow("ok", "exec-b", None)
        .await
        .expect_err("success");
    assert!(
        matches!(&err, StoreError::NotResumable { workflow_id, status: WorkflowStatus::Success }
            if workflow_id == "ok"),
        "{err:?}"
    );
    assert_eq!(status_of(store, "ok").await, WorkflowStatus::Success);
    let err = store
        .resume_workflow("ghost", "exec-b", None)
        .await
        .expect_err("unknown");
    assert!(matches!(err, StoreError::UnknownWorkflow(_)), "{err:?}");

    // Resuming must not make two workflows active under one deduplication id.
    let keyed = |id: &str| NewWorkflow {
        deduplication_id: Some("k".to_owned()),
        ..queued(id, "dq", 0)
    };
    store.insert_workflow(&keyed("k1")).await.expect("insert");
    store.cancel_workflow("k1").await.expect("cancel");
    store.insert_workflow(&keyed("k2")).await.expect("insert");
    let err = store
        .resume_workflow("k1", "exec-b", None)
        .await
        .expect_err("dup");
    assert!(matches!(err, StoreError::Duplicate { .. }), "{err:?}");
    assert_eq!(status_of(store, "k1").await, WorkflowStatus::Cancelled);
}

pub async fn fork_copies_the_workflow_and_the_steps_before_the_fork_point(store: &dyn Store) {
    let original = NewWorkflow {
        deduplication_id: Some("k".to_owned()),
        parent_workflow_id: Some("parent".to_owned()),
        config: r#"{"region":"eu"}"#.to_owned(),
        ..queued("orig", "q", 3)
    };
    store.insert_workflow(&original).await.expect("insert");
    store
        .claim_queued(&claim("q", "exec-a", 1))
        .await
        .expect("claim");
    for i in 0..5 {
        store.record_step(&step("orig", i)).await.expect("record");
    }
    store
        .record_trap("orig", &trap("panic", "boom"))
        .await
        .expect("trap");
    store
        .finish_workflow("orig", &WorkflowEnd::Error("bad".to_owned()), None)
        .await
        .expect("finish");

    let fork = store.fork_workflow("orig", "fork", 3).await.expect("fork");
    let orig = store
        .get_workflow("orig")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(fork.id, "fork");
    assert_eq!(fork.status, WorkflowStatus::Pending);
    assert_eq!(fork.executions, 0);
    assert_eq!(
        (
            &fork.name,
            &fork.input,
            &fork.app_version,
            &fork.instance,
            &fork.config
        ),
        (
            &orig.name,
            &orig.input,
            &orig.app_version,
            &orig.instance,
            &orig.config
        )
    );
    assert_eq!(fork.executor_id, orig.executor_id);
    assert_eq!(fork.max_recovery_attempts, orig.max_recovery_attempts);
    assert_eq!((fork.queue_name, fork.deduplication_id), (None, None));
    assert_eq!((fork.parent_workflow_id, fork.started_at), (None, None));
    assert_eq!(
        (fork.priority, fork.error, fork.trap_class),
        (0, None, None)
    );
    assert!(fork.created_at >= orig.created_at);
    let copied = store.steps("fork").await.expect("steps");
    let expected: Vec<_> = (0..3)
        .map(|i| StepRecord {
            workflow_id: "fork".to_owned(),
            ..step("orig", i)
        })
        .collect();
    assert_eq!(copied, expected);
    assert_eq!(store.steps("orig").await.expect("steps").len(), 5);
    assert_eq!(orig.status, WorkflowStatus::Error);
    assert_eq!(
        ids(store.pending_workflows("exec-a").await.expect("pending")),
        ["fork"]
    );

    // From step 0: nothing is replayed.
    store.fork_workflow("orig", "fresh", 0).await.expect("fork");
    assert!(store.steps("fresh").await.expect("steps").is_empty());

    let err = store
        .fork_workflow("orig", "fork", 1)
        .await
        .expect_err("taken");
    assert!(
        matches!(err, StoreError::WorkflowExists(ref id) if id == "fork"),
        "{err:?}"
    );
    assert!(err.to_string().contains("fork"), "{err}");
    assert_eq!(store.steps("fork").await.expect("steps").len(), 3);
    let err = store
        .fork_workflow("ghost", "new", 1)
        .await
        .expect_err("unknown");
    assert!(
        matches!(err, StoreError::UnknownWorkflow(ref id) if id == "ghost"),
        "{err:?}"
    );
    assert_eq!(store.get_workflow("new").await.expect("get"), None);
}

pub async fn trap_runs_memory_limits_and_pauses_are_kept(store: &dyn Store) {
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    let read = |id: &'static str| async move {
        store.get_workflow(id).await.expect("read").expect("exists")
    };
    store
        .record_trap("wf", &trap("out_of_memory", "a"))
        .await
        .expect("trap");
    let grown = reprise_host::store::TrapRecord {
        memory_limit: Some(32 << 20),
        ..trap("out_of_memory", "b")
    };
    store.record_trap("wf", &grown).await.expect("trap");
    let record = read("wf").await;
    assert_eq!((record.traps, record.trap_streak), (2, 2));
    assert_eq!(record.memory_limit, Some(32 << 20));
    // Another class starts a new run; a trap without a new limit keeps the grown one.
    store
        .record_trap("wf", &trap("panic", "c"))
        .await
        .expect("trap");
    let record = read("wf").await;
    assert_eq!((record.traps, record.trap_streak), (3, 1));
    assert_eq!(record.memory_limit, Some(32 << 20));

    // A pause is not an end: it can be cancelled, and resumed with a new limit.
    let paused = store
        .finish_workflow("wf", &WorkflowEnd::Paused("paused".into()), None)
        .await
        .expect("pause");
    assert_eq!(paused.status, WorkflowStatus::Paused);
    assert!(
        store
            .pending_workflows("exec-a")
            .await
            .expect("pending")
            .is_empty()
    );
    let resumed = store
        .resume_workflow("wf", "exec-b", Some(64 << 20))
        .await
        .expect("resume");
    assert_eq!(resumed.status, WorkflowStatus::Pending);
    assert_eq!((resumed.traps, resumed.trap_streak), (0, 0));
    assert_eq!(resumed.memory_limit, Some(64 << 20));
    store
        .finish_workflow("wf", &WorkflowEnd::Paused("again".into()), None)
        .await
        .expect("pause");
    let cancelled = store.cancel_workflow("wf").await.expect("cancel");
    assert_eq!(cancelled.status, WorkflowStatus::Cancelled);
}

/// A host looks for cancels by time: the workflows cancelled at or after a moment, nothing
/// else, however many run.
pub async fn cancelled_since_names_the_cancels_after_a_moment(store: &dyn Store) {
    for id in ["early", "late", "running"] {
        store
            .insert_workflow(&new_workflow(id))
            .await
            .expect("insert");
    }
    store.cancel_workflow("early").await.expect("cancel");
    let early = store
        .get_workflow("early")
        .await
        .expect("get")
        .expect("row")
        .updated_at;
    let mut all = store.cancelled_since(0).await.expect("since 0");
    all.sort();
    assert_eq!(all, ["early"]);
    // A moment after the first cancel: only what came later.
    while reprise_host::store::now_ms() <= early {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let moment = reprise_host::store::now_ms();
    store.cancel_workflow("late").await.expect("cancel");
    assert_eq!(
        store.cancelled_since(moment).await.expect("since"),
        ["late"]
    );
    assert!(
        store
            .cancelled_since(reprise_host::store::now_ms() + 1)
            .await
            .expect("future")
            .is_empty()
    );
}
