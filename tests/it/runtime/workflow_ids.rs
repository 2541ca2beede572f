//! Workflow ids follow one rule (`reprise_client::ids`) wherever they enter — the admin API,
//! the command line, the client crate, a guest's child options — and every id the host makes
//! up itself passes it.

use crate::common;
use crate::guests::FIB;

use std::collections::BTreeSet;
use std::process::Command;

use common::server::{Server, config};
use common::{Harness, guest, options, reprise_bin};
use reprise_client::{ClientError, StartOptions};
use reprise_host::WorkflowStatus;
use reprise_host::runtime::{MAX_WORKFLOW_ID_LEN, validate_workflow_id};
use reprise_host::store::WorkflowFilter;
use serde_json::{Value, json};

/// Part of every refusal: the rule itself.
const RULE: &str = "ASCII letters, digits and `-_.:@`";

async fn post(url: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth("secret")
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_bad_ids_in_bodies_and_paths_with_400() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config(dir.path(), ""));
    let url = &server.url;

    let too_long = "x".repeat(MAX_WORKFLOW_ID_LEN + 1);
    for id in ["", "x\0y", "../../../etc/passwd", "..", "a b", &too_long] {
        let body = json!({"workflow": "fib", "input": 1, "id": id});
        let (status, answer) = post(&format!("{url}/workflows"), &body).await;
        assert_eq!(status, 400, "{id:?}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(RULE), "{id:?}: {answer}");
    }

    let longest = "y".repeat(MAX_WORKFLOW_ID_LEN);
    let body = json!({"workflow": "fib", "input": 1, "id": longest});
    let (status, answer) = post(&format!("{url}/workflows"), &body).await;
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = post(
        &format!("{url}/workflows"),
        &json!({"workflow": "fib", "input": 1, "id": "base"}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let client = server.client();
    client
        .handle("base")
        .result::<u64>()
        .await
        .expect("base ends");

    let (status, answer) = post(
        &format!("{url}/workflows/base/fork"),
        &json!({"from_step": 0, "id": "a/b"}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap_or_default().contains(RULE));

    // An id in the path is checked too: a bad one is the caller's mistake (400), not a
    // workflow that happens not to exist (404).
    for path in ["a%20b", "%00", "x%2Fy/steps", "a%3Fb/result"] {
        let response = reqwest::Client::new()
            .get(format!("{url}/workflows/{path}"))
            .bearer_auth("secret")
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 400, "{path}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(RULE), "{path}: {answer}");
    }

    assert_eq!(
        server
            .list("limit=1000")
            .await
            .iter()
            .filter_map(|w| w["id"].as_str().map(String::from))
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([longest, "base".to_string()]),
        "nothing was created under a bad id"
    );
}

#[test]
fn the_cli_refuses_bad_ids_with_exit_2_before_opening_the_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fib = guest(FIB).to_string_lossy().into_owned();
    let db = dir.path().join("ids.db");
    let db_arg = db.to_string_lossy().into_owned();
    let long = "z".repeat(300);
    let cases: Vec<Vec<&str>> = vec![
        vec!["run", &fib, "fib", "1", "--id", ""],
        vec!["run", &fib, "fib", "1", "--id", "a b"],
        vec!["run", &fib, "fib", "1", "--id", &long],
        vec!["workflow", "get", "../../../etc/passwd"],
        vec!["workflow", "steps", "a b"],
        vec!["workflow", "cancel", ""],
        vec!["workflow", "resume", ".."],
        vec![
            "workflow",
            "fork",
            "base",
            "--from-step",
            "0",
            "--new-id",
            "a/b",
        ],
        vec!["workflow", "fork", "a/b", "--from-step", "0"],
    ];
    for args in cases {
        let out = Command::new(reprise_bin())
            .args(&args)
            .args(["--database", &db_arg])
            .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
            .output()
            .expect("run reprise");
        let message = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {message}");
        assert!(message.contains("workflow id"), "{args:?}: {message}");
        assert!(message.contains(RULE), "{args:?}: {message}");
    }
    assert!(!db.exists(), "no command opened (and created) the database");
}

#[tokio::test]
async fn the_client_refuses_a_bad_id_before_sending_anything() {
    // Nothing listens here: a request that went out would fail to connect instead.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let client =
        reprise_client::Client::new(&format!("http://127.0.0.1:{port}"), None).expect("client");
    let bad = StartOptions {
        id: Some("a/b".into()),
        ..StartOptions::default()
    };
    let refusals = [
        client.start_with("fib", &1, &bad).await.map(|_| ()),
        client.status("a b").await.map(|_| ()),
        client.cancel("").await.map(|_| ()),
        client.resume("..").await.map(|_| ()),
        client.fork("ok", 0, Some("x\0y")).await.map(|_| ()),
        client.fork("a/b", 0, None).await.map(|_| ()),
        client.handle("a?b").result::<u64>().await.map(|_| ()),
    ];
    for (i, refusal) in refusals.into_iter().enumerate() {
        let err = refusal.expect_err("refused");
        assert!(
            !matches!(err, ClientError::Http(_)),
            "case {i} was sent: {err}"
        );
        let message = err.to_string();
        assert!(message.contains(RULE), "case {i}: {message}");
    }
}

#[tokio::test]
async fn a_guest_chosen_child_id_that_breaks_the_rule_is_not_started_not_a_trap() {
    let mut h = Harness::new(options(3)).await;
    let refused = h.run(FIB, "child_with_id", r#""bad/id""#).await;
    assert_eq!(refused.status, WorkflowStatus::Success, "{refused:?}");
    assert_eq!(refused.traps, 0, "{refused:?}");
    let output: String =
        serde_json::from_str(refused.output.as_deref().unwrap_or("null")).expect("output");
    assert!(output.starts_with("not started: "), "{output}");
    assert!(output.contains(RULE), "{output}");

    let started = h.run(FIB, "child_with_id", r#""kid-1""#).await;
    assert_eq!(started.output.as_deref(), Some(r#""started kid-1""#));
    let all = h
        .store
        .list_workflows(&WorkflowFilter::default())
        .await
        .expect("list");
    let ids: BTreeSet<&str> = all.iter().map(|w| w.id.as_str()).collect();
    assert!(ids.contains("kid-1") && !ids.contains("bad/id"), "{ids:?}");
}

#[tokio::test]
async fn children_of_a_parent_with_a_long_id_get_ids_that_pass_the_rule() {
    let mut h = Harness::new(options(3)).await;
    let component = h.component(FIB).await;
    for parent in ["p".repeat(MAX_WORKFLOW_ID_LEN), "q".repeat(195)] {
        let wf = h
            .runtime
            .run(&component, "fib_children", "3", Some(parent.clone()))
            .await
            .expect("run");
        assert_eq!(wf.status, WorkflowStatus::Success, "{wf:?}");
        assert_eq!(wf.output.as_deref(), Some("[1,1,2]"));
        let all = h
            .store
            .list_workflows(&WorkflowFilter::default())
            .await
            .expect("list");
        let children: Vec<_> = all
            .iter()
            .filter(|w| w.parent_workflow_id.as_deref() == Some(parent.as_str()))
            .collect();
        assert_eq!(children.len(), 3, "{children:?}");
        for child in children {
            assert_eq!(validate_workflow_id(&child.id), Ok(()), "{}", child.id);
        }
    }
    // Fresh ids (a start without one) pass too.
    let fresh = h.run(FIB, "fib", "2").await;
    assert_eq!(validate_workflow_id(&fresh.id), Ok(()), "{}", fresh.id);
}
