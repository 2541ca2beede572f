//! The native test harness, as a guest author uses it: workflows called as plain functions,
//! retries in virtual time, crashes and replays, stubs, secrets and the step-only I/O rule.

use std::cell::Cell;
use std::time::Duration;

use reprise_guest::http::{self, HttpError, Request, Response};
use reprise_guest::prelude::*;
use reprise_guest::testing::{Crashed, Harness};

thread_local! {
    static BODY_RUNS: Cell<u32> = const { Cell::new(0) };
}

#[step(max_attempts = 3, interval_ms = 100, backoff_rate = 2.0)]
fn double(n: u64) -> Result<u64, String> {
    BODY_RUNS.with(|c| c.set(c.get() + 1));
    Ok(n * 2)
}

#[step]
fn fetch(url: String) -> Result<String, String> {
    let key = reprise_guest::secret("API_KEY")?;
    let response = Request::get(url)
        .header("authorization", format!("Bearer {key}"))
        .send()?;
    if !response.is_success() {
        return Err(format!("status {}", response.status));
    }
    Ok(response.text()?)
}

#[workflow]
fn pipeline(n: u64) -> Result<u64, String> {
    let a = double(n)?;
    sleep(Duration::from_secs(60));
    let b = double(a)?;
    info!("{n} -> {b}");
    Ok(b)
}

#[workflow]
fn tolerant(n: u64) -> Result<String, String> {
    match double(n) {
        Ok(v) => Ok(format!("ok {v}")),
        Err(StepError::MaxRetriesExceeded(e)) => Ok(format!("gave up after {}", e.attempts)),
        Err(e) => Err(e.to_string()),
    }
}

#[workflow]
fn fetcher(url: String) -> Result<String, String> {
    Ok(fetch(url)?)
}

#[workflow]
fn io_in_workflow_code() -> (String, String) {
    let http = http::get("http://example.com/").unwrap_err().to_string();
    let secret = reprise_guest::secret("API_KEY").unwrap_err().to_string();
    (http, secret)
}

reprise_guest::export!();

#[test]
fn a_workflow_runs_and_its_steps_are_recorded() {
    let mut h = Harness::new();
    assert_eq!(h.run(|| pipeline(5)), Ok(Ok(20)));
    let steps = h.steps();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].name, "double");
    assert_eq!(steps[1].output, Some(serde_json::json!(20)));
    assert_eq!(
        h.slept(),
        Duration::from_secs(60),
        "the sleep took no real time"
    );
    assert_eq!(h.logs(), [("info".to_string(), "5 -> 20".to_string())]);
}

#[test]
fn failed_attempts_are_retried_with_backoff_in_virtual_time() {
    let mut h = Harness::new();
    h.fail_step("double", 2);
    let start = h.now_ms();
    assert_eq!(h.run(|| tolerant(4)), Ok(Ok("ok 8".to_string())));
    assert_eq!(h.executions("double"), 1, "one execution of the step");
    assert_eq!(h.attempts("double"), 3, "its body ran three times");
    assert_eq!(
        h.now_ms() - start,
        100 + 200,
        "backoff of 100 ms, then 200 ms"
    );
    assert_eq!(h.steps()[0].attempts, 3);
    let errors = &h.steps()[0].attempt_errors;
    assert_eq!(
        errors.len(),
        2,
        "the two failed attempts of a step that then succeeded"
    );
    assert!(errors[0].contains("injected failure"), "{errors:?}");
}

#[test]
fn exhausted_retries_reach_the_workflow_as_max_retries_exceeded() {
    let mut h = Harness::new();
    h.fail_step("double", 3);
    assert_eq!(h.run(|| tolerant(4)), Ok(Ok("gave up after 3".to_string())));
    let step = &h.steps()[0];
    assert_eq!(step.attempt_errors.len(), 3);
    assert!(
        step.error
            .as_deref()
            .unwrap_or_default()
            .contains("injected failure")
    );
}

#[test]
fn a_crash_after_a_step_replays_it_instead_of_running_it_again() {
    BODY_RUNS.with(|c| c.set(0));
    let mut h = Harness::new();
    h.crash_after_steps(1);
    assert_eq!(h.run(|| pipeline(3)), Err(Crashed { steps_recorded: 1 }));
    assert_eq!(BODY_RUNS.with(Cell::get), 1);
    assert_eq!(h.run(|| pipeline(3)), Ok(Ok(12)));
    assert_eq!(BODY_RUNS.with(Cell::get), 2, "the first step was replayed");
    assert_eq!(h.executions("double"), 2);
}

#[test]
fn stubbed_steps_do_not_run_their_bodies() {
    BODY_RUNS.with(|c| c.set(0));
    let mut h = Harness::new();
    h.stub_step("double", |attempt| Ok(serde_json::json!(attempt * 1000)));
    assert_eq!(h.run(|| pipeline(1)), Ok(Ok(1000)));
    assert_eq!(BODY_RUNS.with(Cell::get), 0);
}

#[test]
fn steps_reach_stubbed_http_with_their_secrets() {
    let mut h = Harness::new();
    h.secret("API_KEY", "k-123").stub_http(|req| {
        assert_eq!(req.header_value("Authorization"), Some("Bearer k-123"));
        Ok(Response::new(200, "hello"))
    });
    assert_eq!(
        h.run(|| fetcher("https://api.example.com/x".into())),
        Ok(Ok("hello".into()))
    );
    assert_eq!(h.http_requests()[0].url, "https://api.example.com/x");
}

#[test]
fn a_missing_secret_or_stub_is_a_step_error_naming_it() {
    let mut h = Harness::new();
    let out = h
        .run(|| fetcher("https://api.example.com/x".into()))
        .expect("no crash");
    let err = out.expect_err("no secret granted");
    assert!(err.contains("secret \"API_KEY\" is not granted"), "{err}");
    let mut h = Harness::new();
    h.secret("API_KEY", "k");
    let err = h
        .run(|| fetcher("https://a/".into()))
        .expect("no crash")
        .expect_err("no stub");
    assert!(err.contains("no HTTP stub"), "{err}");
}

#[test]
fn io_from_workflow_code_is_refused() {
    let mut h = Harness::new();
    h.secret("API_KEY", "k")
        .stub_http(|_| Ok(Response::new(200, "")));
    let (http, secret) = h.run(io_in_workflow_code).expect("no crash");
    let rule = "I/O is only allowed inside a step: move this call into a #[step] function";
    assert_eq!(http, rule);
    assert_eq!(secret, rule);
    assert!(h.http_requests().is_empty());
}

#[test]
fn http_errors_convert_for_question_marks() {
    let err: String = HttpError::NotInStep.into();
    assert!(err.starts_with("I/O is only allowed inside a step"));
}

#[step(max_attempts = 3, interval_ms = 10)]
fn post_charge(url: String) -> Result<u16, String> {
    let response = Request::post(url).body("{}").send()?;
    if !response.is_success() {
        return Err(format!("status {}", response.status));
    }
    Ok(response.status)
}

#[step]
fn post_plain(url: String) -> Result<u16, String> {
    Ok(Request::post(url).without_idempotency_key().send()?.status)
}

#[workflow]
fn charge_twice(url: String) -> Result<(u16, u16, u16), String> {
    Ok((
        post_charge(url.clone())?,
        post_charge(url.clone())?,
        post_plain(url)?,
    ))
}

#[test]
fn every_attempt_of_a_step_sends_the_same_idempotency_key_and_each_step_its_own() {
    let mut h = Harness::new();
    let calls = std::rc::Rc::new(Cell::new(0));
    let seen = calls.clone();
    h.stub_http(move |_req| {
        seen.set(seen.get() + 1);
        // The first step's first two attempts fail.
        Ok(Response::new(if seen.get() <= 2 { 503 } else { 200 }, ""))
    });
    assert_eq!(
        h.run(|| charge_twice("https://pay.example.com/charges".into())),
        Ok(Ok((200, 200, 200)))
    );
    let keys: Vec<Option<String>> = h
        .http_requests()
        .iter()
        .map(|r| r.header_value("Idempotency-Key").map(str::to_string))
        .collect();
    assert_eq!(
        keys.len(),
        5,
        "three attempts, then one, then one: {keys:?}"
    );
    let first = keys[0].clone().expect("the first step sends a key");
    assert!(first.ends_with("/0"), "<workflow>/<position>: {first}");
    assert_eq!(keys[1].as_ref(), Some(&first), "a retry sends the same key");
    assert_eq!(keys[2].as_ref(), Some(&first));
    let second = keys[3].clone().expect("the second step sends one");
    assert_ne!(second, first, "each step its own");
    assert_eq!(keys[4], None, "turned off");
    assert_eq!(
        reprise_guest::idempotency_key(),
        None,
        "none outside a step"
    );
}
