//! Long CLI work shows its progress: off a terminal as a plain line at each tenth, on stderr,
//! while stdout keeps the results.

use crate::common;
use crate::guests::FIB;

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
    let component = harness.component(FIB).await;
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

/// `workflow list --watch` off a terminal prints the listing again when it changes: a new
/// workflow appears without running the command again.
#[tokio::test]
async fn a_watched_listing_shows_new_workflows_as_they_come() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::Duration;

    let mut harness = Harness::new(options(10)).await;
    let first = harness.run(FIB, "fib", "3").await;
    let mut child = Command::new(reprise_bin())
        .args(["workflow", "list", "--watch", "100ms", "--database"])
        .arg(harness.db_path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run reprise workflow list --watch");
    let (lines, received) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let wait_for = |needle: &str| -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = received
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("{needle:?} never listed; saw {seen:#?}"));
            let found = line.contains(needle);
            seen.push(line);
            if found {
                return seen;
            }
        }
    };
    wait_for(&first.id);
    let second = harness.run(FIB, "fib", "4").await;
    let seen = wait_for(&second.id);
    assert!(
        seen.iter().any(|l| l.starts_with("--- ")),
        "a new listing: {seen:#?}"
    );
    child.kill().expect("stop the watch");
    child.wait().expect("reap");
}
