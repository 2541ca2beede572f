//! Trap policies: per instance and trap class, how many recoveries, a memory limit that grows on
//! each out-of-memory recovery, and pausing for an operator instead of failing — who resumes
//! with new limits through the CLI or the API.

use crate::common;
use crate::guests::{CHAOS, MEMHOG};

use std::process::Command;

use common::server::Server;
use common::{Harness, guest, reprise_bin};
use reprise_host::runtime::{AtEnd, InstanceOptions, MemoryGrowth, TrapPolicies, TrapPolicy};
use reprise_host::{InstanceLimits, RuntimeOptions, TrapClass, WorkflowStatus};
use serde_json::{Value, json};

const MIB: u64 = 1 << 20;

fn options(limits: InstanceLimits, class: TrapClass, policy: TrapPolicy) -> RuntimeOptions {
    let instance = InstanceOptions {
        limits,
        max_recovery_attempts: 10,
        trap_policies: TrapPolicies::from([(class, policy)]),
        ..InstanceOptions::default()
    };
    RuntimeOptions::single("local", instance)
}

#[tokio::test]
async fn out_of_memory_grows_the_limit_until_the_step_fits_and_records_it() {
    let limits = InstanceLimits {
        memory_bytes: 16 * MIB,
        ..InstanceLimits::default()
    };
    let policy = TrapPolicy {
        grow_memory: Some(MemoryGrowth {
            factor: 2.0,
            max_bytes: 64 * MIB,
        }),
        ..TrapPolicy::default()
    };
    let mut harness = Harness::new(options(limits, TrapClass::OutOfMemory, policy)).await;
    // 24 MiB does not fit in 16 MiB, and does in 32.
    let record = harness.run(MEMHOG, "step_oom", "24").await;
    assert_eq!(record.status, WorkflowStatus::Success, "{:?}", record.error);
    assert_eq!(record.traps, 1);
    assert_eq!(record.trap_class.as_deref(), Some("out_of_memory"));
    assert_eq!(record.memory_limit, Some(32 * MIB), "the limit that worked");
    // The steps before the trap were replayed, not run again.
    assert_eq!(harness.executions_of(&record.id, "small"), 2);
}

#[tokio::test]
async fn a_class_bound_ends_the_workflow_after_so_many_traps_in_a_row() {
    let limits = InstanceLimits {
        fuel: 20_000_000,
        ..InstanceLimits::default()
    };
    let policy = TrapPolicy {
        max_recoveries: Some(2),
        ..TrapPolicy::default()
    };
    let mut harness = Harness::new(options(limits, TrapClass::CpuLimit, policy)).await;
    let record = harness.run(CHAOS, "spin", "null").await;
    assert_eq!(record.status, WorkflowStatus::MaxRecoveryAttemptsExceeded);
    assert_eq!(record.traps, 3, "one execution and two recoveries, not 11");
    let error = record.error.unwrap_or_default();
    assert!(
        error.contains("cpu_limit 3 times in a row, more than the 2 recoveries"),
        "{error}"
    );
}

#[tokio::test]
async fn a_pausing_policy_pauses_and_the_cli_resumes_with_a_bigger_limit() {
    let limits = InstanceLimits {
        memory_bytes: 16 * MIB,
        ..InstanceLimits::default()
    };
    let policy = TrapPolicy {
        max_recoveries: Some(1),
        then: AtEnd::Pause,
        ..TrapPolicy::default()
    };
    let mut harness = Harness::new(options(limits, TrapClass::OutOfMemory, policy)).await;
    let record = harness.run(MEMHOG, "step_oom", "24").await;
    assert_eq!(record.status, WorkflowStatus::Paused, "{:?}", record.error);
    assert_eq!(record.traps, 2, "one recovery, then the pause");
    let message = record.error.clone().unwrap_or_default();
    assert!(message.contains("paused by its trap policy"), "{message}");
    // A paused workflow is not over: a wait for its end keeps waiting.
    let waited = harness
        .runtime
        .wait(&record.id, Some(std::time::Duration::from_millis(300)))
        .await
        .expect("wait");
    assert!(waited.is_none(), "a paused workflow counted as ended");
    // Another process resumes it: the operator's CLI on the same database.
    let db = harness.db_path();

    let resumed = Command::new(reprise_bin())
        .args([
            "workflow",
            "resume",
            &record.id,
            "--memory-limit",
            "64MiB",
            "--json",
        ])
        .arg("--database")
        .arg(&db)
        .output()
        .expect("reprise workflow resume");
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    let view: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(view["status"], "SUCCESS", "{view}");
    assert_eq!(view["memory_limit"], 64 * MIB, "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_pauses_by_its_config_and_the_api_resumes_with_new_limits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        r#"
database = "{db}"
durability = "process"

[server]
token = "secret"

[components]
memhog = "{memhog}"

[instances.tight]
component = "memhog"
memory_limit = "16MiB"

[instances.tight.traps.out_of_memory]
max_recoveries = 0
then = "pause"
"#,
        db = dir.path().join("serve.db").display(),
        memhog = guest(MEMHOG).display(),
    );
    let server = Server::start(dir.path(), &config);
    let http = reqwest::Client::new();
    let started: Value = http
        .post(format!("{}/workflows", server.url))
        .bearer_auth("secret")
        .json(&json!({"workflow": "step_oom", "input": 24, "instance": "tight"}))
        .send()
        .await
        .expect("start")
        .json()
        .await
        .expect("json");
    let id = started["id"].as_str().expect("id").to_owned();
    // `/result` does not count a pause as an end: it answers 202 with the PAUSED view.
    let response = http
        .get(format!(
            "{}/workflows/{id}/result?timeout_ms=3000",
            server.url
        ))
        .bearer_auth("secret")
        .send()
        .await
        .expect("result");
    assert_eq!(response.status().as_u16(), 202);
    let paused: Value = common::server::poll_until(
        || async {
            http.get(format!("{}/workflows/{id}", server.url))
                .bearer_auth("secret")
                .send()
                .await
                .expect("get")
                .json::<Value>()
                .await
                .expect("json")
        },
        |view| view["status"] == "PAUSED",
    )
    .await;
    assert_eq!(paused["status"], "PAUSED", "{paused}");
    assert_eq!(paused["traps"], 1, "{paused}");

    // More than the pool's instances may have: refused, naming the problem.
    let refused = http
        .post(format!("{}/workflows/{id}/resume", server.url))
        .bearer_auth("secret")
        .json(&json!({"memory_limit": 1u64 << 40}))
        .send()
        .await
        .expect("resume");
    assert_eq!(refused.status().as_u16(), 400);
    let body: Value = refused.json().await.expect("json");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("more than this host's instances may have"),
        "{body}"
    );

    let resumed = http
        .post(format!("{}/workflows/{id}/resume", server.url))
        .bearer_auth("secret")
        .json(&json!({"memory_limit": 32 * MIB}))
        .send()
        .await
        .expect("resume");
    assert_eq!(resumed.status().as_u16(), 200);
    let done: Value = http
        .get(format!(
            "{}/workflows/{id}/result?timeout_ms=30000",
            server.url
        ))
        .bearer_auth("secret")
        .send()
        .await
        .expect("result")
        .json()
        .await
        .expect("json");
    assert_eq!(done["status"], "SUCCESS", "{done}");
    assert_eq!(done["memory_limit"], 32 * MIB, "{done}");
}
