//! The web UI `reprise serve` embeds, in a real headless Chromium: log in, see the workflows
//! started, watch a new one appear without a reload, filter, open one and see its steps,
//! children, messages and events, cancel a running one, resume it and fork it, each through
//! its confirmation, look at the queues and executors, keep the session across a reload, and never log a console error.
//! Screenshots of each page land in `target/tmp/ui-screenshots/`.

mod browser;

use crate::common;

use std::path::PathBuf;

use browser::Browser;
use common::server::{Server, config};
use reprise_client::StartOptions;
use reprise_client::wire::WorkflowStatus;
use serde_json::json;

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

    let errors: Vec<_> = browser
        .console()
        .await
        .into_iter()
        .filter(|(level, _, _)| level == "SEVERE" || level == "WARNING")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    ui.clone().close().await.expect("close the browser");
}
