//! Quotas per instance: a workflow that starts more children than `max_children` or writes
//! more than `max_held_bytes` gets a clear error for the call past the quota (and the calls
//! before it work); starts past `starts_per_second` are 429 and store nothing; `/metrics`
//! counts each refusal.

use crate::common;
use crate::guests::CHAOS;

use common::guest;
use common::server::Server;
use reprise_client::{Client, ClientError, StartOptions};
use serde_json::{Value, json};

fn config(dir: &std::path::Path) -> String {
    format!(
        r#"
database = "{db}"
durability = "process"
executor_id = "quotas"

[server]
token = "secret"

[components]
chaos = "{chaos}"

[instances.tight]
component = "chaos"
quotas = {{ max_children = 3, max_held_bytes = "10KiB" }}

[instances.burst]
component = "chaos"
quotas = {{ starts_per_second = 1 }}
"#,
        db = dir.join("serve.db").display(),
        chaos = guest(CHAOS).display(),
    )
}

fn on(instance: &str) -> StartOptions {
    StartOptions {
        instance: Some(instance.into()),
        ..Default::default()
    }
}

async fn output(client: &Client, workflow: &str, input: Value, instance: &str) -> Value {
    let handle = client
        .start_with(workflow, &input, &on(instance))
        .await
        .expect("start");
    let view = handle.status_at_end().await.expect("ended");
    assert_eq!(view.status.as_str(), "SUCCESS", "{view:?}");
    view.output.unwrap_or(Value::Null)
}

#[tokio::test]
async fn quotas_refuse_what_is_past_them_and_metrics_count_it() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(dir.path(), &config(dir.path()));
    let client = server.client();

    let children = output(&client, "fan_out", json!(5), "tight").await;
    let children: Vec<String> = serde_json::from_value(children).expect("strings");
    assert_eq!(children[..3], ["ok", "ok", "ok"], "{children:?}");
    for refused in &children[3..] {
        assert!(
            refused.contains(
                "quota reached: a workflow of instance \"tight\" may start at most 3 children"
            ),
            "{refused}"
        );
    }

    // 3 values of 3,000 bytes fit in 10 KiB; a fourth does not, and is not written.
    let flood = output(&client, "flood", json!([10, 3000]), "tight").await;
    assert_eq!(flood[0], json!(3), "{flood}");
    let error = flood[1].as_str().unwrap_or_default();
    assert!(
        error.contains("would make the workflow hold 12000 bytes")
            && error.contains("allows 10240"),
        "{error}"
    );

    // A burst past 1 start a second: the rest are 429, none stored.
    let mut refused = 0;
    let burst = std::time::Instant::now();
    for i in 0..8 {
        let options = StartOptions {
            id: Some(format!("burst-{i}")),
            ..on("burst")
        };
        match client.start_with("echo", &i, &options).await {
            Ok(_) => {}
            Err(ClientError::Api {
                status: 429,
                message,
            }) => {
                assert!(
                    message.contains("starts at most 1 workflows/s on this host"),
                    "{message}"
                );
                assert!(
                    client.status(&format!("burst-{i}")).await.is_err(),
                    "not stored"
                );
                refused += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    // One at once, then one per second the burst took (a slow machine refills more).
    let admitted = 8 - refused;
    let allowed = 1 + burst.elapsed().as_secs_f64().ceil() as u32;
    assert!(
        refused >= 1 && admitted <= allowed,
        "{admitted} admitted, at most {allowed} allowed"
    );

    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", server.url))
        .bearer_auth("secret")
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for line in [
        "reprise_quota_refusals_total{quota=\"max_children\"} 2".to_string(),
        "reprise_quota_refusals_total{quota=\"max_held_bytes\"} 1".to_string(),
        format!("reprise_quota_refusals_total{{quota=\"starts_per_second\"}} {refused}"),
    ] {
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
}
