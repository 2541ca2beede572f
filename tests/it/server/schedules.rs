//! Schedules on a real `reprise serve`: a config schedule fires each second with the
//! scheduled and actual time handed to the guest; two servers on one database start each
//! firing once; the CLI adds, pauses, resumes, triggers, backfills and deletes; after
//! downtime `catch_up = "all"` runs the missed firings and `"skip"` does not.

use crate::common;
use crate::guests::CHAOS;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::server::Server;
use common::{guest, reprise_bin};
use serde_json::Value;

fn config(dir: &Path, executor: &str, schedules: &str) -> String {
    format!(
        r#"
database = "{db}"
durability = "process"
executor_id = "{executor}"

[server]
token = "secret"

[components]
chaos = "{chaos}"
{schedules}
"#,
        db = dir.join("serve.db").display(),
        chaos = guest(CHAOS).display(),
    )
}

const EVERY_SECOND: &str = r#"
[schedules.tick]
cron = "* * * * * *"
workflow = "when_scheduled"
"#;

/// The workflows a schedule started, through the API: `(scheduled time, view)`, oldest first.
async fn firings(server: &Server, schedule: &str) -> Vec<(i64, Value)> {
    let list = server.list("name=when_scheduled&limit=10000").await;
    let prefix = format!("{schedule}@");
    let mut found: Vec<(i64, Value)> = list
        .iter()
        .filter_map(|w| {
            let time = w["id"].as_str()?.strip_prefix(&prefix)?.parse().ok()?;
            Some((time, w.clone()))
        })
        .collect();
    found.sort_by_key(|(time, _)| *time);
    found
}

/// Waits up to 30 s for `count` firings of the schedule.
async fn wait_for_firings(server: &Server, schedule: &str, count: usize) -> Vec<(i64, Value)> {
    until(|| firings(server, schedule), |f| f.len() >= count).await
}

/// Re-evaluates `probe` every 50 ms, for at most 30 s, until `done` holds.
async fn until<T, F, Fut>(mut probe: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let value = probe().await;
        if done(&value) || std::time::Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn schedule_cli(server: &Server, args: &[&str]) -> std::process::Output {
    Command::new(reprise_bin())
        .arg("schedule")
        .args(args)
        .args(["--server", &server.url, "--token", "secret"])
        .output()
        .expect("reprise schedule")
}

#[tokio::test]
async fn a_config_schedule_fires_each_second_with_the_scheduled_and_actual_time() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(dir.path(), &config(dir.path(), "a", EVERY_SECOND));
    let fired = wait_for_firings(&server, "tick", 3).await;
    assert!(fired.len() >= 3, "{fired:?}");
    for (time, view) in &fired[..3] {
        assert_eq!(time % 1000, 0, "on the second");
        let id = view["id"].as_str().unwrap_or_default().to_string();
        let done: Value = reqwest::Client::new()
            .get(format!(
                "{}/workflows/{id}/result?timeout_ms=20000",
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
        let output = &done["output"];
        assert_eq!(output["scheduled_at"].as_i64(), Some(*time), "{output}");
        assert!(output["started_at"].as_i64() >= Some(*time), "{output}");
    }
    let gaps: Vec<i64> = fired.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(
        gaps.iter().all(|&gap| gap == 1000),
        "one a second: {gaps:?}"
    );
}

#[tokio::test]
async fn two_servers_on_one_database_start_each_firing_once() {
    let dir = tempfile::tempdir().expect("dir");
    let one = Server::start(dir.path(), &config(dir.path(), "a", EVERY_SECOND));
    let other_dir = dir.path().join("other");
    std::fs::create_dir(&other_dir).expect("dir");
    let text = config(dir.path(), "b", EVERY_SECOND);
    let two = Server::start(&other_dir, &text);
    let fired = wait_for_firings(&one, "tick", 4).await;
    assert!(fired.len() >= 4);
    // Every firing ran once: one execution each, whichever server started it.
    let settled = until(
        || firings(&two, "tick"),
        |f| f.iter().take(4).all(|(_, w)| w["status"] == "SUCCESS"),
    )
    .await;
    for (time, view) in settled.iter().take(4) {
        assert_eq!(view["executions"], 1, "firing {time}: {view}");
    }
    let times: Vec<i64> = settled.iter().map(|(t, _)| *t).collect();
    let mut unique = times.clone();
    unique.dedup();
    assert_eq!(times, unique);
}

#[tokio::test]
async fn the_cli_adds_pauses_resumes_triggers_backfills_and_deletes() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(dir.path(), &config(dir.path(), "a", ""));
    let added = schedule_cli(
        &server,
        &[
            "add",
            "nightly",
            "--cron",
            "0 0 2 * * *",
            "--workflow",
            "when_scheduled",
        ],
    );
    assert!(added.status.success(), "{added:?}");
    let again = schedule_cli(
        &server,
        &[
            "add",
            "nightly",
            "--cron",
            "0 0 2 * * *",
            "--workflow",
            "when_scheduled",
        ],
    );
    assert!(!again.status.success(), "a name in use is refused");
    let bad = schedule_cli(
        &server,
        &[
            "add",
            "broken",
            "--cron",
            "every day",
            "--workflow",
            "when_scheduled",
        ],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("seconds first"),
        "{bad:?}"
    );

    let list = schedule_cli(&server, &["list", "--json"]);
    let listed: Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(listed[0]["name"], "nightly");
    let next = listed[0]["next_fire"].as_i64().expect("next firing");
    assert_eq!(next % 86_400_000, 2 * 3_600_000, "02:00 UTC");

    let paused = schedule_cli(&server, &["pause", "nightly"]);
    assert!(paused.status.success());
    let listed: Value =
        serde_json::from_slice(&schedule_cli(&server, &["list", "--json"]).stdout).expect("json");
    assert_eq!(listed[0]["paused"], true);
    assert!(listed[0]["next_fire"].is_null());
    assert!(
        schedule_cli(&server, &["resume", "nightly"])
            .status
            .success()
    );

    let triggered = schedule_cli(&server, &["trigger", "nightly"]);
    assert!(triggered.status.success(), "{triggered:?}");
    let id = String::from_utf8_lossy(&triggered.stdout)
        .trim()
        .to_string();
    assert!(id.starts_with("nightly@"), "{id}");

    // Three nights of last week: three firings, and the same three when asked again.
    let week_ago = reprise_host::store::now_ms() - 7 * 86_400_000;
    let from = week_ago.to_string();
    let to = (week_ago + 3 * 86_400_000).to_string();
    let backfill = schedule_cli(
        &server,
        &["backfill", "nightly", "--from", &from, "--to", &to],
    );
    assert!(backfill.status.success(), "{backfill:?}");
    let first: Vec<String> = String::from_utf8_lossy(&backfill.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(first.len(), 3, "{first:?}");
    let again = schedule_cli(
        &server,
        &["backfill", "nightly", "--from", &from, "--to", &to],
    );
    let second: Vec<String> = String::from_utf8_lossy(&again.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(first, second, "a backfill runs each firing once");
    // A range reaching into the future is refused, and fires nothing.
    let tomorrow = (reprise_host::store::now_ms() + 86_400_000).to_string();
    let future = schedule_cli(
        &server,
        &["backfill", "nightly", "--from", &from, "--to", &tomorrow],
    );
    assert_eq!(future.status.code(), Some(2), "{future:?}");
    let said = String::from_utf8_lossy(&future.stderr);
    assert!(said.contains("past times only"), "{said}");
    let fired = wait_for_firings(&server, "nightly", 4).await;
    assert_eq!(fired.len(), 4, "three backfilled and one triggered");

    assert!(
        schedule_cli(&server, &["delete", "nightly"])
            .status
            .success()
    );
    let gone = schedule_cli(&server, &["pause", "nightly"]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no schedule named"));
}

#[tokio::test]
async fn after_downtime_catch_up_all_runs_the_missed_firings_and_skip_does_not() {
    let dir = tempfile::tempdir().expect("dir");
    let schedules = r#"
[schedules.all]
cron = "* * * * * *"
workflow = "when_scheduled"
catch_up = "all"

[schedules.skip]
cron = "* * * * * *"
workflow = "when_scheduled"
catch_up = "skip"
"#;
    let text = config(dir.path(), "a", schedules);
    let mut server = Server::start(dir.path(), &text);
    wait_for_firings(&server, "all", 1).await;
    wait_for_firings(&server, "skip", 1).await;
    assert_eq!(server.signal_and_wait("TERM"), Some(0));
    let stopped = reprise_host::store::now_ms();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let server = Server::start(dir.path(), &text);
    let restarted = reprise_host::store::now_ms();
    let all = until(
        || firings(&server, "all"),
        |f| f.last().is_some_and(|(t, _)| *t >= restarted),
    )
    .await;
    let skip = firings(&server, "skip").await;
    let missed = |fired: &[(i64, Value)]| {
        fired
            .iter()
            .filter(|(t, _)| *t > stopped + 500 && *t < restarted - 2_500)
            .count()
    };
    assert!(
        missed(&all) >= 2,
        "all ran the missed firings: {:?}",
        times(&all)
    );
    assert_eq!(missed(&skip), 0, "skip did not: {:?}", times(&skip));
}

fn times(fired: &[(i64, Value)]) -> Vec<i64> {
    fired.iter().map(|(t, _)| *t).collect()
}
