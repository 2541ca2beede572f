//! Workflows and their steps: creating, recording, ending, reading back.

use std::time::Duration;

use reprise_host::store::{
    NewWorkflow, StepFailureRecord, StepRecord, Store, StoreError, WorkflowEnd, WorkflowFilter,
    WorkflowRecord, WorkflowStatus,
};

use super::{Db, begin, ids, new_workflow, queued, step, trap};

pub async fn insert_is_idempotent_and_returns_the_original(store: &dyn Store) {
    let first = store
        .insert_workflow(&new_workflow("wf-1"))
        .await
        .expect("insert");
    assert!(first.created);
    assert_eq!(first.record.status, WorkflowStatus::Pending);
    assert_eq!(first.record.executions, 0);
    assert_eq!(first.record.created_at, first.record.updated_at);

    let mut again = new_workflow("wf-1");
    again.input = r#"{"who":"someone else"}"#.to_owned();
    let second = store.insert_workflow(&again).await.expect("insert again");
    assert!(!second.created);
    assert_eq!(second.record, first.record);
    assert_eq!(
        store.get_workflow("wf-1").await.expect("get"),
        Some(first.record)
    );
    assert_eq!(store.get_workflow("nope").await.expect("get"), None);
}

pub async fn steps_round_trip_including_failures(store: &dyn Store) {
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    let failed = StepRecord {
        output: None,
        error: Some(StepFailureRecord {
            message: "boom".to_owned(),
            attempt_errors: vec!["timeout".to_owned(), "boom".to_owned()],
            retries_exhausted: true,
        }),
        attempts: 2,
        ..step("wf", 1)
    };
    // Recorded out of order on purpose: `steps` sorts by position.
    store.record_step(&failed).await.expect("record failure");
    store
        .record_step(&step("wf", 0))
        .await
        .expect("record success");
    let steps = store.steps("wf").await.expect("steps");
    // Each row says which execution committed it: here the workflow's epoch, 0, as it has
    // not begun one.
    let committed = |step: StepRecord| StepRecord {
        committed_epoch: Some(0),
        ..step
    };
    assert_eq!(steps, vec![committed(step("wf", 0)), committed(failed)]);
    assert!(store.steps("other").await.expect("steps").is_empty());
}

pub async fn duplicate_step_is_rejected(store: &dyn Store) {
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    store.record_step(&step("wf", 0)).await.expect("first");
    let err = store
        .record_step(&step("wf", 0))
        .await
        .expect_err("duplicate");
    assert!(
        matches!(&err, StoreError::StepAlreadyRecorded { workflow_id, function_id: 0 } if workflow_id == "wf"),
        "{err:?}"
    );
    // The failure was the request's own: the store goes on.
    store.record_step(&step("wf", 1)).await.expect("next step");
    let err = store
        .record_step(&step("ghost", 0))
        .await
        .expect_err("no workflow");
    assert!(
        matches!(err, StoreError::UnknownWorkflow(ref id) if id == "ghost"),
        "{err:?}"
    );
}

pub async fn begin_execution_counts_and_takes_ownership(store: &dyn Store) {
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    assert_eq!(begin(store, "wf", "exec-a").await.expect("begin"), 1);
    assert_eq!(begin(store, "wf", "exec-b").await.expect("begin"), 2);
    let record = store
        .get_workflow("wf")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(record.executions, 2);
    assert_eq!(record.executor_id, "exec-b");
    assert!(
        store
            .pending_workflows("exec-a")
            .await
            .expect("pending")
            .is_empty()
    );
    assert_eq!(
        store
            .pending_workflows("exec-b")
            .await
            .expect("pending")
            .len(),
        1
    );
    let err = begin(store, "ghost", "exec-a").await.expect_err("unknown");
    assert!(
        matches!(err, StoreError::UnknownWorkflow(ref id) if id == "ghost"),
        "{err:?}"
    );
}

pub async fn finish_keeps_the_first_terminal_state(store: &dyn Store) {
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    store
        .record_trap("wf", &trap("panic", "oh no"))
        .await
        .expect("trap");
    store
        .finish_workflow("wf", &WorkflowEnd::Success("42".to_owned()), None)
        .await
        .expect("finish");
    store
        .finish_workflow("wf", &WorkflowEnd::Error("late".to_owned()), None)
        .await
        .expect("second finish is not an error");
    let record = store
        .get_workflow("wf")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(record.status, WorkflowStatus::Success);
    assert_eq!(record.output.as_deref(), Some("42"));
    assert_eq!(record.error, None);
    assert_eq!(record.trap_class.as_deref(), Some("panic"));
    assert_eq!(record.trap_message.as_deref(), Some("oh no"));
    assert!(
        store
            .pending_workflows("exec-a")
            .await
            .expect("pending")
            .is_empty()
    );
    let err = store
        .finish_workflow("ghost", &WorkflowEnd::Error("x".to_owned()), None)
        .await
        .expect_err("unknown");
    assert!(matches!(err, StoreError::UnknownWorkflow(_)), "{err:?}");
}

pub async fn listing_filters_and_orders_newest_first(store: &dyn Store) {
    for id in ["a", "b", "c"] {
        store
            .insert_workflow(&new_workflow(id))
            .await
            .expect("insert");
    }
    let mut other = new_workflow("d");
    other.name = "other".to_owned();
    store.insert_workflow(&other).await.expect("insert");
    store
        .finish_workflow("b", &WorkflowEnd::Error("bad".to_owned()), None)
        .await
        .expect("finish");

    let ids = |records: Vec<WorkflowRecord>| -> Vec<String> {
        records.into_iter().map(|r| r.id).collect()
    };
    let all = store
        .list_workflows(&WorkflowFilter::default())
        .await
        .expect("list");
    assert_eq!(ids(all), ["d", "c", "b", "a"]);
    let filter = WorkflowFilter {
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(
        ids(store.list_workflows(&filter).await.expect("list")),
        ["d", "c"]
    );
    let filter = WorkflowFilter {
        status: Some(WorkflowStatus::Pending),
        ..Default::default()
    };
    assert_eq!(
        ids(store.list_workflows(&filter).await.expect("list")),
        ["d", "c", "a"]
    );
    let filter = WorkflowFilter {
        name: Some("greet".to_owned()),
        ..Default::default()
    };
    assert_eq!(
        ids(store.list_workflows(&filter).await.expect("list")),
        ["c", "b", "a"]
    );
    let filter = WorkflowFilter {
        status: Some(WorkflowStatus::Pending),
        name: Some("greet".to_owned()),
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(
        ids(store.list_workflows(&filter).await.expect("list")),
        ["c"]
    );
    assert_eq!(
        ids(store.pending_workflows("exec-a").await.expect("pending")),
        ["a", "c", "d"]
    );
}

pub async fn listing_filters_by_queue_time_range_and_offset(store: &dyn Store) {
    let mut created = Vec::new();
    for (id, queue) in [
        ("a", Some("q")),
        ("b", None),
        ("c", Some("q")),
        ("d", Some("r")),
    ] {
        let new = NewWorkflow {
            queue_name: queue.map(str::to_owned),
            ..new_workflow(id)
        };
        created.push(
            store
                .insert_workflow(&new)
                .await
                .expect("insert")
                .record
                .created_at,
        );
        // Distinct timestamps for the range filters.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let list = |filter: WorkflowFilter| {
        let store = &store;
        async move { ids(store.list_workflows(&filter).await.expect("list")) }
    };
    assert_eq!(
        list(WorkflowFilter {
            queue: Some("q".to_owned()),
            ..Default::default()
        })
        .await,
        ["c", "a"]
    );
    assert_eq!(
        list(WorkflowFilter {
            created_after: Some(created[1]),
            ..Default::default()
        })
        .await,
        ["d", "c", "b"]
    );
    assert_eq!(
        list(WorkflowFilter {
            created_before: Some(created[2]),
            ..Default::default()
        })
        .await,
        ["b", "a"]
    );
    assert_eq!(
        list(WorkflowFilter {
            created_after: Some(created[1]),
            created_before: Some(created[3]),
            ..Default::default()
        })
        .await,
        ["c", "b"]
    );
    assert_eq!(
        list(WorkflowFilter {
            offset: Some(1),
            ..Default::default()
        })
        .await,
        ["c", "b", "a"]
    );
    assert_eq!(
        list(WorkflowFilter {
            offset: Some(1),
            limit: Some(2),
            ..Default::default()
        })
        .await,
        ["c", "b"]
    );
    assert_eq!(
        list(WorkflowFilter {
            status: Some(WorkflowStatus::Enqueued),
            queue: Some("q".to_owned()),
            name: Some("greet".to_owned()),
            created_after: Some(created[0]),
            created_before: Some(created[3]),
            limit: Some(10),
            offset: Some(0),
            ..Default::default()
        })
        .await,
        ["c", "a"]
    );
    assert!(
        list(WorkflowFilter {
            queue: Some("none".to_owned()),
            ..Default::default()
        })
        .await
        .is_empty()
    );
}

pub async fn listing_filters_by_instance_id_and_parent(store: &dyn Store) {
    for (id, instance, parent) in [
        ("order_1", "shop", None),
        ("order_1-0", "shop", Some("order_1")),
        ("order_1-1", "shop", Some("order_1")),
        ("order%2", "shop", None),
        ("orderX1", "fib", None),
    ] {
        let new = NewWorkflow {
            instance: instance.to_owned(),
            parent_workflow_id: parent.map(str::to_owned),
            ..new_workflow(id)
        };
        store.insert_workflow(&new).await.expect("insert");
    }
    let list = |filter: WorkflowFilter| async move {
        let mut found = ids(store.list_workflows(&filter).await.expect("list"));
        found.sort();
        found
    };
    let text = |s: &str| Some(s.to_owned());
    assert_eq!(
        list(WorkflowFilter {
            instance: text("fib"),
            ..Default::default()
        })
        .await,
        ["orderX1"]
    );
    assert_eq!(
        list(WorkflowFilter {
            parent: text("order_1"),
            ..Default::default()
        })
        .await,
        ["order_1-0", "order_1-1"]
    );
    // `_` and `%` are the characters searched for, not LIKE's wildcards.
    assert_eq!(
        list(WorkflowFilter {
            id_contains: text("r_1"),
            ..Default::default()
        })
        .await,
        ["order_1", "order_1-0", "order_1-1"]
    );
    assert_eq!(
        list(WorkflowFilter {
            id_contains: text("%"),
            ..Default::default()
        })
        .await,
        ["order%2"]
    );
    assert_eq!(
        list(WorkflowFilter {
            id_contains: text("1-"),
            instance: text("shop"),
            ..Default::default()
        })
        .await,
        ["order_1-0", "order_1-1"]
    );
}

pub async fn components_are_stored_once(store: &dyn Store) {
    store
        .put_component("sha256:1", b"first", None)
        .await
        .expect("put");
    store
        .put_component("sha256:1", b"ignored", None)
        .await
        .expect("put again");
    assert_eq!(
        store
            .get_component("sha256:1")
            .await
            .expect("get")
            .as_deref(),
        Some(&b"first"[..])
    );
    assert_eq!(store.get_component("sha256:2").await.expect("get"), None);
}

pub async fn workflow_statuses_reads_many_in_the_order_asked(store: &dyn Store) {
    for id in ["a", "b", "c"] {
        store
            .insert_workflow(&new_workflow(id))
            .await
            .expect("insert");
    }
    store
        .finish_workflow("b", &WorkflowEnd::Success("2".to_owned()), None)
        .await
        .expect("finish");
    let asked: Vec<String> = ["c", "ghost", "b", "a"].map(str::to_owned).into();
    let records = store.workflow_statuses(&asked).await.expect("statuses");
    assert_eq!(ids(records.clone()), ["c", "b", "a"]);
    assert_eq!(records[1].status, WorkflowStatus::Success);
    assert_eq!(records[1].output.as_deref(), Some("2"));
    assert!(store.workflow_statuses(&[]).await.expect("none").is_empty());
    // Ids with JSON specials travel intact.
    store
        .insert_workflow(&new_workflow(r#"we"ird\id"#))
        .await
        .expect("insert");
    let asked = vec![r#"we"ird\id"#.to_owned()];
    assert_eq!(
        ids(store.workflow_statuses(&asked).await.expect("statuses")),
        asked
    );
}

/// Hand-edited rows read back as corrupt rows, naming their table, not as database failures.
pub async fn corrupt_rows_are_reported_as_corrupt(db: &Db) {
    let store = &*db.store;
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    store.record_step(&step("wf", 0)).await.expect("record");
    store
        .insert_workflow(&new_workflow("negative"))
        .await
        .expect("insert");

    db.execute("UPDATE workflow_status SET status = 'SLEEPING' WHERE workflow_id = 'wf'")
        .await;
    db.execute("UPDATE operation_outputs SET error = 'not json'")
        .await;
    db.execute("UPDATE workflow_status SET executions = -1 WHERE workflow_id = 'negative'")
        .await;

    let err = store.get_workflow("wf").await.expect_err("bad status");
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                table: "workflow_status",
                ..
            }
        ),
        "{err:?}"
    );
    let err = store.steps("wf").await.expect_err("bad json");
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                table: "operation_outputs",
                ..
            }
        ),
        "{err:?}"
    );
    let err = store.get_workflow("negative").await.expect_err("bad count");
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                table: "workflow_status",
                ..
            }
        ),
        "{err:?}"
    );
}

/// One workflow's life through every rule at once: deduplication, executions, steps, endings,
/// fork and resume, each seen from the next.
pub async fn lifecycle_rules_hold_end_to_end(store: &dyn Store) {
    // Deduplication: a second active holder of the id is refused, a finished one frees it.
    let dedup = |id: &str| NewWorkflow {
        deduplication_id: Some("once".to_owned()),
        ..queued(id, "q", 0)
    };
    assert!(
        store
            .insert_workflow(&dedup("d1"))
            .await
            .expect("d1")
            .created
    );
    let err = store.insert_workflow(&dedup("d2")).await.expect_err("dup");
    assert!(
        matches!(&err, StoreError::Duplicate { queue, deduplication_id }
            if queue == "q" && deduplication_id == "once"),
        "{err:?}"
    );
    // The same id again is the idempotent insert, not a duplicate.
    let again = store.insert_workflow(&dedup("d1")).await.expect("again");
    assert!(!again.created);
    store.cancel_workflow("d1").await.expect("cancel");
    assert!(
        store
            .insert_workflow(&dedup("d2"))
            .await
            .expect("d2")
            .created
    );
    // Resuming d1 would make two active holders.
    let err = store
        .resume_workflow("d1", "exec-1", None)
        .await
        .expect_err("dup");
    assert!(matches!(err, StoreError::Duplicate { .. }), "{err:?}");

    // begin_execution counts executions and keeps the first start time.
    let direct = NewWorkflow {
        queue_name: None,
        ..queued("w", "q", 0)
    };
    let inserted = store.insert_workflow(&direct).await.expect("insert");
    assert_eq!(inserted.record.started_at, None);
    assert_eq!(begin(store, "w", "exec-1").await.expect("begin"), 1);
    let started = store.get_workflow("w").await.expect("get").expect("row");
    assert_eq!(begin(store, "w", "exec-2").await.expect("begin"), 2);
    let later = store.get_workflow("w").await.expect("get").expect("row");
    assert_eq!(later.started_at, started.started_at);
    assert_eq!(later.executor_id, "exec-2");
    assert!(matches!(
        begin(store, "ghost", "e").await,
        Err(StoreError::UnknownWorkflow(_))
    ));

    // Steps: a position is recorded once; a step of no workflow is refused.
    let step = |workflow_id: &str, function_id: u32| StepRecord {
        workflow_id: workflow_id.to_owned(),
        function_id,
        name: format!("s{function_id}"),
        output: Some(format!("{function_id}")),
        error: None,
        attempts: 1,
        started_at: 1,
        completed_at: 2,
        epoch: None,
        committed_epoch: None,
        args: None,
    };
    for i in 0..3 {
        store.record_step(&step("w", i)).await.expect("step");
    }
    assert!(matches!(
        store.record_step(&step("w", 1)).await,
        Err(StoreError::StepAlreadyRecorded { function_id: 1, .. })
    ));
    assert!(matches!(
        store.record_step(&step("ghost", 0)).await,
        Err(StoreError::UnknownWorkflow(_))
    ));

    // The first ending wins.
    let done = store
        .finish_workflow("w", &WorkflowEnd::Error("boom".to_owned()), None)
        .await
        .expect("finish");
    assert_eq!(done.status, WorkflowStatus::Error);
    let late = store
        .finish_workflow("w", &WorkflowEnd::Success("1".to_owned()), None)
        .await
        .expect("finish again");
    assert_eq!(late, done);

    // Fork keeps the steps before `from_step`; resume makes an ERROR pending again.
    let fork = store.fork_workflow("w", "w2", 2).await.expect("fork");
    assert_eq!((fork.status, fork.executions), (WorkflowStatus::Pending, 0));
    assert_eq!(store.steps("w2").await.expect("steps").len(), 2);
    assert!(matches!(
        store.fork_workflow("w", "w2", 1).await,
        Err(StoreError::WorkflowExists(_))
    ));
    assert!(matches!(
        store.fork_workflow("ghost", "w3", 1).await,
        Err(StoreError::UnknownWorkflow(_))
    ));
    let resumed = store
        .resume_workflow("w", "exec-9", None)
        .await
        .expect("resume");
    assert_eq!(
        (resumed.status, resumed.executions, resumed.error),
        (WorkflowStatus::Pending, 0, None)
    );
    store
        .finish_workflow("w", &WorkflowEnd::Success("1".to_owned()), None)
        .await
        .expect("finish");
    assert!(matches!(
        store.resume_workflow("w", "exec-9", None).await,
        Err(StoreError::NotResumable { .. })
    ));

    let asked: Vec<String> = ["w2", "ghost", "w"].map(str::to_owned).into();
    let ids: Vec<_> = store
        .workflow_statuses(&asked)
        .await
        .expect("statuses")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["w2", "w"]);
    let listed = store
        .list_workflows(&Default::default())
        .await
        .expect("list");
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[0].id, "w2", "newest first");
}
