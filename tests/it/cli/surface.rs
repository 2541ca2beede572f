//! What a new user meets on the command line: each command's help lists only the flags it
//! uses, errors say each cause once and name the file, a non-component is refused in one line,
//! a bare word given as input is told to be quoted, and listings show when a workflow was
//! created, on which queue and instance.

use crate::common;
use crate::guests::{CHAOS, FIB, FULFILMENT};

use std::ffi::OsStr;
use std::fmt::Debug;
use std::path::Path;
use std::process::{Command, Output};

use common::{guest, reprise_bin};
use serde_json::{Value, json};

fn reprise<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Output {
    Command::new(reprise_bin())
        .args(args)
        .env("REPRISE_CACHE_DIR", dir.join("cache"))
        .env_remove("REPRISE_DATABASE_URL")
        .output()
        .expect("run reprise")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must succeed and returns its stdout.
fn ok<S: AsRef<OsStr> + Debug>(dir: &Path, args: &[S]) -> String {
    let out = reprise(dir, args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn json_of<S: AsRef<OsStr> + Debug>(dir: &Path, args: &[S]) -> Value {
    serde_json::from_str(&ok(dir, args)).expect("JSON output")
}

const DATABASE_FLAGS: [&str; 3] = ["--database", "--durability", "--executor-id"];

#[test]
fn each_command_lists_only_the_flags_it_uses() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&[&str], &[&str], &[&str]); 7] = [
        (
            &["serve", "--help"],
            &DATABASE_FLAGS,
            &["--config", "--listen", "--worker-threads"],
        ),
        (
            &["enqueue", "--help"],
            &[
                "--database",
                "--durability",
                "--executor-id",
                "--worker-threads",
            ],
            &["--server", "--token", "--instance"],
        ),
        (
            &["inspect", "--help"],
            &[
                "--database",
                "--durability",
                "--executor-id",
                "--worker-threads",
            ],
            &["--json"],
        ),
        (
            &["bench", "--help"],
            &DATABASE_FLAGS,
            &["--level", "--worker-threads"],
        ),
        (
            &["run", "--help"],
            &[],
            &[
                "--database",
                "--durability",
                "--executor-id",
                "--worker-threads",
                "--memory-limit",
            ],
        ),
        (
            &["workflow", "list", "--help"],
            &["--executor-id", "--worker-threads", "--memory-limit"],
            &["--database", "--durability", "--queue", "--created-after"],
        ),
        (
            &["workflow", "resume", "--help"],
            &[],
            &[
                "--database",
                "--durability",
                "--executor-id",
                "--worker-threads",
            ],
        ),
    ];
    for (args, absent, present) in cases {
        let help = ok(dir.path(), args);
        for flag in absent {
            assert!(!help.contains(flag), "{args:?} lists {flag}:\n{help}");
        }
        for flag in present {
            assert!(help.contains(flag), "{args:?} lacks {flag}:\n{help}");
        }
    }

    // The database still comes from the environment when no flag names it.
    let db = dir.path().join("env.db");
    let fib = guest(FIB).to_string_lossy().into_owned();
    let out = Command::new(reprise_bin())
        .args(["run", &fib, "fib", "7", "--id", "from-env"])
        .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
        .env("REPRISE_DATABASE_URL", &db)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let db_arg = db.to_string_lossy().into_owned();
    let listed = json_of(
        dir.path(),
        &["workflow", "list", "--json", "--database", &db_arg],
    );
    assert_eq!(listed[0]["id"], "from-env");
}

/// The parts of a one-line error between `: `; a repeated cause shows up as a repeated part.
fn assert_each_cause_once(message: &str) {
    let line = message.trim();
    assert_eq!(line.lines().count(), 1, "one line: {message}");
    let parts: Vec<&str> = line.split(": ").collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(part),
            "{part:?} repeats in {message}"
        );
    }
}

#[test]
fn errors_say_each_cause_once_and_name_the_missing_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nowhere").join("reprise.toml");
    let out = reprise(
        dir.path(),
        &["serve", "--config", &missing.to_string_lossy()],
    );
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains(&*missing.to_string_lossy()), "{message}");
    assert_eq!(
        message.matches("No such file or directory").count(),
        1,
        "{message}"
    );
    assert_each_cause_once(&message);

    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let server = format!("http://127.0.0.1:{port}");
    let out = reprise(
        dir.path(),
        &["enqueue", "q", "wf", "1", "--server", &server],
    );
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains("cannot reach the server"), "{message}");
    assert_eq!(
        message.matches("error sending request").count(),
        1,
        "{message}"
    );
    assert_each_cause_once(&message);

    let out = reprise(
        dir.path(),
        &[
            "workflow",
            "list",
            "--database",
            "/nonexistent-dir/x/reprise.db",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_each_cause_once(&stderr(&out));
}

#[test]
fn inspect_refuses_a_non_component_in_one_line_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files: [(&str, &[u8]); 3] = [
        (
            "libguest.rlib",
            b"!<arch>\n/               0           0     0     0       8  ",
        ),
        ("module.wasm", b"\0asm\x01\0\0\0"),
        ("garbage.wasm", b"\0asm but not really"),
    ];
    for (name, bytes) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let out = reprise(dir.path(), &["inspect", &path.to_string_lossy()]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let message = stderr(&out);
        assert_eq!(message.trim().lines().count(), 1, "one line: {message}");
        assert!(message.contains(&*path.to_string_lossy()), "{message}");
        assert!(
            message.contains("is not a valid WebAssembly component"),
            "{message}"
        );
        assert!(!message.contains("0x"), "no byte dump: {message}");
    }
}

#[test]
fn inspect_lists_a_components_typed_topics_with_their_schemas() {
    let dir = tempfile::tempdir().expect("temp dir");
    let component = guest(FULFILMENT).to_string_lossy().into_owned();
    let out = reprise(dir.path(), &["inspect", &component]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("shipped: Shipped"), "{text}");
    let out = reprise(dir.path(), &["inspect", &component, "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let shipped = &doc["topics"][0];
    assert_eq!(shipped["name"], "shipped", "{doc}");
    assert_eq!(shipped["type_name"], "Shipped");
    assert_eq!(
        shipped["schema"]["required"],
        json!(["tracking", "carrier"]),
        "{shipped}"
    );
    assert_eq!(
        shipped["schema"]["additionalProperties"], false,
        "deny_unknown_fields"
    );
}

#[test]
fn a_bare_word_input_is_told_to_be_quoted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fib = guest(FIB).to_string_lossy().into_owned();
    let db = dir.path().join("quote.db").to_string_lossy().into_owned();
    let out = reprise(dir.path(), &["run", &fib, "fib", "o-1", "--database", &db]);
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains("input is not valid JSON"), "{message}");
    assert!(message.contains(r#"'"o-1"'"#), "{message}");
    assert!(message.contains("quote"), "{message}");

    let out = reprise(
        dir.path(),
        &[
            "enqueue",
            "q",
            "wf",
            "o-1",
            "--server",
            "http://127.0.0.1:9",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(r#"'"o-1"'"#), "{}", stderr(&out));
}

#[test]
fn list_and_get_show_times_queue_instance_and_config_and_filter_as_the_api_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fib = guest(FIB).to_string_lossy().into_owned();
    let db = dir.path().join("list.db").to_string_lossy().into_owned();
    let with_db = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(["--database".to_string(), db.clone()]);
        all
    };

    ok(
        dir.path(),
        &with_db(&["run", &fib, "fib", "5", "--id", "a", "--config", "topic=x"]),
    );
    std::thread::sleep(std::time::Duration::from_millis(5));
    ok(
        dir.path(),
        &with_db(&["run", &fib, "fib", "6", "--id", "b"]),
    );

    let table = ok(dir.path(), &with_db(&["workflow", "list"]));
    let header = table.lines().next().unwrap_or_default();
    for column in ["CREATED (UTC)", "QUEUE", "INSTANCE"] {
        assert!(header.contains(column), "{table}");
    }
    let row_a = table
        .lines()
        .find(|l| l.contains(" a "))
        .unwrap_or_default();
    assert!(
        date_time_in(row_a).is_some() && row_a.contains("default"),
        "{table}"
    );

    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["workflow", "list", "--json"];
        all.extend_from_slice(args);
        let listed = json_of(dir.path(), &with_db(&all));
        listed
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w["id"].as_str().map(String::from))
            .collect()
    };
    assert_eq!(ids(&[]), ["b", "a"], "newest first");
    assert_eq!(ids(&["--limit", "1", "--offset", "1"]), ["a"]);
    assert_eq!(ids(&["--status", "success", "--name", "fib"]), ["b", "a"]);
    assert_eq!(ids(&["--queue", "fib"]), Vec::<String>::new());
    assert_eq!(ids(&["--created-after", "1h"]), ["b", "a"]);
    assert_eq!(ids(&["--created-before", "1h"]), Vec::<String>::new());
    assert_eq!(
        ids(&["--created-after", "2999-01-01"]),
        Vec::<String>::new()
    );
    let out = reprise(
        dir.path(),
        &with_db(&["workflow", "list", "--created-after", "yesterday"]),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    let shown = ok(dir.path(), &with_db(&["workflow", "get", "a"]));
    for field in [
        "created: ",
        "started: ",
        "updated: ",
        "queue: ",
        "instance: default",
        "config: topic=x",
    ] {
        assert!(shown.contains(field), "{field} in\n{shown}");
    }
    let created = shown
        .lines()
        .find(|l| l.trim_start().starts_with("created:"))
        .unwrap_or_default();
    assert_eq!(date_time_in(created), date_time_in(row_a), "{shown}");

    // Values are JSON values, not JSON text in a string.
    let got = json_of(dir.path(), &with_db(&["workflow", "get", "a", "--json"]));
    assert_eq!(got["input"], json!(5));
    assert_eq!(got["output"], json!(5), "fib(5)");
    assert_eq!(got["config"], json!({"topic": "x"}));
    let steps = json_of(dir.path(), &with_db(&["workflow", "steps", "a", "--json"]));
    assert_eq!(steps[0]["output"], json!([1, 1]), "{steps}");
    let run = json_of(
        dir.path(),
        &with_db(&["run", &fib, "fib", "7", "--id", "c", "--json"]),
    );
    assert_eq!(run["output"], json!(13));
}

/// The first `YYYY-MM-DD HH:MM:SS` in `text`.
fn date_time_in(text: &str) -> Option<&str> {
    const SHAPE: &[u8; 19] = b"dddd-dd-dd dd:dd:dd";
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(18))
        .find(|&i| {
            bytes[i..i + 19].iter().zip(SHAPE).all(|(b, s)| match s {
                b'd' => b.is_ascii_digit(),
                other => b == other,
            })
        })
        .map(|i| &text[i..i + 19])
}

#[test]
fn a_guest_log_line_cannot_forge_a_host_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let chaos = guest(CHAOS).to_string_lossy().into_owned();
    let db = dir.path().join("say.db").to_string_lossy().into_owned();
    let forged = "paid\n2026-12-07T00:00:00.000000Z  INFO reprise::serve: refund sent";
    let input = serde_json::to_string(forged).expect("json");
    let out = Command::new(reprise_bin())
        .args(["run", &chaos, "say", &input, "--database", &db])
        .args(["--log-format", "text"])
        .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
        .env("RUST_LOG", "warn,guest=info")
        .output()
        .expect("run reprise");
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    let said: Vec<&str> = log.lines().filter(|l| l.contains("paid")).collect();
    assert_eq!(said.len(), 1, "{log}");
    assert!(
        said[0].contains("paid\\n2026"),
        "escaped in its own line: {log}"
    );
    assert!(
        !log.lines()
            .any(|l| l.starts_with("2026-12-07T00:00:00.000000Z")),
        "a forged line: {log}"
    );
}
