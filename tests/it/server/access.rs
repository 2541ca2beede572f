//! Who may talk to `reprise serve`. Without a token it refuses to start unless the config opts
//! out on purpose, and then only on loopback. A web page cannot change anything with a
//! "simple" cross-site request, nor reach the API through a name of its own (DNS rebinding).

use crate::common;

use std::process::{Command, Stdio};

use common::reprise_bin;
use common::server::{Server, config};
use reprise_client::{Client, ClientError, StartOptions};

/// The test config with its token replaced by `keys`.
fn without_token(dir: &std::path::Path, keys: &str) -> String {
    config(dir, "").replace("token = \"secret\"", keys)
}

/// Runs `serve` on `listen`, expecting it to refuse to start; returns what it said.
fn refused(dir: &std::path::Path, config_text: &str, listen: &str) -> String {
    let path = dir.join("refused.toml");
    std::fs::write(&path, config_text).expect("write config");
    let out = Command::new(reprise_bin())
        .args(["serve", "--listen", listen, "--config"])
        .arg(&path)
        .env("REPRISE_CACHE_DIR", dir.join("cache"))
        .stdin(Stdio::null())
        .output()
        .expect("run serve");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "it never listened: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_server_without_a_token_starts_only_when_told_and_only_on_loopback() {
    let dir = tempfile::tempdir().expect("dir");
    let said = refused(dir.path(), &without_token(dir.path(), ""), "127.0.0.1:0");
    assert!(said.contains("the server has no token"), "{said}");
    let open = without_token(dir.path(), "unauthenticated = true");
    let said = refused(dir.path(), &open, "0.0.0.0:0");
    assert!(said.contains("only on a loopback address"), "{said}");
    let both = config(dir.path(), "").replace(
        "token = \"secret\"",
        "token = \"secret\"\nunauthenticated = true",
    );
    let said = refused(dir.path(), &both, "127.0.0.1:0");
    assert!(said.contains("remove one of them"), "{said}");
}

#[tokio::test]
async fn no_simple_cross_site_request_and_no_foreign_host_changes_anything() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(
        dir.path(),
        &without_token(dir.path(), "unauthenticated = true"),
    );
    let client = Client::new(&server.url, None).expect("client");
    let options = StartOptions {
        id: Some("slow".into()),
        ..Default::default()
    };
    let slow = client
        .start_with("fib_slow", &[50, 1000], &options)
        .await
        .expect("start");
    let http = reqwest::Client::new();
    let cancel = format!("{}/workflows/slow/cancel", server.url);

    // What a form or `fetch(..., {mode: "no-cors"})` on another origin can send: no preflight.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = http.post(&cancel).header("Origin", "http://evil.example");
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type).body("x=1");
        }
        let answer = request.send().await.expect("send");
        assert_eq!(answer.status().as_u16(), 415, "{content_type:?}");
        let body: serde_json::Value = answer.json().await.expect("json error");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("Content-Type: application/json")),
            "{body}"
        );
    }
    // A name that is not this server's (a rebound DNS name) reaches nothing, not even reads.
    for path in ["/workflows", "/healthz", "/"] {
        let answer = http
            .get(format!("{}{path}", server.url))
            .header("Host", "evil.example")
            .send()
            .await
            .expect("send");
        assert_eq!(answer.status().as_u16(), 421, "{path}");
    }
    let answer = http
        .get(format!("{}/workflows/slow", server.url))
        .header("Host", "localhost")
        .send()
        .await
        .expect("send");
    assert_eq!(answer.status().as_u16(), 200, "localhost is this server");
    assert_eq!(
        client.status("slow").await.expect("status").status.as_str(),
        "PENDING",
        "nothing above cancelled it"
    );

    // A start that names the id of another workflow is a conflict, not that workflow.
    let taken = client
        .start_with("fib", &3, &options)
        .await
        .map(|handle| handle.id().to_string());
    assert!(
        matches!(&taken, Err(ClientError::Api { status: 409, message }) if message.contains("is taken by a \"fib_slow\" workflow")),
        "{taken:?}"
    );

    // The client says JSON: it may.
    let cancelled = client.cancel(slow.id()).await.expect("cancel");
    assert_eq!(cancelled.status.as_str(), "CANCELLED");
    let log = std::fs::read_to_string(&server.stderr_log).unwrap_or_default();
    assert!(log.contains("serving without a token"), "{log}");
}
