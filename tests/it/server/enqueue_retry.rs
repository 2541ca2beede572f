//! Handing work to a server over a network that fails: a start whose answer is lost is retried
//! under the same workflow id, so it joins the workflow the server stored instead of making a
//! second; `reprise enqueue --id` joins an existing workflow; and `reprise enqueue --wait`
//! keeps waiting through a server restart.

use crate::common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::reprise_bin;
use common::server::{Server, config, poll_until};
use reprise_client::{StartOptions, WorkflowStatus};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

fn ids(workflows: &[Value]) -> BTreeSet<String> {
    workflows
        .iter()
        .filter_map(|w| w["id"].as_str().map(String::from))
        .collect()
}

/// A TCP proxy to `upstream` that loses the server's first answer: on its first connection it
/// forwards the request and, as soon as the server starts answering (so the server has acted
/// on it), drops both sides. Later connections pass through. Returns its address and a count
/// of the connections it took.
async fn proxy_losing_the_first_answer(upstream: String) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let address = listener.local_addr().expect("proxy address").to_string();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
            let Ok(mut server) = TcpStream::connect(&upstream).await else {
                continue;
            };
            tokio::spawn(async move {
                if !first {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    return;
                }
                let (mut from_client, _to_client) = client.split();
                let (mut from_server, mut to_server) = server.split();
                let mut answer_starts = [0u8; 1];
                tokio::select! {
                    _ = tokio::io::copy(&mut from_client, &mut to_server) => {}
                    _ = from_server.read_exact(&mut answer_starts) => {}
                }
                // Both connections close here; the client never sees the answer.
            });
        }
    });
    (address, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_whose_answer_is_lost_is_retried_and_joins_the_stored_workflow() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config(dir.path(), ""));
    let (proxy, connections) = proxy_losing_the_first_answer(server.address().to_string()).await;

    let client = reprise_client::Client::new(&format!("http://{proxy}"), Some("secret".into()))
        .expect("client");
    let options = StartOptions {
        queue: Some("fib".into()),
        ..StartOptions::default()
    };
    let handle = client
        .start_with("fib", &10, &options)
        .await
        .expect("the lost answer is retried");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        2,
        "one lost answer, one retry"
    );

    let stored = server.list("limit=1000").await;
    assert_eq!(
        ids(&stored),
        BTreeSet::from([handle.id().to_string()]),
        "the retry joined the stored workflow instead of enqueuing a second: {stored:?}"
    );
    let output: u64 = handle.result().await.expect("result");
    assert_eq!(output, 55);
}

/// Runs `reprise enqueue` against `server` with `args`; returns exit code, stdout, stderr.
fn enqueue(server: &Server, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(reprise_bin())
        .arg("enqueue")
        .args(args)
        .args(["--server", &server.url, "--token", "secret"])
        .output()
        .expect("run reprise enqueue");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_with_an_id_joins_the_workflow_instead_of_making_another() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config(dir.path(), ""));

    let (code, out, err) = enqueue(&server, &["fib", "fib", "7", "--id", "job-1"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "job-1");
    let (code, out, err) = enqueue(&server, &["fib", "fib", "7", "--id", "job-1", "--wait"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("job-1 fib(7) SUCCESS 13 in "), "{out}");

    // With --count, `{i}` in the id numbers the copies as it does in the input.
    let (code, out, err) = enqueue(
        &server,
        &["fib", "fib", "{i}", "--count", "3", "--id", "job-{i}"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["job-1", "job-2", "job-3"]);
    let (code, _, err) = enqueue(
        &server,
        &["fib", "fib", "1", "--count", "2", "--id", "same"],
    );
    assert_eq!(code, Some(2), "copies cannot share an id: {err}");
    assert!(err.contains("{i}"), "{err}");
    let (code, _, err) = enqueue(&server, &["fib", "fib", "1", "--id", "a/b"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("workflow id"), "{err}");

    let stored = server.list("limit=1000").await;
    assert_eq!(
        ids(&stored),
        BTreeSet::from(["job-1".into(), "job-2".into(), "job-3".into()]),
        "{stored:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_wait_keeps_waiting_through_a_server_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .to_string();
    let text = config(dir.path(), "");
    let mut first = Server::start_on(dir.path(), &text, &listen);

    // fib(20) with 100 ms between steps: about two seconds.
    let waiting = Command::new(reprise_bin())
        .args(["enqueue", "fib", "fib_slow", "[20, 100]", "--wait"])
        .args(["--server", &first.url, "--token", "secret"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn reprise enqueue --wait");

    // Kill the server once the workflow is well under way: enqueue is waiting on it by then.
    let running = poll_until(
        || async {
            let listed = first.list("limit=1000").await;
            match ids(&listed).into_iter().next() {
                Some(id) => first.steps(&id).await.len(),
                None => 0,
            }
        },
        |steps| *steps >= 3,
    )
    .await;
    assert!(running >= 3, "the workflow did not get going");
    first.signal_and_wait("KILL");

    // The same config, database and port: the new server recovers the workflow.
    let second = Server::start_on(dir.path(), &text, &listen);
    let finished = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || waiting.wait_with_output()),
    )
    .await
    .expect("enqueue --wait ended within 60 s")
    .expect("join")
    .expect("enqueue output");
    let stdout = String::from_utf8_lossy(&finished.stdout);
    let stderr = String::from_utf8_lossy(&finished.stderr);
    assert_eq!(finished.status.code(), Some(0), "{stdout}\n{stderr}");

    let stored = second.list("limit=1000").await;
    assert_eq!(stored.len(), 1, "exactly one workflow: {stored:?}");
    let id = stored[0]["id"].as_str().unwrap_or_default();
    assert_eq!(stored[0]["status"], "SUCCESS", "{stored:?}");
    assert!(
        stdout.starts_with(&format!("{id} fib_slow([20, 100]) SUCCESS 6765 in ")),
        "{stdout}"
    );
    let status = second.client().status(id).await.expect("status");
    assert_eq!(status.status, WorkflowStatus::Success);
}
