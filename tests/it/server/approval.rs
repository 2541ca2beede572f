//! The human-in-the-loop approval, driven from outside a real `reprise serve`: through the
//! admin API (events awaited, the log read as server-sent events, the decision sent), the CLI
//! on the database from another process (which wakes the parked workflow), and the client
//! crate. And messages across a SIGKILL: one received before the kill is not received again,
//! one sent while the server was down is received after its restart.

use crate::common;
use crate::guests::APPROVAL;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::server::{Server, poll_until};
use common::{guest, reprise_bin};
use futures_util::StreamExt;
use serde_json::{Value, json};

fn config(dir: &Path) -> String {
    format!(
        r#"
database = "{db}"
durability = "process"
executor_id = "approvals"

[server]
token = "secret"

[components]
approval = "{approval}"
"#,
        db = dir.join("serve.db").display(),
        approval = guest(APPROVAL).display(),
    )
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn start(server: &Server, id: &str, workflow: &str, input: Value) {
    let response = http()
        .post(format!("{}/workflows", server.url))
        .bearer_auth("secret")
        .json(&json!({"workflow": workflow, "input": input, "id": id}))
        .send()
        .await
        .expect("start");
    assert_eq!(response.status().as_u16(), 201);
}

async fn result(server: &Server, id: &str) -> Value {
    let response = http()
        .get(format!(
            "{}/workflows/{id}/result?timeout_ms=30000",
            server.url
        ))
        .bearer_auth("secret")
        .send()
        .await
        .expect("result");
    assert_eq!(response.status().as_u16(), 200, "{id} did not end");
    let view: Value = response.json().await.expect("json");
    assert_eq!(view["status"], "SUCCESS", "{view}");
    view["output"].clone()
}

/// `reprise workflow …` on the server's database, from another process.
fn cli(server: &Server, args: &[&str]) -> std::process::Output {
    Command::new(reprise_bin())
        .arg("workflow")
        .args(args)
        .arg("--database")
        .arg(server.dir.join("serve.db"))
        .arg("--durability")
        .arg("process")
        .output()
        .expect("run reprise")
}

#[tokio::test]
async fn an_approval_through_the_api_with_its_log_as_server_sent_events() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(dir.path(), &config(dir.path()));
    let input = json!({"request": "deploy", "approver": "ada", "timeout_ms": 600_000});
    start(&server, "api-1", "approval", input).await;

    // The event is awaited: the request returns as soon as the workflow sets it.
    let event: Value = http()
        .get(format!(
            "{}/workflows/api-1/events/status?timeout_ms=20000",
            server.url
        ))
        .bearer_auth("secret")
        .send()
        .await
        .expect("event")
        .json()
        .await
        .expect("json");
    assert_eq!(event["value"], "waiting", "{event}");
    let unset = http()
        .get(format!(
            "{}/workflows/api-1/events/nothing?timeout_ms=50",
            server.url
        ))
        .bearer_auth("secret")
        .send()
        .await
        .expect("event");
    assert_eq!(unset.status().as_u16(), 202);

    // The log as server-sent events, read while the workflow waits and after it ends.
    let sse = http()
        .get(format!("{}/workflows/api-1/streams/log", server.url))
        .bearer_auth("secret")
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("sse");
    assert_eq!(sse.status().as_u16(), 200);
    let reader = tokio::spawn(async move {
        let mut text = String::new();
        let mut body = sse.bytes_stream();
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
            if text.contains("event: closed") {
                break;
            }
        }
        text
    });

    let sent = http()
        .post(format!("{}/workflows/api-1/messages", server.url))
        .bearer_auth("secret")
        .json(
            &json!({"topic": "decision", "message": {"approve": true, "by": "ada"},
                      "idempotency_key": "ada-1"}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(sent.status().as_u16(), 201);
    let again = http()
        .post(format!("{}/workflows/api-1/messages", server.url))
        .bearer_auth("secret")
        .json(
            &json!({"topic": "decision", "message": {"approve": true, "by": "ada"},
                      "idempotency_key": "ada-1"}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(again.status().as_u16(), 200, "the repeat is stored once");

    let output = result(&server, "api-1").await;
    assert_eq!(output["outcome"], "approved");
    let events = tokio::time::timeout(Duration::from_secs(20), reader)
        .await
        .expect("the event stream ends with the workflow")
        .expect("reader");
    assert!(events.contains("id: 0\n"), "{events}");
    assert!(events.contains("approved"), "{events}");
    assert!(events.contains("event: closed"), "{events}");

    let messages: Value = http()
        .get(format!("{}/workflows/api-1/messages", server.url))
        .bearer_auth("secret")
        .send()
        .await
        .expect("messages")
        .json()
        .await
        .expect("json");
    assert_eq!(messages.as_array().map(Vec::len), Some(1), "{messages}");
    assert!(messages[0]["consumed_at"].is_i64(), "{messages}");

    let unknown = http()
        .post(format!("{}/workflows/nobody/messages", server.url))
        .bearer_auth("secret")
        .json(&json!({"topic": "decision", "message": 1}))
        .send()
        .await
        .expect("send");
    assert_eq!(unknown.status().as_u16(), 404);
}

#[tokio::test]
async fn a_rejection_sent_by_the_cli_from_another_process_wakes_the_parked_workflow() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(dir.path(), &config(dir.path()));
    let input = json!({"request": "delete prod", "approver": "bob", "timeout_ms": 600_000});
    start(&server, "cli-1", "approval", input).await;

    let event = cli(&server, &["event", "cli-1", "status", "--timeout", "20s"]);
    assert!(event.status.success(), "{event:?}");
    assert_eq!(String::from_utf8_lossy(&event.stdout).trim(), "\"waiting\"");
    // Parked: it holds no instance while it waits.
    let parked = poll_until(|| server.parked(), |parked| *parked == 1).await;
    assert_eq!(parked, 1);

    let sent = cli(
        &server,
        &[
            "send",
            "cli-1",
            "decision",
            r#"{"approve": false, "by": "bob", "comment": "no"}"#,
        ],
    );
    assert!(sent.status.success(), "{sent:?}");
    let output = result(&server, "cli-1").await;
    assert_eq!(output["outcome"], "rejected");
    assert_eq!(output["comment"], "no");

    let stream = cli(&server, &["stream", "cli-1", "log", "--follow"]);
    assert!(stream.status.success(), "{stream:?}");
    let lines: Vec<Value> = String::from_utf8_lossy(&stream.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON value a line"))
        .collect();
    assert!(lines.len() >= 2, "{lines:?}");

    let unset = cli(&server, &["event", "cli-1", "nothing"]);
    assert_eq!(unset.status.code(), Some(1), "{unset:?}");
    let unknown = cli(&server, &["send", "nobody", "decision", "1"]);
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nobody"));
}

#[tokio::test]
async fn an_approval_through_the_client_crate() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(dir.path(), &config(dir.path()));
    let client = server.client();
    let options = reprise_client::StartOptions {
        id: Some("client-1".into()),
        ..Default::default()
    };
    let input = json!({"request": "a day off", "approver": "cy", "timeout_ms": 600_000});
    let handle = client
        .start_with("approval", &input, &options)
        .await
        .expect("start");
    let status: Option<String> = client
        .get_event("client-1", "status", Duration::from_secs(20))
        .await
        .expect("event");
    assert_eq!(status.as_deref(), Some("waiting"));
    let stored = client
        .send_message(
            "client-1",
            "decision",
            &json!({"approve": true, "by": "cy"}),
            None,
        )
        .await
        .expect("send");
    assert!(stored);
    let output: Value = handle.result().await.expect("result");
    assert_eq!(output["outcome"], "approved");
    let log: Vec<String> = client
        .read_stream_to_end("client-1", "log", 0)
        .await
        .expect("log");
    assert!(
        log.len() >= 2 && log.iter().any(|l| l.contains("cy")),
        "{log:?}"
    );
    let missing: Option<String> = client
        .get_event("client-1", "nothing", Duration::from_millis(100))
        .await
        .expect("event");
    assert!(missing.is_none());
}

#[tokio::test]
async fn a_message_received_before_a_kill_is_not_received_again_and_one_sent_meanwhile_is() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = Server::start(dir.path(), &config(dir.path()));
    start(
        &server,
        "crash-1",
        "echo_messages",
        json!({"count": 2, "timeout_ms": 600_000}),
    )
    .await;
    let client = server.client();
    client
        .send_message("crash-1", "in", &json!("first"), None)
        .await
        .expect("send");
    // The first message is received and recorded.
    let received = poll_until(
        || async {
            let steps = server.steps("crash-1").await;
            steps
                .iter()
                .filter(|s| s["name"] == "reprise.recv:in" && s["output"]["value"].is_string())
                .count()
        },
        |n| *n == 1,
    )
    .await;
    assert_eq!(received, 1);
    assert_eq!(server.signal_and_wait("KILL"), None);

    // Sent while no server runs, from another process.
    let sent = cli(&server, &["send", "crash-1", "in", "\"second\""]);
    assert!(sent.status.success(), "{sent:?}");
    let address = server.address().to_string();
    drop(server);
    let server = Server::start_on(dir.path(), &config(dir.path()), &address);
    let output = result(&server, "crash-1").await;
    assert_eq!(output, json!(["first", "second"]));
}
