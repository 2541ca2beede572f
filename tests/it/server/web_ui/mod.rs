//! The web UI `reprise serve` embeds, in a real headless Chromium: log in, see the workflows
//! started, watch a new one appear without a reload, filter, open one and see its steps,
//! children, messages and events, cancel a running one, resume it and fork it, each through
//! its confirmation, look at the queues and executors, keep the session across a reload, and never log a console error.
//! Then component versions: list them, and move a workflow to the version its component serves.
//! And a workflow that continued as new: its current run, and its finished runs with their history.
//! Screenshots of each page land in `target/tmp/ui-screenshots/`.

mod browser;

use crate::common;
use crate::guests::ORDERS_V2;

use std::path::PathBuf;

use browser::Browser;
use common::server::{Server, config};
use reprise_client::StartOptions;
use reprise_client::wire::WorkflowStatus;
use serde_json::{Value, json};

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots")
}

fn id(id: &str) -> StartOptions {
    StartOptions {
        id: Some(id.into()),
        ..StartOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_logs_in_browses_workflows_and_cancels_one_in_a_real_browser() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config(dir.path(), ""));
    let client = server.client();

    // Something to look at: a finished one, a parent with children, failing-then-retried
    // steps, and one parked waiting for a message, with a message on another topic.
    let done = client
        .start_with("fib", &6, &id("fib-done"))
        .await
        .expect("fib");
    let family = client
        .start_with("fib_children", &3, &id("family"))
        .await
        .expect("family");
    let retried = client
        .start_with(
            "publish_all",
            &4,
            &StartOptions {
                instance: Some("alpha".into()),
                ..id("retried")
            },
        )
        .await
        .expect("publish_all");
    client
        .start_with("wait_one", &600_000, &id("waiting"))
        .await
        .expect("waiting");
    let sent = reqwest::Client::new()
        .post(format!("{}/workflows/waiting/messages", server.url))
        .bearer_auth("secret")
        .json(&json!({"topic": "elsewhere", "message": {"note": "not for recv"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(sent.status(), 201);
    done.result::<u64>().await.expect("fib result");
    family.result::<Vec<u64>>().await.expect("family result");
    retried.status_at_end().await.expect("publish_all ended");

    let browser = Browser::start(&screenshots()).await;
    let ui = &browser.client;

    // Without the token only the login form is served; a wrong token is refused.
    ui.goto(&server.url).await.expect("open the UI");
    browser.wait_for("#login").await;
    assert!(
        ui.find(fantoccini::Locator::Css("#workflows"))
            .await
            .is_err()
    );
    assert!(
        browser.console().await.is_empty(),
        "the login page logs nothing"
    );
    browser.screenshot("login").await;
    browser.type_into("#token", "not-the-token").await;
    browser.click("#sign-in").await;
    browser
        .wait_for_text("#login-error", "That token was refused")
        .await;
    let refused = browser.console().await;
    assert!(
        refused
            .iter()
            .all(|(_, source, message)| source == "network"
                && message.contains("/counts")
                && message.contains("401")),
        "only the refused sign-in is logged: {refused:?}"
    );

    browser.type_into("#token", "secret").await;
    browser.click("#sign-in").await;
    browser.wait_for(r#"tr[data-id="fib-done"]"#).await;
    browser.wait_for(r#"tr[data-id="waiting"]"#).await;
    browser
        .wait_for_text(r#"tr[data-id="fib-done"]"#, "SUCCESS")
        .await;
    browser
        .wait_for_text(r#"[data-count="PENDING"]"#, "PENDING 1")
        .await;
    browser.screenshot("workflows").await;

    // A workflow started elsewhere shows up without a reload.
    client
        .start_with("fib", &3, &id("late"))
        .await
        .expect("late");
    browser.wait_for(r#"tr[data-id="late"]"#).await;

    // Filtering by id keeps only the matches.
    browser
        .type_into(r#"#filters input[name="id"]"#, "famil")
        .await;
    browser.click("#apply").await;
    browser.wait_gone(r#"tr[data-id="fib-done"]"#).await;
    browser.click(r#"tr[data-id="family"] a"#).await;

    // A workflow: its steps as a timeline, and its children as links.
    browser.wait_for("#steps tr[data-step]").await;
    browser.wait_for_text("#status", "SUCCESS").await;
    browser.wait_for("#children").await;
    let children = ui
        .find_all(fantoccini::Locator::Css("#children tbody tr"))
        .await
        .expect("children");
    assert_eq!(children.len(), 3, "fib_children(3) has three children");
    browser.wait_for_text("#summary", "Version (digest)").await;
    browser.wait_for_text("#output", "[").await;
    browser.screenshot("workflow").await;

    // Failed attempts are shown with their errors.
    ui.goto(&format!("{}/#/workflows/retried", server.url))
        .await
        .expect("open retried");
    browser.wait_for("#steps tr[data-step]").await;
    browser.wait_for("#children").await;

    // Cancel the waiting one, through the confirmation.
    ui.goto(&format!("{}/#/workflows/waiting", server.url))
        .await
        .expect("open waiting");
    browser.wait_for_text("#status", "PENDING").await;
    browser.wait_for_text("#messages", "elsewhere").await;
    browser.click("#cancel").await;
    browser.wait_for("dialog#confirm[open]").await;
    browser.screenshot("confirm-cancel").await;
    browser.click("#confirm-yes").await;
    browser.wait_for_text("#result", "CANCELLED").await;
    browser.wait_for_text("#status", "CANCELLED").await;
    let cancelled = client.status("waiting").await.expect("status");
    assert_eq!(cancelled.status, WorkflowStatus::Cancelled);

    // Resume it, then fork it from its first step, each through the confirmation.
    let workflows_before_fork = server.list("limit=1000").await.len();
    browser.click("#resume").await;
    browser.wait_for("dialog#confirm[open]").await;
    browser.click("#confirm-yes").await;
    browser.wait_for_text("#result", "now PENDING").await;
    browser.wait_for_text("#status", "PENDING").await;
    let resumed = client.status("waiting").await.expect("status");
    assert_eq!(resumed.status, WorkflowStatus::Pending);
    browser.wait_for(r#"#fork-step option[value="1"]"#).await;
    browser
        .client
        .find(fantoccini::Locator::Css(r#"#fork-step option[value="1"]"#))
        .await
        .expect("fork point")
        .click()
        .await
        .expect("choose the fork point");
    browser.click("#fork").await;
    browser.wait_for("dialog#confirm[open]").await;
    browser.click("#confirm-no").await;
    browser.wait_gone("dialog#confirm[open]").await;
    assert_eq!(
        server.list("limit=1000").await.len(),
        workflows_before_fork,
        "declining the confirmation forks nothing"
    );
    browser.click("#fork").await;
    browser.wait_for("dialog#confirm[open]").await;
    browser.click("#confirm-yes").await;
    let forked = browser.wait_for_text("#result", "created").await;
    let fork_id = forked
        .split_whitespace()
        .nth(4)
        .map(str::to_string)
        .unwrap_or_default();
    let fork = client.status(&fork_id).await.expect("the fork exists");
    assert_eq!(fork.name, "wait_one", "{forked}");
    client.cancel(&fork_id).await.expect("cancel the fork");
    client.cancel("waiting").await.expect("cancel again");

    // Queues and executors.
    browser.click(r#"[data-nav="queues"]"#).await;
    browser.wait_for(r#"tr[data-queue="publishers"]"#).await;
    browser
        .wait_for_text(r#"tr[data-executor="test-executor"]"#, "live")
        .await;
    browser
        .wait_for_text(r#"tr[data-queue="limited"]"#, "5 per 1.00 s")
        .await;
    browser.screenshot("queues").await;

    // The token is kept for the browser session, never in the address.
    ui.refresh().await.expect("reload");
    browser.wait_for(r#"tr[data-queue="publishers"]"#).await;
    let address = ui.current_url().await.expect("url");
    assert!(!address.as_str().contains("secret"), "{address}");
    browser.click("#sign-out").await;
    browser.wait_for("#login").await;

    browser.finish_clean().await;
}

async fn call(server: &Server, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", server.url))
        .bearer_auth("secret");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// Starts `workflow` of `orders` as `id` and waits until it waits for its `ship` message.
async fn start_waiting(server: &Server, workflow: &str, id: &str) -> Value {
    let body = json!({"workflow": workflow, "input": 1, "id": id});
    let view = call(server, reqwest::Method::POST, "/workflows", Some(body)).await;
    common::server::poll_until(
        || server.steps(id),
        |steps| steps.iter().any(|s| s["name"] == "reprise.recv-deadline"),
    )
    .await;
    view
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_component_versions_and_moves_a_workflow_to_the_serving_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &super::versions::config(dir.path()));
    let old = start_waiting(&server, "order", "old-1").await;
    // v2 renames a step of `refund`, so this one's history does not replay on it.
    start_waiting(&server, "refund", "refund-1").await;
    let v1 = old["app_version"]
        .as_str()
        .expect("app_version")
        .to_string();
    let response = reqwest::Client::new()
        .post(format!("{}/components/orders", server.url))
        .bearer_auth("secret")
        .header("content-type", "application/wasm")
        .body(std::fs::read(common::guest(ORDERS_V2)).expect("v2"))
        .send()
        .await
        .expect("upload v2");
    assert_eq!(response.status(), 201);
    let added: Value = response.json().await.expect("json");
    let v2 = added["digest"].as_str().expect("digest").to_string();
    assert_ne!(v1, v2);
    let (short1, short2) = (&v1[..12], &v2[..12]);

    let browser = Browser::start(&screenshots()).await;
    let ui = &browser.client;
    ui.goto(&server.url).await.expect("open the UI");
    browser.type_into("#token", "secret").await;
    browser.click("#sign-in").await;
    // The list shows each workflow's version, short.
    browser
        .wait_for_text(r#"tr[data-id="old-1"]"#, short1)
        .await;

    // Both versions: v1 still has old-1 and refund-1 in flight, v2 serves new starts.
    browser.click(r#"[data-nav="versions"]"#).await;
    let row1 = format!(r#"tr[data-digest="{v1}"]"#);
    let row2 = format!(r#"tr[data-digest="{v2}"]"#);
    browser.wait_for_text(&row1, "draining").await;
    browser.wait_for_text(&row2, "serving").await;
    let cell = |row: &str, n: usize| format!("{row} td:nth-child({n})");
    let in_flight = |row: &str| {
        let css = cell(row, 5);
        async move {
            ui.find(fantoccini::Locator::Css(&css))
                .await
                .expect("in flight cell")
                .text()
                .await
                .expect("text")
        }
    };
    assert_eq!(in_flight(&row1).await, "2");
    assert_eq!(in_flight(&row2).await, "0");
    for row in [&row1, &row2] {
        browser.wait_for_text(&cell(row, 1), "orders").await;
    }
    let digest = ui
        .find(fantoccini::Locator::Css(&format!(
            "{} span",
            cell(&row2, 2)
        )))
        .await
        .expect("digest");
    assert_eq!(digest.text().await.expect("text"), short2);
    assert_eq!(digest.attr("title").await.expect("title"), Some(v2.clone()));
    browser.screenshot("versions").await;

    // refund-1's history does not replay on v2: the move is refused and says why.
    ui.goto(&format!("{}/#/workflows/refund-1", server.url))
        .await
        .expect("open refund-1");
    browser.wait_for_text("#summary", "(orders)").await;
    browser.click("#upgrade:not([disabled])").await;
    browser.wait_for("dialog#confirm[open]").await;
    browser.click("#confirm-yes").await;
    browser
        .wait_for_text("#result", "diverged at position")
        .await;
    browser.wait_for("#result.error").await;
    let refused = browser.console().await;
    assert!(
        refused
            .iter()
            .all(|(_, source, message)| source == "network"
                && message.contains("/upgrade")
                && message.contains("409")),
        "only the refused move is logged: {refused:?}"
    );
    browser.screenshot("upgrade-refused").await;
    let still = call(&server, reqwest::Method::GET, "/workflows/refund-1", None).await;
    assert_eq!(
        still["app_version"],
        v1.as_str(),
        "a refused move changes nothing"
    );

    // old-1 moves, through the confirmation; then it is on the serving version.
    ui.goto(&format!("{}/#/workflows/old-1", server.url))
        .await
        .expect("open old-1");
    browser.wait_for_text("#status", "PENDING").await;
    browser.wait_for_text("#summary", short1).await;
    browser.click("#upgrade:not([disabled])").await;
    browser.wait_for("dialog#confirm[open]").await;
    browser.wait_for_text("#confirm-text", short2).await;
    browser.screenshot("confirm-upgrade").await;
    browser.click("#confirm-yes").await;
    browser
        .wait_for_text("#result", &format!("moved to {short2}"))
        .await;
    let moved = call(&server, reqwest::Method::GET, "/workflows/old-1", None).await;
    assert_eq!(moved["app_version"], v2.as_str());
    browser.wait_for_text("#summary", "(orders, serving)").await;
    browser.wait_for("#upgrade[disabled]").await;
    browser.screenshot("upgraded").await;

    browser.click(r#"[data-nav="versions"]"#).await;
    browser.wait_for(&row1).await;
    assert_eq!(in_flight(&row1).await, "1");
    assert_eq!(in_flight(&row2).await, "1");

    browser.finish_clean().await;
}

/// Whether `id` is in run `run`, waiting for its `next` message.
async fn waiting_in_run(server: &Server, id: &str, run: u64) -> bool {
    let workflow = call(
        server,
        reqwest::Method::GET,
        &format!("/workflows/{id}"),
        None,
    )
    .await;
    workflow["run"] == run
        && server
            .steps(id)
            .await
            .iter()
            .any(|s| s["name"] == "reprise.recv-deadline")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_the_finished_runs_of_a_workflow_that_continued_as_new() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &super::versions::config(dir.path()));
    // A subscription renews, waits for `next`, and continues as new with its turn plus one.
    let body = json!({"workflow": "subscription", "input": 0, "id": "sub-1"});
    let started = call(&server, reqwest::Method::POST, "/workflows", Some(body)).await;
    let v1 = started["app_version"].as_str().expect("app_version");
    let waiting = common::server::poll_until(|| waiting_in_run(&server, "sub-1", 0), |w| *w).await;
    assert!(waiting, "sub-1 never waited in run 0");
    let message = json!({"topic": "next", "message": "go"});
    call(
        &server,
        reqwest::Method::POST,
        "/workflows/sub-1/messages",
        Some(message),
    )
    .await;
    let waiting = common::server::poll_until(|| waiting_in_run(&server, "sub-1", 1), |w| *w).await;
    assert!(waiting, "sub-1 never waited in run 1");

    let browser = Browser::start(&screenshots()).await;
    let ui = &browser.client;
    ui.goto(&server.url).await.expect("open the UI");
    browser.type_into("#token", "secret").await;
    browser.click("#sign-in").await;
    browser.wait_for(r#"tr[data-id="sub-1"]"#).await;
    ui.goto(&format!("{}/#/workflows/sub-1", server.url))
        .await
        .expect("open sub-1");

    // The summary names the current run; the Runs card lists the finished one, closed.
    browser.wait_for_text("#status", "PENDING").await;
    let run = browser.wait_for_text("#run", "1").await;
    assert!(run.starts_with("1 "), "{run}");
    browser.wait_for_text("#summary", "Run").await;
    let row = r#"#runs details[data-run="0"]"#;
    let summary = browser.wait_for_text(row, "Run 0").await;
    assert!(
        !summary.contains("renew"),
        "closed, it shows no steps: {summary}"
    );
    let text = |css: String| async move {
        ui.find(fantoccini::Locator::Css(&css))
            .await
            .expect(&css)
            .text()
            .await
            .expect("text")
    };
    assert_eq!(text(format!("{row} .run-input")).await, "0");
    assert_eq!(text(format!("{row} .run-next")).await, "1");
    let digest = ui
        .find(fantoccini::Locator::Css(&format!(
            "{row} summary span[title]"
        )))
        .await
        .expect("digest");
    assert_eq!(digest.text().await.expect("text"), v1[..12]);
    assert_eq!(
        digest.attr("title").await.expect("title").as_deref(),
        Some(v1)
    );
    let runs = call(&server, reqwest::Method::GET, "/workflows/sub-1/runs", None).await;
    let positions = runs["runs"][0]["steps"]
        .as_array()
        .expect("run 0's steps")
        .len();
    assert!(
        summary.contains(&format!("{positions} positions")),
        "{summary}"
    );
    let rows = ui
        .find_all(fantoccini::Locator::Css("#runs details.run"))
        .await
        .expect("runs");
    assert_eq!(rows.len(), 1, "only run 0 has finished");

    // Opened, it shows that run's history.
    browser.click(&format!("{row} summary")).await;
    browser
        .wait_for_text(&format!("{row} table"), "renew")
        .await;
    browser
        .wait_for_text(&format!(r#"{row} tr[data-step="0"]"#), "ok")
        .await;
    // The page keeps refreshing without closing it again.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    browser.wait_for(&format!("{row}[open]")).await;
    ui.execute(
        "document.getElementById('runs').scrollIntoView({block: 'end'})",
        vec![],
    )
    .await
    .expect("scroll to the runs");
    browser.screenshot("runs").await;

    browser.finish_clean().await;
}
