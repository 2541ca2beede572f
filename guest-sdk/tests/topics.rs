//! Typed topics under the native harness: a declared type's schema as the host gets it, a
//! send of the wrong shape refused as the host refuses it, and on an untyped topic a message
//! that does not decode handed to the workflow as an `Undecodable` value it can act on.

use std::time::Duration;

use reprise_guest::prelude::*;
use reprise_guest::testing::Harness;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[topic("shipped")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Shipped {
    tracking: String,
    #[serde(default)]
    carrier: Option<String>,
}

/// The tracking number, `"late"` on a timeout, `"bad: …"` for a message that did not decode.
#[workflow]
fn wait_typed() -> Result<String, Error> {
    Ok(match Shipped::recv(Duration::from_secs(60))? {
        Some(shipped) => shipped.tracking,
        None => "late".into(),
    })
}

#[workflow]
fn wait_untyped() -> Result<String, Error> {
    match recv::<Shipped>("loose", Duration::from_secs(60)) {
        Ok(Some(shipped)) => Ok(shipped.tracking),
        Ok(None) => Ok("late".into()),
        Err(e) => match e.downcast_ref::<Undecodable>() {
            Some(bad) => Ok(format!("bad: {} ({})", bad.json, bad.message)),
            None => Err(e),
        },
    }
}

#[test]
fn a_declared_topic_gets_the_types_schema() {
    let def = reprise_guest::__private::inventory::iter::<reprise_guest::__private::TopicDef>
        .into_iter()
        .find(|d| d.name == "shipped")
        .expect("registered by #[topic]");
    assert_eq!(def.type_name, "Shipped");
    let schema: serde_json::Value = serde_json::from_str(&(def.schema)()).expect("JSON");
    assert_eq!(schema["required"], json!(["tracking"]), "{schema}");
    assert_eq!(
        schema["properties"]["tracking"]["type"], "string",
        "{schema}"
    );
    assert_eq!(<Shipped as Topic>::NAME, "shipped");
}

#[test]
fn a_message_of_the_declared_type_is_received_and_a_wrong_one_refused() {
    let mut h = Harness::new();
    let refused = h
        .try_message("shipped", &json!({ "tracking": 7 }))
        .err()
        .expect("refused");
    assert!(
        refused.contains("Shipped") && refused.contains("invalid type"),
        "{refused}"
    );
    h.message("shipped", &json!({ "tracking": "1Z" }));
    assert_eq!(h.run(wait_typed).expect("no crash").expect("ok"), "1Z");
}

#[test]
fn an_undecodable_message_on_an_untyped_topic_is_a_value_the_workflow_handles() {
    let mut h = Harness::new();
    h.message("loose", &json!({ "tracking": 7 }));
    let got = h.run(wait_untyped).expect("no crash").expect("handled");
    assert!(got.starts_with(r#"bad: {"tracking":7}"#), "{got}");
    assert!(got.contains("invalid type"), "{got}");
    // Consumed and recorded: a replay of the workflow sees the same value.
    assert_eq!(h.run(wait_untyped).expect("no crash").expect("ok"), got);
}
