//! Typed topics: a component declares the JSON Schema of the messages on a topic
//! (`#[topic("shipped")]` in the SDK) while its definitions are listed; the schemas are stored
//! with the component, and every send to one of its workflows — from the API, the CLI, the
//! client or another workflow — is checked against them before anything is stored. A message
//! that does not match is refused, naming the field, instead of failing the `recv` that would
//! have taken it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::engine::TopicDefinition;
use crate::runtime::ids::check_key;
use reprise_store::{Store, StoreError};

/// How many of a message's mismatches a refusal names.
const NAMED_MISMATCHES: usize = 3;
/// Most topics one component may declare, and the largest schema of one: a component is
/// untrusted code, and its declarations are stored with it and compiled by every host.
const MAX_TOPICS: usize = 256;
const MAX_SCHEMA_BYTES: usize = 64 << 10;

/// Adds a topic a component declares while listing its definitions: a bad name, a schema
/// that is not one, or a topic declared twice fails the component's load.
pub(crate) fn declared(
    topics: &mut Vec<TopicDefinition>,
    name: String,
    type_name: String,
    schema: &[u8],
) -> Result<(), String> {
    check_key("topic", &name)?;
    if topics.len() >= MAX_TOPICS {
        return Err(format!(
            "more than {MAX_TOPICS} topics declared: a component declares at most {MAX_TOPICS}"
        ));
    }
    if schema.len() > MAX_SCHEMA_BYTES {
        return Err(format!(
            "the schema of topic {name:?} has {} bytes, more than the {MAX_SCHEMA_BYTES} allowed",
            schema.len()
        ));
    }
    if topics.iter().any(|t| t.name == name) {
        return Err(format!(
            "topic {name:?} is declared twice: one #[topic] type per topic"
        ));
    }
    let schema: serde_json::Value = serde_json::from_slice(schema)
        .map_err(|e| format!("the schema of topic {name:?} is not JSON: {e}"))?;
    jsonschema::validator_for(&schema)
        .map_err(|e| format!("the schema of topic {name:?} is not a JSON Schema: {e}"))?;
    topics.push(TopicDefinition {
        name,
        type_name,
        schema,
    });
    Ok(())
}

/// One topic's compiled schema.
struct TopicType {
    type_name: String,
    validator: jsonschema::Validator,
}

/// A version's topic types, by topic.
type VersionTypes = HashMap<String, TopicType>;

/// Checks messages against the topic types of their destination's component, compiling each
/// version's schemas once.
pub(crate) struct TopicChecker {
    store: Arc<dyn Store>,
    compiled: Mutex<HashMap<String, Arc<VersionTypes>>>,
}

impl TopicChecker {
    pub(crate) fn new(store: Arc<dyn Store>) -> TopicChecker {
        TopicChecker {
            store,
            compiled: Mutex::default(),
        }
    }

    /// `Ok(Err(refusal))` when `message` (JSON text) does not match the type workflow
    /// `workflow_id`'s component declares for `topic`. Anything else passes: an untyped
    /// topic, and an unknown workflow (the send itself says so).
    pub(crate) async fn check(
        &self,
        workflow_id: &str,
        topic: &str,
        message: &str,
    ) -> Result<Result<(), String>, StoreError> {
        let Some(version) = self.store.workflow_version(workflow_id).await? else {
            return Ok(Ok(()));
        };
        let types = self.compiled(&version).await?;
        let Some(expected) = types.get(topic) else {
            return Ok(Ok(()));
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(message) else {
            return Ok(Err(format!("the message on topic {topic:?} is not JSON")));
        };
        let mismatches: Vec<String> = expected
            .validator
            .iter_errors(&value)
            .take(NAMED_MISMATCHES)
            .map(|error| {
                let at = error.instance_path().to_string();
                if at.is_empty() {
                    error.to_string()
                } else {
                    format!("at {at}: {error}")
                }
            })
            .collect();
        if mismatches.is_empty() {
            return Ok(Ok(()));
        }
        Ok(Err(format!(
            "the message does not match topic {topic:?}'s type {} (declared by {workflow_id}'s \
             code): {}",
            expected.type_name,
            mismatches.join("; ")
        )))
    }

    /// The compiled types of a version, read and compiled the first time it is asked for
    /// (a version's types never change: they come from its bytes).
    async fn compiled(&self, version: &str) -> Result<Arc<VersionTypes>, StoreError> {
        if let Some(types) = self.cached(version) {
            return Ok(types);
        }
        let declared = self.store.component_topics(version).await?;
        let types = Arc::new(declared.map_or_else(VersionTypes::new, |d| compile(version, &d)));
        let mut compiled = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        compiled.insert(version.to_owned(), types.clone());
        Ok(types)
    }

    fn cached(&self, version: &str) -> Option<Arc<VersionTypes>> {
        let compiled = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        compiled.get(version).cloned()
    }
}

/// Compiles stored topic types. The host checked each schema when the component was loaded;
/// one that no longer compiles (written by hand, say) checks nothing and is logged.
fn compile(app_version: &str, declared: &str) -> VersionTypes {
    let topics: Vec<TopicDefinition> = match serde_json::from_str(declared) {
        Ok(topics) => topics,
        Err(err) => {
            tracing::warn!(
                app_version,
                "stored topic types do not read, not checked: {err}"
            );
            return VersionTypes::new();
        }
    };
    topics
        .into_iter()
        .filter_map(|topic| match jsonschema::validator_for(&topic.schema) {
            Ok(validator) => Some((
                topic.name,
                TopicType {
                    type_name: topic.type_name,
                    validator,
                },
            )),
            Err(err) => {
                tracing::warn!(app_version, topic = %topic.name, "stored topic schema does not compile, not checked: {err}");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declare(topics: &mut Vec<TopicDefinition>, name: &str, schema: &str) -> Result<(), String> {
        declared(topics, name.into(), "T".into(), schema.as_bytes())
    }

    #[test]
    fn a_component_declares_each_topic_once_with_a_real_schema_of_bounded_size() {
        let mut topics = Vec::new();
        declare(&mut topics, "shipped", r#"{"type":"object"}"#).expect("a schema");
        let twice = declare(&mut topics, "shipped", r#"{"type":"object"}"#).expect_err("twice");
        assert!(twice.contains("declared twice"), "{twice}");
        let not_json = declare(&mut topics, "a", "{").expect_err("not JSON");
        assert!(not_json.contains("is not JSON"), "{not_json}");
        let not_schema = declare(&mut topics, "b", r#"{"type": 7}"#).expect_err("not a schema");
        assert!(not_schema.contains("not a JSON Schema"), "{not_schema}");
        let huge = format!(r#"{{"description":"{}"}}"#, "x".repeat(MAX_SCHEMA_BYTES));
        let too_big = declare(&mut topics, "c", &huge).expect_err("too big");
        assert!(too_big.contains("bytes, more than"), "{too_big}");
        for n in 1..MAX_TOPICS {
            declare(&mut topics, &format!("t{n}"), "true").expect("within the bound");
        }
        let many = declare(&mut topics, "one-more", "true").expect_err("too many");
        assert!(many.contains("at most 256"), "{many}");
    }
}
