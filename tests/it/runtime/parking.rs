//! Workflows that wait hold no instance: past the instance pool's size, sleeping workflows and a
//! parent awaiting its children are parked and resumed by replay, and executions that find no
//! free instance wait their turn. Nothing is dropped, nothing stays PENDING undriven.

use crate::common;
use crate::guests::FIB;

use std::path::Path;

use common::guest;
use common::server::Server;
use futures_util::stream::{self, StreamExt};
use serde_json::{Value, json};

/// A server whose instance pool holds `max_instances` instances.
fn start(dir: &Path, max_instances: u32) -> Server {
    let config = format!(
        r#"
database = "{db}"
durability = "process"
max_instances = {max_instances}

[server]
token = "secret"

[components]
fib = "{fib}"
"#,
        db = dir.join("serve.db").display(),
        fib = guest(FIB).display(),
    );
    Server::start(dir, &config)
}

async fn post(http: &reqwest::Client, server: &Server, body: Value) -> String {
    let response = http
        .post(format!("{}/workflows", server.url))
        .bearer_auth("secret")
        .json(&body)
        .send()
        .await
        .expect("start");
    assert_eq!(response.status().as_u16(), 201, "{body}");
    let view: Value = response.json().await.expect("json");
    view["id"].as_str().expect("id").to_owned()
}

/// Waits for the workflow's end through the API, for at most two minutes; returns its final
/// view.
async fn result(http: &reqwest::Client, server: &Server, id: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "workflow {id} did not end in two minutes"
        );
        let response = http
            .get(format!(
                "{}/workflows/{id}/result?timeout_ms=30000",
                server.url
            ))
            .bearer_auth("secret")
            .send()
            .await
            .expect("result");
        let status = response.status().as_u16();
        let view: Value = response.json().await.expect("json");
        match status {
            200 => return view,
            202 => continue,
            other => panic!("{other}: {view}"),
        }
    }
}

async fn health(http: &reqwest::Client, server: &Server) -> Value {
    http.get(format!("{}/healthz", server.url))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("health json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_sleeping_workflows_all_end_with_a_pool_of_sixteen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), 16);
    let http = reqwest::Client::new();
    let ids: Vec<String> = stream::iter(0..5000)
        .map(|_| post(&http, &server, json!({"workflow": "nap", "input": 2000})))
        .buffer_unordered(32)
        .collect()
        .await;

    // While they sleep, they hold no instance: the pool of 16 is not what they wait for.
    let seen = health(&http, &server).await;
    assert!(
        seen["parked"].as_u64().is_some_and(|parked| parked > 16),
        "{seen}"
    );
    assert_eq!(seen["instances"]["capacity"], 16, "{seen}");

    let ended: Vec<Value> = stream::iter(&ids)
        .map(|id| result(&http, &server, id))
        .buffer_unordered(32)
        .collect()
        .await;
    let failed: Vec<&Value> = ended
        .iter()
        .filter(|view| view["status"] != "SUCCESS")
        .collect();
    assert!(
        failed.is_empty(),
        "{} did not succeed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    let log = server.log();
    assert!(!log.contains("could not be driven"), "{log}");
    let after = health(&http, &server).await;
    assert_eq!(after["parked"], 0, "{after}");
    assert_eq!(after["instances"]["in_use"], 0, "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_awaiting_a_thousand_children_ends_with_a_pool_of_eight() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), 8);
    let http = reqwest::Client::new();
    let id = post(
        &http,
        &server,
        json!({"workflow": "fan_out", "input": 1000}),
    )
    .await;
    let view = result(&http, &server, &id).await;
    assert_eq!(view["status"], "SUCCESS", "{view}");
    assert_eq!(view["output"], 1000, "{view}");
    let log = server.log();
    assert!(!log.contains("could not be driven"), "{log}");
}

/// Waking a parked workflow replays its code up to the wait; what that code logged the first
/// time is not printed again at its level.
#[test]
fn a_parked_workflows_logs_print_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = std::process::Command::new(common::reprise_bin())
        .arg("run")
        .arg(guest(FIB))
        .args(["fib_slow", "[5, 80]", "--database"])
        .arg(dir.path().join("logs.db"))
        .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
        .env("RUST_LOG", "guest=info")
        .output()
        .expect("reprise run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for (i, value) in [(1, 1), (2, 1), (3, 2), (4, 3), (5, 5)] {
        let line = format!("fib({i}) = {value}");
        assert_eq!(stderr.matches(&line).count(), 1, "{line}:\n{stderr}");
    }
}

/// A parent parked on its own child reads the child only once a minute while it idles, so it
/// must be woken when the child ends: here, when another process cancels the child. It wakes
/// within the cancel watcher's poll, not at its next look.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_parked_on_its_child_wakes_when_another_process_cancels_the_child() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), 8);
    let http = reqwest::Client::new();
    let parent = post(
        &http,
        &server,
        json!({"workflow": "await_nap", "input": 600_000}),
    )
    .await;
    // Both park: the child in its sleep, the parent on the child.
    while server.parked().await < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let children: Value = http
        .get(format!("{}/workflows?parent={parent}", server.url))
        .bearer_auth("secret")
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let child = children[0]["id"].as_str().expect("the child").to_owned();
    let cancelled = std::process::Command::new(common::reprise_bin())
        .args(["workflow", "cancel", &child, "--database"])
        .arg(dir.path().join("serve.db"))
        .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
        .output()
        .expect("reprise workflow cancel");
    assert!(
        cancelled.status.success(),
        "{}",
        String::from_utf8_lossy(&cancelled.stderr)
    );
    let asked = std::time::Instant::now();
    let view = result(&http, &server, &parent).await;
    assert_eq!(view["status"], "ERROR", "{view}");
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(20),
        "the parent woke only after {:?}",
        asked.elapsed()
    );
}
