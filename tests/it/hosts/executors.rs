//! Executor leases seen from outside: a running `reprise serve` renews its lease and lists it
//! in `/healthz`; killed, its lease runs out and `reprise executors` shows it expired with the
//! PENDING workflows it left behind.

use crate::common;
use crate::guests::CHAOS;

use std::process::Command;

use common::server::{Server, poll_until};
use common::{guest, reprise_bin};
use serde_json::{Value, json};

#[tokio::test]
async fn a_killed_hosts_lease_runs_out_and_shows_what_it_owned() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("serve.db");
    let config = format!(
        r#"
database = "{db}"
durability = "process"
executor_id = "host-a"
lease = "1s"

[server]
token = "secret"

[components]
chaos = "{chaos}"
"#,
        db = db.display(),
        chaos = guest(CHAOS).display(),
    );
    let mut server = Server::start(dir.path(), &config);
    let health = server.health().await;
    let executors = health["executors"].as_array().cloned().unwrap_or_default();
    assert_eq!(executors.len(), 1, "{health}");
    assert_eq!(executors[0]["executor_id"], "host-a");
    assert_eq!(executors[0]["expired"], false);
    assert_eq!(executors[0]["lease_ms"], 1000);

    // A workflow it owns, asleep, when it dies.
    let started = reqwest::Client::new()
        .post(format!("{}/workflows", server.url))
        .bearer_auth("secret")
        .json(&json!({"workflow": "sleepy", "input": 600_000, "id": "left-behind"}))
        .send()
        .await
        .expect("start");
    assert_eq!(started.status().as_u16(), 201);
    assert_eq!(server.signal_and_wait("KILL"), None);

    let executors = || {
        let listed = Command::new(reprise_bin())
            .args([
                "executors",
                "--json",
                "--durability",
                "process",
                "--database",
            ])
            .arg(&db)
            .output()
            .expect("reprise executors");
        assert!(listed.status.success(), "{listed:?}");
        serde_json::from_slice::<Vec<Value>>(&listed.stdout).expect("json")
    };
    let expired = poll_until(
        || async { executors() },
        |listed| listed.first().is_some_and(|e| e["expired"] == true),
    )
    .await;
    assert_eq!(expired[0]["executor_id"], "host-a");
    assert_eq!(expired[0]["expired"], true, "{expired:?}");
    assert_eq!(expired[0]["pending"], 1, "the workflow it left PENDING");
    assert!(expired[0]["lease_age_ms"].as_i64().unwrap_or(0) > 1000);
}
