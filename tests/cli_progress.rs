//! Long CLI work shows its progress: off a terminal as a plain line at each tenth, on stderr,
//! while stdout keeps the results.

mod common;

use std::process::Command;

use common::server::{Server, config};
use common::{Harness, options, reprise_bin};

#[test]
fn enqueue_many_and_wait_reports_progress_in_plain_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config(dir.path(), ""));
    let output = Command::new(reprise_bin())
        .args(["enqueue", "fib", "fib", "{i}", "--count", "30", "--wait"])
        .args(["--server", &server.url, "--token", "secret"])
        .output()
        .expect("run reprise enqueue");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.contains(" SUCCESS ")).count(),
        30,
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    for what in ["enqueued", "finished"] {
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with(what)).collect();
        assert_eq!(
            lines.last(),
            Some(&format!("{what} 30/30").as_str()),
            "{stderr}"
        );
        assert!(
            lines.len() <= 11,
            "a line per tenth, not per workflow: {stderr}"
        );
        assert!(lines.len() >= 2, "progress along the way: {stderr}");
    }
}

#[tokio::test]
async fn recover_reports_how_many_of_the_pending_workflows_ended() {
    let harness = Harness::new(options(10)).await;
    let component = harness.component("fib").await;
    for i in 0..5 {
        harness
            .runtime
            .start(&component, "fib", "5", Some(format!("left-{i}")))
            .await
            .expect("stored, not run");
    }
    let db = harness.db_path();
    let output = Command::new(reprise_bin())
        .args(["recover", "--database"])
        .arg(&db)
        .env("REPRISE_CACHE_DIR", harness.dir.path().join("cache"))
        .output()
        .expect("run reprise recover");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("recovered "))
        .collect();
    assert!(lines.contains(&"recovered 5/5"), "{stderr}");
}
