//! Queues: enqueueing, claiming within limits, deduplication, depths.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use reprise_host::store::{
    NewWorkflow, QueueClaim, QueueDepth, RateLimit, Store, StoreError, WorkflowEnd, WorkflowStatus,
};

use super::{Db, begin, claim, ids, new_workflow, queued, status_of};

pub async fn enqueue_creates_enqueued_rows_and_direct_starts_record_started_at(store: &dyn Store) {
    let new = NewWorkflow {
        // A queued workflow starts only when claimed, whatever the caller asked.
        begin_execution: true,
        deduplication_id: Some("key".to_owned()),
        parent_workflow_id: Some("parent".to_owned()),
        ..queued("q1", "emails", 5)
    };
    let record = store.insert_workflow(&new).await.expect("insert").record;
    assert_eq!(record.status, WorkflowStatus::Enqueued);
    assert_eq!(record.executions, 0);
    assert_eq!(record.started_at, None);
    assert_eq!(record.queue_name.as_deref(), Some("emails"));
    assert_eq!(record.priority, 5);
    assert_eq!(record.deduplication_id.as_deref(), Some("key"));
    assert_eq!(record.parent_workflow_id.as_deref(), Some("parent"));
    assert!(
        store
            .pending_workflows("exec-a")
            .await
            .expect("pending")
            .is_empty()
    );

    let direct = NewWorkflow {
        begin_execution: true,
        ..new_workflow("direct")
    };
    let record = store.insert_workflow(&direct).await.expect("insert").record;
    assert_eq!(
        (record.status, record.executions),
        (WorkflowStatus::Pending, 1)
    );
    assert_eq!(record.started_at, Some(record.created_at));
    assert_eq!(record.queue_name, None);

    // A start without `begin_execution` gets `started_at` from its first execution only.
    let later = store
        .insert_workflow(&new_workflow("later"))
        .await
        .expect("insert")
        .record;
    assert_eq!(later.started_at, None);
    begin(store, "later", "exec-a").await.expect("begin");
    let first = store
        .get_workflow("later")
        .await
        .expect("get")
        .expect("exists");
    assert!(first.started_at.is_some());
    tokio::time::sleep(Duration::from_millis(5)).await;
    begin(store, "later", "exec-a").await.expect("begin");
    let second = store
        .get_workflow("later")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(second.started_at, first.started_at);
}

pub async fn claim_takes_priority_then_fifo_up_to_max(store: &dyn Store) {
    for (id, priority) in [("a", 1), ("b", 0), ("c", 1), ("d", 0), ("e", 2)] {
        store
            .insert_workflow(&queued(id, "q", priority))
            .await
            .expect("insert");
    }
    store
        .insert_workflow(&queued("other", "elsewhere", -1))
        .await
        .expect("insert");
    store
        .insert_workflow(&new_workflow("direct"))
        .await
        .expect("insert");

    assert!(
        store
            .claim_queued(&claim("q", "exec-b", 0))
            .await
            .expect("claim")
            .is_empty()
    );
    let first = store
        .claim_queued(&claim("q", "exec-b", 3))
        .await
        .expect("claim");
    assert_eq!(ids(first.clone()), ["b", "d", "a"]);
    for record in &first {
        assert_eq!(record.status, WorkflowStatus::Pending);
        assert_eq!(record.executor_id, "exec-b");
        assert_eq!(record.executions, 1);
        assert!(record.started_at.is_some());
        assert_eq!(record.queue_name.as_deref(), Some("q"));
    }
    let rest = store
        .claim_queued(&claim("q", "exec-b", 10))
        .await
        .expect("claim");
    assert_eq!(ids(rest), ["c", "e"]);
    assert!(
        store
            .claim_queued(&claim("q", "exec-b", 10))
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(
        store
            .claim_queued(&claim("none", "exec-b", 10))
            .await
            .expect("claim")
            .is_empty()
    );
    assert_eq!(status_of(store, "other").await, WorkflowStatus::Enqueued);
    assert_eq!(
        ids(store.pending_workflows("exec-b").await.expect("pending")),
        ["a", "b", "c", "d", "e"]
    );
}

pub async fn claim_respects_global_concurrency(store: &dyn Store) {
    for i in 0..5 {
        store
            .insert_workflow(&queued(&format!("w{i}"), "q", 0))
            .await
            .expect("insert");
    }
    let limited = |executor: &str| QueueClaim {
        concurrency: Some(2),
        ..claim("q", executor, 10)
    };
    assert_eq!(
        ids(store.claim_queued(&limited("exec-a")).await.expect("claim")),
        ["w0", "w1"]
    );
    // Another executor sees the same global limit: PENDING rows count, whoever owns them.
    assert!(
        store
            .claim_queued(&limited("exec-b"))
            .await
            .expect("claim")
            .is_empty()
    );
    store
        .finish_workflow("w0", &WorkflowEnd::Success("1".to_owned()), None)
        .await
        .expect("finish");
    assert_eq!(
        ids(store.claim_queued(&limited("exec-b")).await.expect("claim")),
        ["w2"]
    );
    assert!(
        store
            .claim_queued(&limited("exec-b"))
            .await
            .expect("claim")
            .is_empty()
    );
    // The local limit still applies under a looser global one.
    let loose = QueueClaim {
        concurrency: Some(100),
        ..claim("q", "exec-b", 1)
    };
    assert_eq!(
        ids(store.claim_queued(&loose).await.expect("claim")),
        ["w3"]
    );
}

pub async fn claim_respects_the_rate_limit_window(store: &dyn Store) {
    for i in 0..6 {
        store
            .insert_workflow(&queued(&format!("w{i}"), "q", 0))
            .await
            .expect("insert");
    }
    let period_ms = 300;
    let limited = QueueClaim {
        rate_limit: Some(RateLimit {
            limit: 2,
            period_ms,
        }),
        ..claim("q", "exec-a", 10)
    };
    let start = std::time::Instant::now();
    assert_eq!(
        ids(store.claim_queued(&limited).await.expect("claim")),
        ["w0", "w1"]
    );
    // Finished workflows still count: the limit is on starts, not on running ones.
    for id in ["w0", "w1"] {
        store
            .finish_workflow(id, &WorkflowEnd::Success("1".to_owned()), None)
            .await
            .expect("finish");
    }
    let again = store.claim_queued(&limited).await.expect("claim");
    if start.elapsed() < Duration::from_millis(period_ms as u64) {
        assert!(
            again.is_empty(),
            "claimed {:?} inside the window",
            ids(again)
        );
    }
    tokio::time::sleep(Duration::from_millis(period_ms as u64 + 20)).await;
    assert_eq!(
        ids(store.claim_queued(&limited).await.expect("claim")),
        ["w2", "w3"]
    );
}

/// Claimers on two handles of one database (two host processes, say) never take the same
/// workflow, and a global concurrency limit holds across them.
pub async fn concurrent_claimers_never_share_a_workflow(db: &Db) {
    let first = Arc::clone(&db.store);
    let second = db.open_again().await;
    let total = 300;
    for i in 0..total {
        first
            .insert_workflow(&queued(&format!("w{i:03}"), "q", i % 3))
            .await
            .expect("insert");
    }
    let claimers: Vec<_> = [(&first, "exec-a"), (&second, "exec-b")]
        .into_iter()
        .flat_map(|(store, executor)| {
            (0..3).map(move |task| {
                let store = Arc::clone(store);
                let executor = format!("{executor}-{task}");
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let got = store
                            .claim_queued(&claim("q", &executor, 7))
                            .await
                            .expect("claim");
                        if got.is_empty() {
                            return mine;
                        }
                        assert!(got.iter().all(|r| r.executor_id == executor));
                        mine.extend(ids(got));
                    }
                })
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for claimer in claimers {
        claimed.extend(claimer.await.expect("claimer"));
    }
    let unique: HashSet<_> = claimed.iter().collect();
    assert_eq!(
        claimed.len(),
        total as usize,
        "some workflow was claimed twice or never"
    );
    assert_eq!(unique.len(), total as usize);

    // A global concurrency limit holds across processes too.
    for i in 0..40 {
        first
            .insert_workflow(&queued(&format!("c{i:02}"), "capped", 0))
            .await
            .expect("insert");
    }
    let capped = |executor: &str| QueueClaim {
        concurrency: Some(10),
        ..claim("capped", executor, 3)
    };
    let claimers: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(if i % 2 == 0 { &first } else { &second });
            let claim = capped(&format!("exec-{i}"));
            tokio::spawn(async move {
                let mut n = 0;
                for _ in 0..5 {
                    n += store.claim_queued(&claim).await.expect("claim").len();
                }
                n
            })
        })
        .collect();
    let mut running = 0;
    for claimer in claimers {
        running += claimer.await.expect("claimer");
    }
    assert_eq!(running, 10);
}

/// Claimers of a limited queue on two handles of one database never run more than the limit
/// at once, never share a workflow, and dispatch by priority, then FIFO, within a rate limit.
pub async fn concurrent_claims_from_two_handles_keep_the_limit(db: &Db) {
    let first = Arc::clone(&db.store);
    let second = db.open_again().await;
    const TOTAL: usize = 60;
    const CONCURRENCY: u32 = 4;
    for i in 0..TOTAL {
        let new = queued(&format!("q-{i:02}"), "work", i32::from(i % 3 == 0));
        first.insert_workflow(&new).await.expect("enqueue");
    }

    let running = Arc::new(AtomicI64::new(0));
    let mut tasks = Vec::new();
    for worker in 0..6 {
        let store = if worker % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let running = running.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut idle = 0;
            while idle < 40 {
                let claim = QueueClaim {
                    queue: "work".to_owned(),
                    executor_id: format!("exec-{worker}"),
                    max: 2,
                    concurrency: Some(CONCURRENCY),
                    rate_limit: None,
                    partitioned: false,
                };
                let claimed = store.claim_queued(&claim).await.expect("claim");
                if claimed.is_empty() {
                    idle += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                idle = 0;
                let now = running.fetch_add(claimed.len() as i64, Ordering::SeqCst)
                    + claimed.len() as i64;
                assert!(now <= i64::from(CONCURRENCY), "{now} running at once");
                let depths = store.queue_depths().await.expect("depths");
                let pending = depths.iter().map(|d| d.pending).sum::<u64>();
                assert!(
                    pending <= u64::from(CONCURRENCY),
                    "{pending} PENDING at once"
                );
                for record in &claimed {
                    assert_eq!(record.status, WorkflowStatus::Pending);
                    assert_eq!(record.executions, 1);
                    assert_eq!(record.executor_id, format!("exec-{worker}"));
                    assert!(record.started_at.is_some());
                }
                tokio::task::yield_now().await;
                running.fetch_sub(claimed.len() as i64, Ordering::SeqCst);
                for record in claimed {
                    store
                        .finish_workflow(&record.id, &WorkflowEnd::Success("1".to_owned()), None)
                        .await
                        .expect("finish");
                    mine.push(record.id);
                }
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("claimer task"));
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "a workflow was claimed twice");
    assert_eq!(all.len(), TOTAL, "every workflow was claimed");
    let counts = first.count_by_status().await.expect("counts");
    assert_eq!(counts, vec![(WorkflowStatus::Success, TOTAL as u64)]);

    // Dispatch order: lower priority value first, then FIFO.
    for i in 0..4 {
        first
            .insert_workflow(&queued(
                &format!("o-{i}"),
                "order",
                if i == 3 { -1 } else { 0 },
            ))
            .await
            .expect("enqueue");
    }
    let claim = QueueClaim {
        queue: "order".to_owned(),
        executor_id: "exec-x".to_owned(),
        max: 10,
        concurrency: None,
        rate_limit: Some(RateLimit {
            limit: 3,
            period_ms: 60_000,
        }),
        partitioned: false,
    };
    let ids: Vec<_> = second
        .claim_queued(&claim)
        .await
        .expect("claim")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["o-3", "o-0", "o-1"], "priority, FIFO, rate limit");
    assert!(second.claim_queued(&claim).await.expect("claim").is_empty());
}

pub async fn deduplication_rejects_a_second_active_workflow_only(store: &dyn Store) {
    let with_key = |id: &str, queue: &str| NewWorkflow {
        deduplication_id: Some("order-7".to_owned()),
        ..queued(id, queue, 0)
    };
    assert!(
        store
            .insert_workflow(&with_key("a", "q"))
            .await
            .expect("insert")
            .created
    );
    let err = store
        .insert_workflow(&with_key("b", "q"))
        .await
        .expect_err("duplicate");
    assert!(
        matches!(&err, StoreError::Duplicate { queue, deduplication_id }
            if queue == "q" && deduplication_id == "order-7"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "deduplication id order-7 is already active on queue q"
    );
    assert_eq!(store.get_workflow("b").await.expect("get"), None);
    // Retrying the same workflow id is still an idempotent join, not a duplicate.
    assert!(
        !store
            .insert_workflow(&with_key("a", "q"))
            .await
            .expect("join")
            .created
    );
    // Keys are per queue.
    store
        .insert_workflow(&with_key("c", "other"))
        .await
        .expect("other queue");
    // Still active once running.
    store
        .claim_queued(&claim("q", "exec-a", 1))
        .await
        .expect("claim");
    assert!(matches!(
        store.insert_workflow(&with_key("b", "q")).await,
        Err(StoreError::Duplicate { .. })
    ));
    store
        .finish_workflow("a", &WorkflowEnd::Success("1".to_owned()), None)
        .await
        .expect("finish");
    assert!(
        store
            .insert_workflow(&with_key("b", "q"))
            .await
            .expect("after")
            .created
    );
}

pub async fn queue_depths_and_status_counts(store: &dyn Store) {
    assert!(store.queue_depths().await.expect("depths").is_empty());
    assert!(store.count_by_status().await.expect("counts").is_empty());
    for i in 0..4 {
        store
            .insert_workflow(&queued(&format!("a{i}"), "alpha", 0))
            .await
            .expect("insert");
    }
    store
        .insert_workflow(&queued("b0", "beta", 0))
        .await
        .expect("insert");
    store
        .insert_workflow(&queued("done", "gamma", 0))
        .await
        .expect("insert");
    store
        .insert_workflow(&new_workflow("direct"))
        .await
        .expect("insert");
    store
        .claim_queued(&claim("alpha", "exec-a", 3))
        .await
        .expect("claim");
    store
        .finish_workflow("a0", &WorkflowEnd::Success("1".to_owned()), None)
        .await
        .expect("finish");
    store.cancel_workflow("done").await.expect("cancel");

    assert_eq!(
        store.queue_depths().await.expect("depths"),
        vec![
            QueueDepth {
                queue: "alpha".to_owned(),
                enqueued: 1,
                pending: 2,
            },
            QueueDepth {
                queue: "beta".to_owned(),
                enqueued: 1,
                pending: 0,
            },
        ]
    );
    let mut counts = store.count_by_status().await.expect("counts");
    counts.sort_by_key(|(status, _)| status.as_str());
    assert_eq!(
        counts,
        vec![
            (WorkflowStatus::Cancelled, 1),
            (WorkflowStatus::Enqueued, 2),
            (WorkflowStatus::Pending, 3),
            (WorkflowStatus::Success, 1),
        ]
    );
}

pub async fn partitioned_claims_take_partitions_in_turn_within_each_ones_limit(store: &dyn Store) {
    let in_partition = |id: String, key: &str| NewWorkflow {
        partition_key: Some(key.to_owned()),
        ..queued(&id, "tenants", 0)
    };
    // A busy tenant floods the queue first; a small one comes after.
    for i in 0..10 {
        store
            .insert_workflow(&in_partition(format!("big-{i}"), "big"))
            .await
            .expect("enqueue big");
    }
    for i in 0..3 {
        store
            .insert_workflow(&in_partition(format!("small-{i}"), "small"))
            .await
            .expect("enqueue small");
    }
    let partitioned = |max: u32, concurrency: Option<u32>| QueueClaim {
        concurrency,
        partitioned: true,
        ..claim("tenants", "exec-a", max)
    };
    // Without limits, partitions still take turns.
    let first = store
        .claim_queued(&partitioned(3, None))
        .await
        .expect("claim");
    let mut got = ids(first);
    got.sort();
    assert_eq!(got, ["big-0", "big-1", "small-0"]);
    // With two per partition: one more of each, then nothing until one ends.
    let second = store
        .claim_queued(&partitioned(10, Some(2)))
        .await
        .expect("claim");
    assert_eq!(ids(second), ["small-1"], "big already runs two");
    assert!(
        store
            .claim_queued(&partitioned(10, Some(2)))
            .await
            .expect("claim")
            .is_empty()
    );
    store
        .finish_workflow("big-0", &WorkflowEnd::Success("1".to_owned()), None)
        .await
        .expect("finish");
    let third = store
        .claim_queued(&partitioned(10, Some(2)))
        .await
        .expect("claim");
    assert_eq!(ids(third), ["big-2"]);
    let record = store
        .get_workflow("big-2")
        .await
        .expect("get")
        .expect("row");
    assert_eq!(record.partition_key.as_deref(), Some("big"));
}
