//! A real `reprise serve` on a free port, driven through the client crate and raw HTTP:
//! health, enqueue and results, listing, steps, cancel, resume, fork, metrics, auth, bad input.

use crate::common;

use std::collections::BTreeSet;

use common::server::{Server, config, poll_until};
use reprise_client::{ClientError, StartOptions, WorkflowStatus};
use serde_json::{Value, json};

fn fib(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
}

async fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post(url: &str, body: String) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth("secret")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_through_the_client_await_results_list_and_inspect_steps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config(dir.path(), ""));
    let client = server.client();

    let (status, health) = get(&format!("{}/healthz", server.url), None).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["executor_id"], "test-executor");

    // The Fibonacci client/server experiment: 100 workflows on a named queue (fib(93) is the
    // last that fits in a u64).
    let mut handles = Vec::new();
    for i in 1..=100u64 {
        let n = i % 90;
        handles.push((n, client.enqueue("fib", "fib", &n).await.expect("enqueue")));
    }
    let total_steps: u64 = handles.iter().map(|(n, _)| n).sum();
    for (n, handle) in &handles {
        let output: u64 = handle.result().await.expect("result");
        assert_eq!(output, fib(*n), "fib({n})");
    }

    let (status, listed) = get(
        &format!(
            "{}/workflows?queue=fib&status=SUCCESS&limit=1000",
            server.url
        ),
        Some("secret"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().map(Vec::len), Some(100));
    let (_, page) = get(
        &format!("{}/workflows?queue=fib&limit=10&offset=95", server.url),
        Some("secret"),
    )
    .await;
    assert_eq!(
        page.as_array().map(Vec::len),
        Some(5),
        "offset pages through the listing"
    );

    let ten = &handles[9].1; // n = 10
    let (status, steps) = get(
        &format!("{}/workflows/{}/steps", server.url, ten.id()),
        Some("secret"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        steps.as_array().map(Vec::len),
        Some(10),
        "fib(10) is ten steps"
    );

    let (status, health) = get(&format!("{}/healthz", server.url), None).await;
    assert_eq!(status, 200);
    let queues = health["queues"].as_array().cloned().unwrap_or_default();
    assert!(
        queues.iter().all(|q| q["enqueued"] == 0),
        "all dequeued: {health}"
    );

    let (status, metrics) = get(&format!("{}/metrics", server.url), Some("secret")).await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.contains("reprise_workflows{status=\"SUCCESS\"} 100"),
        "{metrics}"
    );
    let executed = format!("reprise_steps_total{{outcome=\"executed\"}} {total_steps}");
    assert!(metrics.contains(&executed), "{executed} in\n{metrics}");
    let checkpoints = format!("reprise_checkpoint_latency_seconds_count {total_steps}");
    assert!(
        metrics.contains(&checkpoints),
        "{checkpoints} in\n{metrics}"
    );
    let durations =
        format!("reprise_step_duration_seconds_count{{step=\"fib_step\"}} {total_steps}");
    assert!(metrics.contains(&durations), "{durations} in\n{metrics}");
    let waits = "reprise_enqueue_to_start_seconds_count{queue=\"fib\"} 100";
    assert!(metrics.contains(waits), "{waits} in\n{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_but_health_needs_the_token_and_bad_input_is_a_clear_4xx() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config(dir.path(), ""));
    let url = &server.url;

    let (status, body) = get(&format!("{url}/workflows"), None).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("bearer token"),
        "{body}"
    );
    let (status, _) = get(&format!("{url}/metrics"), Some("wrong")).await;
    assert_eq!(status, 401);
    // The scheme's case does not matter, and every answer says not to sniff its type.
    let lower = reqwest::Client::new()
        .get(format!("{url}/workflows"))
        .header("authorization", "bearer secret")
        .send()
        .await
        .expect("request");
    assert_eq!(lower.status().as_u16(), 200);
    for response in [
        lower,
        reqwest::Client::new()
            .get(format!("{url}/healthz"))
            .send()
            .await
            .expect("health"),
        reqwest::Client::new()
            .get(format!("{url}/workflows"))
            .send()
            .await
            .expect("refused"),
    ] {
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{headers:?}");
        assert_eq!(headers["x-frame-options"], "DENY", "{headers:?}");
    }

    let cases = [
        (
            json!({"workflow": "fib", "input": 3, "queue": "nope"}).to_string(),
            400,
            "no queue named \"nope\"",
        ),
        (
            json!({"workflow": "fibonacci", "input": 3, "queue": "fib"}).to_string(),
            400,
            "fibonacci",
        ),
        ("{\"workflow\": \"fib\", \"input\": ".to_string(), 400, ""),
        (
            json!({"workflow": "fib", "input": "x".repeat(32 * 1024), "queue": "fib"}).to_string(),
            413,
            "",
        ),
        (
            json!({"workflow": "fib", "input": 3, "instance": "gamma"}).to_string(),
            400,
            "no instance named \"gamma\"",
        ),
        (
            json!({"workflow": "publish_all", "input": 3}).to_string(),
            400,
            "name one with \"instance\"",
        ),
    ];
    for (body, expected, text) in cases {
        let (status, answer) = post(&format!("{url}/workflows"), body.clone()).await;
        assert_eq!(status, expected, "{body:.80} → {answer}");
        let error = answer["error"]
            .as_str()
            .unwrap_or_else(|| panic!("JSON error body for {body:.80}: {answer}"));
        assert!(error.contains(text), "{error}");
    }

    // A deduplication id is refused while the first workflow with it is active.
    let client = server.client();
    let options = StartOptions {
        queue: Some("serial".into()),
        deduplication_id: Some("once".into()),
        ..StartOptions::default()
    };
    let first = client
        .start_with("fib_slow", &json!([3, 300]), &options)
        .await
        .expect("first enqueue");
    let second = client
        .start_with("fib_slow", &json!([3, 300]), &options)
        .await;
    match second {
        Err(ClientError::Api {
            status: 409,
            message,
        }) => assert!(message.contains("once"), "{message}"),
        other => panic!("expected 409, got {other:?}"),
    }

    // Nothing was enqueued by the refused requests: only the first workflow exists.
    let (_, all) = get(&format!("{url}/workflows"), Some("secret")).await;
    let ids: BTreeSet<String> = all
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["id"].as_str().map(String::from))
        .collect();
    assert_eq!(ids, BTreeSet::from([first.id().to_string()]));
    let _: u64 = first.result().await.expect("first completes");

    let (status, body) = get(&format!("{url}/workflows/no-such-id"), Some("secret")).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_a_running_workflow_resume_it_and_fork_from_a_step() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config(dir.path(), ""));
    let client = server.client();
    let url = &server.url;

    // 12 steps with a 150 ms durable sleep after each: cancel it part-way.
    let options = StartOptions {
        id: Some("slow".into()),
        ..StartOptions::default()
    };
    let handle = client
        .start_with("fib_slow", &json!([12, 150]), &options)
        .await
        .expect("start");
    let steps_url = format!("{url}/workflows/slow/steps");
    let recorded = poll_until(|| server.steps("slow"), |steps| steps.len() >= 4).await;
    assert!(recorded.len() >= 4, "the workflow made progress");
    let cancelled = client.cancel("slow").await.expect("cancel");
    assert_eq!(cancelled.status, WorkflowStatus::Cancelled);
    let ended = handle.status_at_end().await.expect("ended");
    assert_eq!(ended.status, WorkflowStatus::Cancelled);
    let (_, steps) = get(&steps_url, Some("secret")).await;
    let at_cancel = steps.as_array().map_or(0, Vec::len);
    assert!(
        at_cancel < 24,
        "stopped before the end: {at_cancel} of 24 positions"
    );

    let resumed = client.resume("slow").await.expect("resume");
    assert_eq!(resumed.status, WorkflowStatus::Pending);
    let output: u64 = handle.result().await.expect("resumed to the end");
    assert_eq!(output, fib(12));
    let (_, steps) = get(&steps_url, Some("secret")).await;
    let steps = steps.as_array().cloned().unwrap_or_default();
    assert_eq!(
        steps.len(),
        24,
        "each position recorded once: 12 steps, 12 sleeps"
    );
    // The resumed execution replayed what was committed before the cancel and ran the rest.
    let replayed: Vec<bool> = steps.iter().map(|s| s["replayed"] == true).collect();
    let reused = replayed.iter().take_while(|r| **r).count();
    assert!(
        reused >= at_cancel && reused < 24 && replayed[reused..].iter().all(|r| !r),
        "a replayed prefix of at least the {at_cancel} positions before the cancel: {replayed:?}"
    );

    // Fork from position 6: positions 0..6 are copied (replayed), the rest run anew.
    let fork = client
        .fork("slow", 6, Some("slow-fork"))
        .await
        .expect("fork");
    let forked: u64 = fork.result().await.expect("fork result");
    assert_eq!(forked, fib(12));
    let (_, fork_steps) = get(&format!("{url}/workflows/slow-fork/steps"), Some("secret")).await;
    let fork_steps = fork_steps.as_array().cloned().unwrap_or_default();
    assert_eq!(fork_steps.len(), 24);
    for i in 0..24 {
        let same = fork_steps[i]["completed_at"] == steps[i]["completed_at"];
        assert_eq!(
            same,
            i < 6,
            "position {i}: copied iff before the fork point"
        );
        assert_eq!(
            fork_steps[i]["replayed"] == true,
            i < 6,
            "position {i}: replayed iff copied"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_concurrency_one_never_runs_two_at_once_and_rate_limits_hold() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config(dir.path(), ""));
    let client = server.client();

    let mut serial = Vec::new();
    for _ in 0..8 {
        serial.push(
            client
                .enqueue("serial", "fib_slow", &json!([2, 30]))
                .await
                .expect("enqueue"),
        );
    }
    let mut limited = Vec::new();
    for n in 1..=12u64 {
        limited.push(client.enqueue("limited", "fib", &n).await.expect("enqueue"));
    }
    let mut intervals = Vec::new();
    for handle in &serial {
        let status = handle.status_at_end().await.expect("end");
        assert_eq!(status.status, WorkflowStatus::Success);
        intervals.push((status.started_at.expect("started_at"), status.updated_at));
    }
    intervals.sort();
    for pair in intervals.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "overlap on a concurrency-1 queue: {pair:?}"
        );
    }

    let mut starts = Vec::new();
    for handle in &limited {
        let status = handle.status_at_end().await.expect("end");
        assert_eq!(status.status, WorkflowStatus::Success);
        starts.push(status.started_at.expect("started_at"));
    }
    starts.sort();
    for (i, start) in starts.iter().enumerate() {
        let in_window = starts[i..]
            .iter()
            .take_while(|s| **s < start + 1000)
            .count();
        assert!(
            in_window <= 5,
            "more than 5 starts within 1 s from {start}: {starts:?}"
        );
    }
    assert!(
        starts[11] - starts[0] >= 2000,
        "12 starts at 5/s take over 2 s: {starts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn configured_instances_run_with_their_own_config_and_children_report_failures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config(dir.path(), ""));
    let client = server.client();

    let on = |instance: &str| StartOptions {
        instance: Some(instance.into()),
        ..StartOptions::default()
    };
    let alpha = client
        .start_with("publish_all", &6, &on("alpha"))
        .await
        .expect("alpha");
    let beta = client
        .start_with("publish_all", &6, &on("beta"))
        .await
        .expect("beta");
    let alpha_id = alpha.id().to_string();
    let alpha: Value = alpha.result().await.expect("alpha report");
    let beta: Value = beta.result().await.expect("beta report");
    assert_eq!(
        (alpha["published"].as_u64(), alpha["failed"].as_u64()),
        (Some(4), Some(2)),
        "{alpha}"
    );
    assert_eq!(
        (beta["published"].as_u64(), beta["failed"].as_u64()),
        (Some(6), Some(0)),
        "{beta}"
    );

    let echo: Value = client
        .start_with("config_echo", &(), &on("beta"))
        .await
        .expect("echo")
        .result()
        .await
        .expect("echo");
    assert_eq!(echo["topic"], "beta");

    // Children were enqueued on the publishers queue, recorded under their parent.
    let (_, children) = get(
        &format!("{}/workflows?queue=publishers&limit=100", server.url),
        Some("secret"),
    )
    .await;
    assert_eq!(children.as_array().map(Vec::len), Some(12));

    // What the UI filters and counts by: instance, part of the id, parent.
    let ids = |query: &str| {
        let query = format!("{query}&limit=100");
        let server = &server;
        async move {
            let mut ids: Vec<String> = server
                .list(&query)
                .await
                .iter()
                .filter_map(|w| w["id"].as_str().map(str::to_string))
                .collect();
            ids.sort();
            ids
        }
    };
    let children_of_alpha = ids(&format!("parent={alpha_id}")).await;
    assert_eq!(children_of_alpha.len(), 6, "{children_of_alpha:?}");
    assert!(children_of_alpha.iter().all(|id| id.starts_with(&alpha_id)));
    let mut alpha_family = children_of_alpha.clone();
    alpha_family.push(alpha_id.clone());
    alpha_family.sort();
    assert_eq!(ids("instance=alpha").await, alpha_family);
    assert_eq!(ids(&format!("id={alpha_id}")).await, alpha_family);
    // `%` and `_` in the search are literal, not SQL wildcards.
    assert!(ids("id=%25").await.is_empty());
    assert!(ids("instance=nowhere").await.is_empty());

    let (status, counts) = get(&format!("{}/counts", server.url), Some("secret")).await;
    assert_eq!(status, 200, "{counts}");
    assert_eq!(counts["SUCCESS"], 13, "{counts}");
    assert_eq!(
        counts["ERROR"], 2,
        "alpha's every third publish fails: {counts}"
    );
    assert_eq!(counts["ENQUEUED"], 0, "every status is listed: {counts}");
    let (status, _) = get(&format!("{}/counts", server.url), None).await;
    assert_eq!(status, 401, "counts need the token");

    let (status, queues) = get(&format!("{}/queues", server.url), Some("secret")).await;
    assert_eq!(status, 200, "{queues}");
    let queue = |name: &str| {
        queues
            .as_array()
            .into_iter()
            .flatten()
            .find(|q| q["queue"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("queue {name} listed: {queues}"))
    };
    let publishers = queue("publishers");
    assert_eq!(publishers["concurrency"], 4);
    assert_eq!(publishers["started_here"], 12);
    assert_eq!(
        (
            publishers["enqueued"].as_u64(),
            publishers["pending"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert!(
        publishers["mean_wait_ms"].as_f64().is_some(),
        "{publishers}"
    );
    let limited = queue("limited");
    assert_eq!(
        limited["rate_limit"],
        json!({"limit": 5, "period_ms": 1000})
    );
    assert_eq!(limited["started_here"], 0);
    assert_eq!(queue("serial")["worker_concurrency"], 1);
    let (_, health) = get(&format!("{}/healthz", server.url), None).await;
    assert_eq!(health["token_required"], true, "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_lists_every_configured_queue_even_when_empty() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config(dir.path(), ""));

    // Nothing has run, so no queue holds a workflow: each is listed anyway.
    let (status, health) = get(&format!("{}/healthz", server.url), None).await;
    assert_eq!(status, 200, "{health}");
    let queues: Vec<(String, u64, u64)> = health["queues"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|q| {
            let name = q["queue"].as_str().unwrap_or_default().to_string();
            let count = |key: &str| q[key].as_u64().unwrap_or(u64::MAX);
            (name, count("enqueued"), count("pending"))
        })
        .collect();
    let empty = |name: &str| (name.to_string(), 0, 0);
    assert_eq!(
        queues,
        [
            empty("fib"),
            empty("limited"),
            empty("publishers"),
            empty("serial")
        ],
        "{health}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_outputs_and_config_come_back_as_json_values() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config(dir.path(), ""));
    let client = server.client();
    let url = &server.url;

    let options = StartOptions {
        id: Some("ten".into()),
        ..StartOptions::default()
    };
    let handle = client
        .start_with("fib", &10, &options)
        .await
        .expect("start");
    let output: u64 = handle.result().await.expect("result");
    assert_eq!(output, 55);
    let (status, workflow) = get(&format!("{url}/workflows/ten"), Some("secret")).await;
    assert_eq!(status, 200, "{workflow}");
    assert_eq!(workflow["input"], json!(10), "{workflow}");
    assert_eq!(workflow["output"], json!(55), "{workflow}");
    // Listed by the version it runs on, given by a prefix of its digest.
    let version = workflow["app_version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (status, same) = get(
        &format!("{url}/workflows?app_version={}", &version[..12]),
        Some("secret"),
    )
    .await;
    assert_eq!(status, 200, "{same}");
    assert!(
        same.as_array()
            .is_some_and(|all| all.iter().any(|w| w["id"] == "ten")),
        "{same}"
    );
    let (_, other) = get(&format!("{url}/workflows?app_version=zz"), Some("secret")).await;
    assert_eq!(other, json!([]), "no version starts with zz");
    let steps = server.steps("ten").await;
    assert_eq!(steps[0]["output"], json!([1, 1]), "{steps:?}");
    assert_eq!(
        client.status("ten").await.expect("status").output,
        Some(json!(55))
    );

    let beta = StartOptions {
        instance: Some("beta".into()),
        ..StartOptions::default()
    };
    let echo = client
        .start_with("config_echo", &(), &beta)
        .await
        .expect("echo");
    let ended = echo.status_at_end().await.expect("echo ends");
    assert_eq!(ended.config.get("topic").map(String::as_str), Some("beta"));
    let (_, listed) = get(&format!("{url}/workflows?name=config_echo"), Some("secret")).await;
    assert_eq!(listed[0]["config"]["topic"], "beta", "{listed}");

    // Numbers pass through the host as written, however large: none becomes a float.
    let big = r#"{"workflow": "fib", "id": "big", "input": [9007199254740993, 18446744073709551617, -170141183460469231731687303715884105728]}"#;
    let started = reqwest::Client::new()
        .post(format!("{url}/workflows"))
        .bearer_auth("secret")
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .expect("start");
    assert_eq!(started.status().as_u16(), 201);
    let shown = reqwest::Client::new()
        .get(format!("{url}/workflows/big"))
        .bearer_auth("secret")
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert!(
        shown.contains(
            r#""input":[9007199254740993,18446744073709551617,-170141183460469231731687303715884105728]"#
        ),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_asks_for_its_own_instance_flag_when_several_define_the_workflow() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config(dir.path(), ""));
    let out = std::process::Command::new(common::reprise_bin())
        .args([
            "enqueue",
            "publishers",
            "publish_all",
            "3",
            "--server",
            &server.url,
            "--token",
            "secret",
        ])
        .output()
        .expect("run reprise enqueue");
    let message = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{message}");
    assert!(
        message.contains("--instance") && message.contains("alpha, beta"),
        "{message}"
    );
    assert!(!message.contains("\"instance\""), "{message}");
}

/// `enqueue` and `schedule` find the server through its own `reprise.toml` (`--config`): its
/// listen address and its token, no `--server` or `--token` needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_and_schedule_find_the_server_through_its_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let text = common::server::config_with(dir.path(), &format!("listen = \"{listen}\""), "");
    let _server = Server::start_on(dir.path(), &text, &listen);
    let config = dir.path().join("reprise.toml");
    let reprise = |args: &[&str]| {
        std::process::Command::new(common::reprise_bin())
            .args(args)
            .arg("--config")
            .arg(&config)
            .env_remove("REPRISE_SERVER")
            .env_remove("REPRISE_TOKEN")
            .output()
            .expect("run reprise")
    };
    let enqueued = reprise(&["enqueue", "fib", "fib", "10", "--wait"]);
    assert!(
        enqueued.status.success(),
        "{}",
        String::from_utf8_lossy(&enqueued.stderr)
    );
    assert!(
        String::from_utf8_lossy(&enqueued.stdout).contains("55"),
        "{enqueued:?}"
    );
    let listed = reprise(&["schedule", "list", "--json"]);
    assert!(listed.status.success(), "{listed:?}");
}
