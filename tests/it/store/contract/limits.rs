//! Step limits and topic types, as every backend stores them: slots of a limited step that
//! bound its concurrency and rate across hosts and free themselves when their workflow's epoch
//! moves on, and the message types kept with a component.

use std::time::Duration;

use reprise_host::store::{RateLimit, StepSlotRequest, Store, WorkflowEnd};

use super::{begin, new_workflow};

/// A request for a slot of step `charge` of instance `orders` for workflow `id` under its
/// current epoch.
async fn request(
    store: &dyn Store,
    id: &str,
    concurrency: Option<u32>,
    rate: Option<RateLimit>,
) -> StepSlotRequest {
    let epoch = store
        .get_workflow(id)
        .await
        .expect("read")
        .expect("exists")
        .epoch;
    StepSlotRequest {
        instance: "orders".into(),
        step: "charge".into(),
        workflow_id: id.into(),
        epoch,
        concurrency,
        rate,
    }
}

async fn running(store: &dyn Store, id: &str) {
    store
        .insert_workflow(&new_workflow(id))
        .await
        .expect("insert");
    begin(store, id, "exec-a").await.expect("begin");
}

pub async fn step_slots_bound_concurrency_and_free_with_their_epoch(store: &dyn Store) {
    for id in ["w1", "w2", "w3"] {
        running(store, id).await;
    }
    let two = |id: &'static str| request(store, id, Some(2), None);
    let first = store.take_step_slot(&two("w1").await).await.expect("take");
    let second = store.take_step_slot(&two("w2").await).await.expect("take");
    assert!(first.is_some() && second.is_some(), "two slots of two");
    assert_eq!(
        store.take_step_slot(&two("w3").await).await.expect("take"),
        None
    );
    assert!(!store.step_slot_free(&two("w3").await).await.expect("read"));

    store
        .release_step_slot(first.expect("slot"))
        .await
        .expect("release");
    assert!(store.step_slot_free(&two("w3").await).await.expect("read"));
    assert!(
        store
            .take_step_slot(&two("w3").await)
            .await
            .expect("take")
            .is_some()
    );
    assert_eq!(
        store.take_step_slot(&two("w1").await).await.expect("take"),
        None,
        "w2 and w3 hold both"
    );

    // w2's host died and w2 was recovered under a new epoch: its old slot counts no more.
    begin(store, "w2", "exec-b").await.expect("recover");
    assert!(
        store
            .take_step_slot(&two("w1").await)
            .await
            .expect("take")
            .is_some()
    );
    assert_eq!(
        store.take_step_slot(&two("w2").await).await.expect("take"),
        None
    );
    // An ended workflow holds nothing either.
    store
        .finish_workflow("w3", &WorkflowEnd::Success("1".into()), None)
        .await
        .expect("finish");
    assert!(
        store
            .take_step_slot(&two("w2").await)
            .await
            .expect("take")
            .is_some()
    );
}

pub async fn step_slots_bound_the_rate_per_window(store: &dyn Store) {
    running(store, "r1").await;
    let rate = Some(RateLimit {
        limit: 2,
        period_ms: 400,
    });
    let req = request(store, "r1", None, rate).await;
    let a = store
        .take_step_slot(&req)
        .await
        .expect("take")
        .expect("first");
    let b = store
        .take_step_slot(&req)
        .await
        .expect("take")
        .expect("second");
    store.release_step_slot(a).await.expect("release");
    store.release_step_slot(b).await.expect("release");
    assert_eq!(
        store.take_step_slot(&req).await.expect("take"),
        None,
        "given back, but begun within the window"
    );
    assert!(!store.step_slot_free(&req).await.expect("read"));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(store.step_slot_free(&req).await.expect("read"));
    assert!(
        store.take_step_slot(&req).await.expect("take").is_some(),
        "the window moved on"
    );
}

pub async fn topic_types_are_kept_with_the_component(store: &dyn Store) {
    let types = r#"[{"name":"shipped","type_name":"Shipped","schema":{"type":"object"}}]"#;
    // Stored before components kept their types: filled in when it is stored again.
    store
        .put_component("sha256:abc", b"code", None)
        .await
        .expect("put");
    store
        .insert_workflow(&new_workflow("t1"))
        .await
        .expect("insert");
    assert_eq!(
        store.workflow_version("t1").await.expect("read").as_deref(),
        Some("sha256:abc")
    );
    assert_eq!(
        store.component_topics("sha256:abc").await.expect("read"),
        None
    );
    store
        .put_component("sha256:abc", b"code", Some(types))
        .await
        .expect("put");
    store
        .put_component("sha256:abc", b"code", Some("[]"))
        .await
        .expect("put again");
    let kept = store.component_topics("sha256:abc").await.expect("read");
    assert_eq!(kept.as_deref(), Some(types), "kept once");
    assert_eq!(store.workflow_version("ghost").await.expect("read"), None);
    assert_eq!(
        store.component_topics("sha256:none").await.expect("read"),
        None
    );
}

/// Two handles on one database (two hosts) take slots of one step at once: together they
/// never hold more than its concurrency.
pub async fn concurrent_takers_on_two_handles_keep_the_step_limit(db: &super::Db) {
    const LIMIT: u32 = 3;
    let handles = [std::sync::Arc::clone(&db.store), db.open_again().await];
    for n in 0..12 {
        running(&*handles[0], &format!("c{n}")).await;
    }
    let mut takers = Vec::new();
    for n in 0..12 {
        let store = handles[n % 2].clone();
        takers.push(tokio::spawn(async move {
            let req = request(&*store, &format!("c{n}"), Some(LIMIT), None).await;
            store.take_step_slot(&req).await.expect("take")
        }));
    }
    let mut taken = 0;
    for taker in takers {
        taken += usize::from(taker.await.expect("taker").is_some());
    }
    assert_eq!(
        taken, LIMIT as usize,
        "exactly the limit, across both handles"
    );
}
