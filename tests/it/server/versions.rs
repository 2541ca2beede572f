//! Versions side by side under `reprise serve`: a new version arrives without a restart (by
//! upload, or on SIGHUP), new starts get it, workflows in flight keep theirs, and
//! `POST /workflows/{id}/upgrade` moves one when its history replays cleanly on the new code.

use crate::common;
use crate::guests::{ORDERS_V1, ORDERS_V2};

use std::time::Duration;

use common::guest;
use common::server::{Server, poll_until};
use serde_json::{Value, json};

/// A server whose `orders` component is a copy of v1 the test replaces (or adds v2 beside),
/// as a deploy would. The web UI's tests serve it too.
pub(super) fn config(dir: &std::path::Path) -> String {
    std::fs::copy(guest(ORDERS_V1), dir.join("orders.wasm")).expect("copy v1");
    format!(
        r#"
database = "{db}"
durability = "process"
executor_id = "versions"

[server]
token = "secret"
max_body = "8MiB"

[components]
orders = "{orders}"
"#,
        db = dir.join("serve.db").display(),
        orders = dir.join("orders.wasm").display(),
    )
}

async fn call(
    method: reqwest::Method,
    server: &Server,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", server.url))
        .bearer_auth("secret");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn start(server: &Server, id: &str, input: u32) -> Value {
    let body = json!({"workflow": "order", "input": input, "id": id});
    let (status, view) = call(reqwest::Method::POST, server, "/workflows", Some(body)).await;
    assert_eq!(status, 201, "{view}");
    view
}

/// Waits until `id` waits for its `ship` message.
async fn waiting(server: &Server, id: &str) {
    let steps = poll_until(
        || server.steps(id),
        |steps| steps.iter().any(|s| s["name"] == "reprise.recv-deadline"),
    )
    .await;
    assert!(
        steps.iter().any(|s| s["name"] == "reprise.recv-deadline"),
        "{steps:?}"
    );
}

async fn versions(server: &Server) -> Vec<Value> {
    let (status, listed) = call(reqwest::Method::GET, server, "/components", None).await;
    assert_eq!(status, 200, "{listed}");
    listed["versions"].as_array().cloned().expect("versions")
}

#[tokio::test]
async fn a_new_version_serves_new_starts_while_workflows_in_flight_keep_theirs() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(dir.path(), &config(dir.path()));
    let old = start(&server, "old-1", 1).await;
    waiting(&server, "old-1").await;
    let v1 = old["app_version"]
        .as_str()
        .expect("app_version")
        .to_string();

    // Uploaded: a new version, named after its component, serving new starts.
    let bytes = std::fs::read(guest(ORDERS_V2)).expect("v2");
    let response = reqwest::Client::new()
        .post(format!("{}/components/orders", server.url))
        .bearer_auth("secret")
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status().as_u16(), 201);
    let added: Value = response.json().await.expect("json");
    let v2 = added["digest"].as_str().expect("digest").to_string();
    assert_ne!(v1, v2);
    let new = start(&server, "new-1", 2).await;
    assert_eq!(
        new["app_version"],
        v2.as_str(),
        "new starts get the new version"
    );
    waiting(&server, "new-1").await;
    let listed = versions(&server).await;
    let of = |digest: &str| {
        listed
            .iter()
            .find(|v| v["digest"] == digest)
            .cloned()
            .expect("listed")
    };
    assert_eq!(
        (of(&v1)["in_flight"].as_u64(), of(&v1)["serving"].as_bool()),
        (Some(1), Some(false)),
        "{listed:?}"
    );
    assert_eq!(
        (of(&v2)["in_flight"].as_u64(), of(&v2)["serving"].as_bool()),
        (Some(1), Some(true)),
        "{listed:?}"
    );
    assert_eq!(of(&v2)["name"], "orders");

    // The old order moves to the new code (its history replays cleanly), then finishes on it.
    let (status, moved) = call(
        reqwest::Method::POST,
        &server,
        "/workflows/old-1/upgrade",
        Some(json!({"component": "orders"})),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(
        (moved["upgraded"].as_bool(), moved["verdict"].as_str()),
        (Some(true), Some("clean"))
    );
    for id in ["old-1", "new-1"] {
        let (status, _) = call(
            reqwest::Method::POST,
            &server,
            &format!("/workflows/{id}/messages"),
            Some(json!({"topic": "ship", "message": "now"})),
        )
        .await;
        assert!(status < 300, "send to {id}: {status}");
    }
    let client = server.client();
    for (id, output) in [
        ("old-1", "charged 1 (checked)"),
        ("new-1", "charged 2 (checked)"),
    ] {
        let ended = tokio::time::timeout(Duration::from_secs(30), client.wait(id))
            .await
            .expect("ended in time")
            .expect("result");
        assert_eq!(ended.output, Some(json!(output)), "{id}: {ended:?}");
    }
    let listed = versions(&server).await;
    let drained = listed
        .iter()
        .find(|v| v["digest"] == v1.as_str())
        .expect("v1 listed");
    assert_eq!(drained["in_flight"], 0, "v1 is drained: {listed:?}");
}

#[tokio::test]
async fn a_refused_move_changes_nothing_and_sighup_picks_up_a_new_file() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = Server::start(dir.path(), &config(dir.path()));
    let body = json!({"workflow": "refund", "input": 1, "id": "refund-1"});
    let (status, refund) = call(reqwest::Method::POST, &server, "/workflows", Some(body)).await;
    assert_eq!(status, 201, "{refund}");
    waiting(&server, "refund-1").await;
    // The deploy replaces the file; SIGHUP loads it.
    std::fs::copy(guest(ORDERS_V2), dir.path().join("orders.wasm")).expect("copy v2");
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -s HUP {}", server.child.id())])
        .status()
        .expect("sh");
    assert!(status.success());
    server.wait_for_log(&["SIGHUP: new version loaded"], Duration::from_secs(20));
    let (status, moved) = call(
        reqwest::Method::POST,
        &server,
        "/workflows/refund-1/upgrade",
        Some(json!({"component": "orders"})),
    )
    .await;
    assert_eq!(status, 409, "the renamed step diverges: {moved}");
    assert_eq!(
        (moved["upgraded"].as_bool(), moved["verdict"].as_str()),
        (Some(false), Some("diverged"))
    );
    let (_, still) = call(reqwest::Method::GET, &server, "/workflows/refund-1", None).await;
    assert_eq!(
        still["app_version"], refund["app_version"],
        "nothing changed"
    );
    assert_eq!(server.signal_and_wait("TERM"), Some(0));
}

#[tokio::test]
async fn the_api_checks_new_code_replays_exports_and_imports_with_nothing_executed() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(dir.path(), &config(dir.path()));
    let body = json!({"workflow": "refund", "input": 1, "id": "refund-1"});
    let (status, _) = call(reqwest::Method::POST, &server, "/workflows", Some(body)).await;
    assert_eq!(status, 201);
    start(&server, "order-1", 1).await;
    waiting(&server, "refund-1").await;
    waiting(&server, "order-1").await;
    let http = reqwest::Client::new();
    // New code checked against both: the order replays, the refund diverges.
    let report: Value = http
        .post(format!("{}/upgrade-check", server.url))
        .bearer_auth("secret")
        .header("content-type", "application/wasm")
        .body(std::fs::read(guest(ORDERS_V2)).expect("v2"))
        .send()
        .await
        .expect("check")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (report["checked"].as_u64(), report["clean"].as_u64()),
        (Some(2), Some(1)),
        "{report}"
    );
    // One workflow replayed on its own code: its timeline and where it would go on.
    let (status, replayed) = call(
        reqwest::Method::GET,
        &server,
        "/workflows/order-1/replay",
        None,
    )
    .await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["result"]["verdict"], "clean", "{replayed}");
    assert_eq!(replayed["result"]["next"]["name"], "reprise.recv:ship");
    assert_eq!(
        replayed["logs"][0]["message"],
        "order 1 reserved, waiting for ship"
    );
    let (status, patches) = call(reqwest::Method::GET, &server, "/patches", None).await;
    assert_eq!(
        (status, patches["patches"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{patches}"
    );
    // Exported, then imported under the same id: refused, it exists here.
    let (status, bundle) = call(
        reqwest::Method::GET,
        &server,
        "/workflows/order-1/export",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(bundle["workflow"]["id"], "order-1");
    let (status, refused) = call(
        reqwest::Method::POST,
        &server,
        "/workflows/import",
        Some(bundle.clone()),
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    // Under another id it comes in paused, its history whole.
    let mut copy = bundle;
    copy["workflow"]["id"] = json!("order-1-copy");
    let (status, imported) = call(
        reqwest::Method::POST,
        &server,
        "/workflows/import?paused=true",
        Some(copy),
    )
    .await;
    assert_eq!(
        (status, imported["status"].as_str()),
        (201, Some("PAUSED")),
        "{imported}"
    );
    assert_eq!(
        server.steps("order-1-copy").await.len(),
        server.steps("order-1").await.len()
    );
}
