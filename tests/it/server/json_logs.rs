//! `log_format = "json"`: every line `reprise serve` writes on stderr is one JSON object, and
//! a guest's log lines carry the workflow id and, from a step, the step's name.

use crate::common;
use crate::guests::SHOP;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::services::PaymentApi;
use common::{guest, reprise_bin};
use serde_json::{Value, json};

#[tokio::test]
async fn served_logs_are_json_lines_naming_workflow_and_step() {
    let payments = PaymentApi::start(0).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
database = "{db}"
durability = "process"
log_format = "json"

[server]
token = "secret"

[components]
shop = "{shop}"

[instances.shop]
component = "shop"
allow_http = ["127.0.0.1:{port}"]
"#,
        db = dir.path().join("logs.db").display(),
        shop = guest(SHOP).display(),
        port = payments.port,
    );
    let config_path = dir.path().join("reprise.toml");
    std::fs::write(&config_path, config).unwrap();
    let log_path = dir.path().join("serve.log");
    let mut child = Command::new(reprise_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config_path)
        .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
        .env("RUST_LOG", "warn,guest=info,reprise=info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("reprise serve listening on ")
        .unwrap_or_else(|| panic!("serve did not start: {line:?}"))
        .to_string();

    let client = reprise_client::Client::new(&url, Some("secret".into())).unwrap();
    let options = reprise_client::StartOptions {
        instance: Some("shop".into()),
        id: Some("logged".into()),
        ..Default::default()
    };
    let target = format!("{}/ping", payments.url);
    let handle = client
        .start_with("fetch", &json!(target), &options)
        .await
        .unwrap();
    let view = handle.status_at_end().await.unwrap();
    assert_eq!(view.output, Some(json!([200, "pong"])), "{:?}", view.error);
    child.kill().unwrap();
    child.wait().unwrap();

    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 3, "{log}");
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["timestamp"].is_string())
    );
    let guest = |message: &str| {
        lines
            .iter()
            .find(|l| l["target"] == "guest" && l["message"] == message)
            .unwrap_or_else(|| panic!("no guest line {message:?} in {log}"))
            .clone()
    };
    let in_step = guest(&format!("GET {target}"));
    assert_eq!(in_step["workflow_id"], "logged");
    assert_eq!(in_step["step"], "get_url");
    let in_workflow = guest("fetched: 200");
    assert_eq!(in_workflow["workflow_id"], "logged");
    assert!(in_workflow.get("step").is_none(), "{in_workflow}");
}
