//! DBOS's publisher experiment: a parent enqueues one child workflow per message on the
//! `publishers` queue, then awaits them all and reports how many were published. Tests queues,
//! child workflows, and the configuration of instances (`topic`, `fail_every`).

use std::collections::BTreeMap;

use reprise_guest::prelude::*;
use serde::{Deserialize, Serialize};

/// The queue the children are enqueued on.
const QUEUE: &str = "publishers";

/// What `publish_all` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishReport {
    /// Children that returned their receipt.
    pub published: u32,
    /// Children that ended without an output.
    pub failed: u32,
    /// Each failed child's error, in the order the children were enqueued.
    pub failures: Vec<String>,
}

/// The instance's `topic` setting (default `"default"`).
fn topic() -> String {
    workflow_info()
        .config
        .remove("topic")
        .unwrap_or_else(|| "default".to_owned())
}

/// The instance's `fail_every` setting: message `i` fails when `i % fail_every == 0`
/// (default 0: none fails).
fn fail_every() -> Result<u32, String> {
    match workflow_info().config.get("fail_every") {
        None => Ok(0),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|e| format!("config fail_every = {v:?} is not a u32: {e}")),
    }
}

/// Sends message `i` to `topic` and returns its receipt `topic#i`. Fails (for good: no retries)
/// when the instance's `fail_every` says message `i` does.
#[step(retries = false)]
fn send(topic: String, i: u32) -> Result<String, String> {
    let every = fail_every()?;
    if every > 0 && i.is_multiple_of(every) {
        return Err(format!(
            "cannot publish message {i} to {topic} (fail_every = {every})"
        ));
    }
    Ok(format!("{topic}#{i}"))
}

/// Publishes message `i` to `topic`: the child workflow `publish_all` enqueues.
#[workflow]
fn publish(topic: String, i: u32) -> Result<String, String> {
    Ok(send(topic, i)?)
}

/// Enqueues `count` children `publish(topic, i)` for `i` in `1..=count` on the `publishers`
/// queue, then awaits each. A child that ended without an output counts as failed; any other
/// child error (not started, undecodable output) fails this workflow.
#[workflow]
fn publish_all(count: u32) -> Result<PublishReport, String> {
    let topic = topic();
    fail_every()?; // a bad setting fails the parent before anything is enqueued
    let child = Child::new("publish").queue(QUEUE);
    let handles = (1..=count)
        .map(|i| child.start::<String, _>(&(&topic, i)))
        .collect::<Result<Vec<_>, _>>()?;
    info!("enqueued {} messages for {topic} on {QUEUE}", handles.len());
    let mut report = PublishReport {
        published: 0,
        failed: 0,
        failures: Vec::new(),
    };
    for handle in &handles {
        match handle.result() {
            Ok(_) => report.published += 1,
            Err(e @ ChildError::Failed { .. }) => {
                report.failed += 1;
                report.failures.push(e.to_string());
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(report)
}

/// The running instance's name, recorded: a replay returns what the first run saw.
#[step]
fn recorded_instance() -> Result<String, String> {
    Ok(workflow_info().instance)
}

/// The instance's configuration as the workflow sees it, plus the key `@instance`: the
/// instance's name as a step recorded it.
#[workflow]
fn config_echo() -> Result<BTreeMap<String, String>, String> {
    let mut config = workflow_info().config;
    config.insert("@instance".to_owned(), recorded_instance()?);
    Ok(config)
}

/// Records the instance's name, sleeps `ms` durably, then echoes the config: a host killed
/// during the sleep must recover the workflow on the same instance, with the same config.
#[workflow]
fn config_after_sleep(ms: u64) -> Result<BTreeMap<String, String>, String> {
    let instance = recorded_instance()?;
    sleep(std::time::Duration::from_millis(ms));
    let mut config = workflow_info().config;
    config.insert("@instance".to_owned(), instance);
    config.insert(
        "@recovery".to_owned(),
        workflow_info().recovery_attempt.to_string(),
    );
    Ok(config)
}

reprise_guest::export!(
    workflows = [publish_all, publish, config_echo, config_after_sleep],
    steps = [send, recorded_instance],
);
