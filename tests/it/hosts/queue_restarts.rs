//! A queue's worker concurrency holds across restarts: workflows a killed server left running
//! are recovered into the queue's slots, and a restarted server claims new ones only below
//! the limit.

use crate::common;
use crate::guests::FIB;

use std::path::Path;

use common::guest;
use common::server::Server;
use serde_json::{Value, json};

const LIMIT: u64 = 4;
const WORKFLOWS: usize = 40;

fn start(dir: &Path) -> Server {
    let config = format!(
        r#"
database = "{db}"
durability = "process"

[server]
token = "secret"

[components]
fib = "{fib}"

[queues.slow]
worker_concurrency = {LIMIT}
"#,
        db = dir.join("serve.db").display(),
        fib = guest(FIB).display(),
    );
    Server::start(dir, &config)
}

/// How many of the queue's workflows are PENDING (claimed or recovered, not ended) and how
/// many ended, read from the API.
async fn counts(server: &Server) -> (u64, u64) {
    let list = server.list("queue=slow&limit=1000").await;
    let pending = list.iter().filter(|w| w["status"] == "PENDING").count() as u64;
    let ended = list
        .iter()
        .filter(|w| w["status"] != "PENDING" && w["status"] != "ENQUEUED")
        .count() as u64;
    (pending, ended)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_concurrency_holds_across_repeated_kills() {
    let dir = tempfile::tempdir().expect("temp dir");
    let http = reqwest::Client::new();
    let mut server = start(dir.path());
    let mut ids = Vec::new();
    for _ in 0..WORKFLOWS {
        let response = http
            .post(format!("{}/workflows", server.url))
            .bearer_auth("secret")
            .json(&json!({"workflow": "fib_slow", "input": [3, 100], "queue": "slow"}))
            .send()
            .await
            .expect("enqueue");
        assert_eq!(response.status().as_u16(), 201);
        let view: Value = response.json().await.expect("json");
        ids.push(view["id"].as_str().expect("id").to_owned());
    }
    let mut most = 0;
    for kill in 0..6 {
        // Watch until this server has made progress, then kill it mid-flight.
        let (_, ended_before) = counts(&server).await;
        loop {
            let (pending, ended) = counts(&server).await;
            most = most.max(pending);
            assert!(
                pending <= LIMIT,
                "restart {kill}: {pending} workflows of a queue limited to {LIMIT} are PENDING"
            );
            if ended > ended_before || ended as usize == WORKFLOWS {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        server.signal_and_wait("KILL");
        server = start(dir.path());
    }
    assert!(most > 0, "nothing ever ran");
    // The last server finishes everything, never more than the limit at once.
    loop {
        let (pending, ended) = counts(&server).await;
        assert!(pending <= LIMIT, "{pending} PENDING at once");
        if ended as usize == WORKFLOWS {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for id in &ids {
        let steps = server.steps(id).await;
        let fib_steps = steps.iter().filter(|s| s["name"] == "fib_step").count();
        assert_eq!(fib_steps, 3, "{id}: {steps:?}");
    }
}
