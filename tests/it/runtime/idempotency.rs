//! Effects exactly once by construction: a host is SIGKILLed after a step's charge reached the
//! payment service but before the step committed; the recovery runs the step again, and its
//! request carries the same `Idempotency-Key` — so a service that honours it charges once.

use crate::common;
use crate::guests::SHOP;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::post;
use common::{guest, reprise_bin};

// Two threads: the payment service answers while this one waits for `reprise recover`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_repeated_by_a_recovery_carries_the_same_key() {
    // The payment service: records each request's key; the first is answered `slow`.
    let keys: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = keys.clone();
    let app = axum::Router::new().route(
        "/charge",
        post(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let length = headers
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none");
                let key = format!("{key} length={length}");
                let mut keys = seen.lock().expect("keys");
                keys.push(key);
                if keys.len() == 1 { "slow" } else { "charged" }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().expect("dir");
    let url = format!("\"http://127.0.0.1:{port}/charge\"");
    let grant = format!("127.0.0.1:{port}");
    let reprise = |args: &[&str]| {
        let mut cmd = Command::new(reprise_bin());
        cmd.args(args)
            .args(["--allow-http", &grant, "--database"])
            .arg(dir.path().join("pay.db"))
            .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let shop = guest(SHOP).to_string_lossy().into_owned();
    let mut first = reprise(&["run", &shop, "charge_once", &url, "--id", "pay"])
        .spawn()
        .expect("run");
    // The charge reached the service; the step has not committed.
    for _ in 0..500 {
        if !keys.lock().expect("keys").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(keys.lock().expect("keys").len(), 1, "the charge was sent");
    first.kill().expect("SIGKILL");
    first.wait().expect("reap");

    let before = Command::new(reprise_bin())
        .args(["workflow", "list", "--json", "--database"])
        .arg(dir.path().join("pay.db"))
        .output()
        .expect("list");
    let before = format!(
        "{}{}",
        String::from_utf8_lossy(&before.stdout),
        String::from_utf8_lossy(&before.stderr)
    );
    let recovered = reprise(&["recover"]).output().expect("recover");
    assert!(
        recovered.status.success(),
        "{}",
        String::from_utf8_lossy(&recovered.stderr)
    );
    let keys = keys.lock().expect("keys").clone();
    assert_eq!(
        keys.len(),
        2,
        "the step in flight ran again: {keys:?}; before: {before}; recover said: {}",
        String::from_utf8_lossy(&recovered.stderr)
    );
    // The SDK says how long its body (`{}`) is instead of sending it chunked.
    assert_eq!(keys[0], "pay/0 length=2", "<workflow>/<position>");
    assert_eq!(
        keys[1], keys[0],
        "and sent the same key: one charge for a service that honours it"
    );
}
