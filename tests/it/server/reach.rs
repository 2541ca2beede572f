//! Instances as a trust boundary: a guest of instance `beta` cannot answer, read or await the
//! workflows of instance `alpha` — they look as if they did not exist — while `gamma`, whose
//! config says `reach = ["alpha"]`, can. Outside clients with the token reach everything.

use crate::common;
use crate::guests::APPROVAL;

use common::guest;
use common::server::{Server, poll_until};
use reprise_client::{Client, StartOptions};
use serde_json::{Value, json};

fn config(dir: &std::path::Path) -> String {
    format!(
        r#"
database = "{db}"
durability = "process"
executor_id = "tenants"

[server]
token = "secret"

[components]
approval = "{approval}"

[instances.alpha]
component = "approval"

[instances.beta]
component = "approval"

[instances.gamma]
component = "approval"
reach = ["alpha"]
"#,
        db = dir.join("serve.db").display(),
        approval = guest(APPROVAL).display(),
    )
}

/// Runs `workflow` on `instance` to its end: its status, output and error.
async fn run_on(
    client: &Client,
    instance: &str,
    workflow: &str,
    input: Value,
) -> (String, Value, String) {
    let options = StartOptions {
        instance: Some(instance.into()),
        ..Default::default()
    };
    let handle = client
        .start_with(workflow, &input, &options)
        .await
        .expect("start");
    let view = handle.status_at_end().await.expect("ended");
    (
        view.status.as_str().to_string(),
        view.output.unwrap_or(Value::Null),
        view.error.unwrap_or_default(),
    )
}

#[tokio::test]
async fn a_guest_reaches_only_its_own_instance_and_what_reach_names() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(dir.path(), &config(dir.path()));
    let client = server.client();

    // alpha's pending approval, and an ended alpha workflow with an output.
    let options = StartOptions {
        instance: Some("alpha".into()),
        id: Some("alpha-approval".into()),
        ..Default::default()
    };
    client
        .start_with(
            "approval",
            &json!({"request": "pay", "approver": "ada"}),
            &options,
        )
        .await
        .expect("start the approval");
    let waiting = poll_until(
        || async {
            client
                .get_event::<Value>("alpha-approval", "status", std::time::Duration::ZERO)
                .await
                .ok()
                .flatten()
        },
        |status| status.as_ref() == Some(&json!("waiting")),
    )
    .await;
    assert_eq!(
        waiting,
        Some(json!("waiting")),
        "outside clients read alpha's events"
    );
    let published = StartOptions {
        instance: Some("alpha".into()),
        id: Some("alpha-published".into()),
        ..Default::default()
    };
    let handle = client
        .start_with(
            "publish_events",
            &json!({"key": "k", "values": [1]}),
            &published,
        )
        .await
        .expect("start");
    assert_eq!(
        handle.status_at_end().await.expect("end").status.as_str(),
        "SUCCESS"
    );

    // beta: its answer to alpha's approval is refused as if the id did not exist...
    let decision = json!({"to": "alpha-approval", "topic": "decision",
                          "message": {"approve": true, "by": "beta"}});
    let (status, _, error) = run_on(&client, "beta", "notify", decision.clone()).await;
    assert_eq!(status, "ERROR");
    assert!(
        error.contains("cannot send to alpha-approval: no workflow with id alpha-approval within reach of instance \"beta\""),
        "{error}"
    );
    // ...it reads none of alpha's events...
    let read = json!({"workflow_id": "alpha-approval", "key": "status", "timeout_ms": 300});
    let (status, output, _) = run_on(&client, "beta", "wait_event", read.clone()).await;
    assert_eq!((status.as_str(), output), ("SUCCESS", Value::Null));
    // ...and awaits none of alpha's outputs, with the same words as for an unknown id.
    let (status, _, error) =
        run_on(&client, "beta", "await_output", json!("alpha-published")).await;
    assert_eq!(status, "ERROR");
    assert!(
        error.contains("no workflow with id alpha-published within reach"),
        "{error}"
    );
    let (_, _, unknown) = run_on(&client, "beta", "await_output", json!("never-was")).await;
    assert_eq!(
        unknown.replace("never-was", "ID"),
        error.replace("alpha-published", "ID"),
        "a foreign workflow and a missing one look alike"
    );
    assert_eq!(
        client
            .status("alpha-approval")
            .await
            .expect("status")
            .status
            .as_str(),
        "PENDING",
        "beta changed nothing"
    );

    // gamma may reach alpha: it reads, awaits and answers.
    let (status, output, _) = run_on(&client, "gamma", "wait_event", read).await;
    assert_eq!((status.as_str(), output), ("SUCCESS", json!("waiting")));
    let (status, output, _) =
        run_on(&client, "gamma", "await_output", json!("alpha-published")).await;
    assert_eq!((status.as_str(), output), ("SUCCESS", json!(1)));
    let decision = json!({"to": "alpha-approval", "topic": "decision",
                          "message": {"approve": true, "by": "gamma"}});
    let (status, _, error) = run_on(&client, "gamma", "notify", decision).await;
    assert_eq!(status, "SUCCESS", "{error}");
    let approved = client
        .handle("alpha-approval")
        .status_at_end()
        .await
        .expect("approval ended");
    assert_eq!(
        approved.output,
        Some(json!({"outcome": "approved", "by": "gamma", "comment": ""}))
    );
}
