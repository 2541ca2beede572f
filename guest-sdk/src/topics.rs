//! Typed topics: `#[topic("shipped")] struct Shipped { .. }` declares what the messages on a
//! topic look like. The component tells the host each declared type's JSON Schema when it is
//! loaded, and the host then refuses a send to the topic that does not match (a 400 from the
//! API, exit 2 from the CLI, an `Err` for a sending workflow), so a malformed message never
//! reaches the workflow's `recv`.
//!
//! ```ignore
//! #[topic("shipped")]
//! #[derive(Serialize, Deserialize)]
//! struct Shipped { tracking: String }
//!
//! #[workflow]
//! fn order(id: String) -> Result<String, Error> {
//!     match Shipped::recv(Duration::from_secs(60))? {
//!         Some(shipped) => Ok(shipped.tracking),
//!         None => bail!("not shipped within a minute"),
//!     }
//! }
//! ```

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// A message type declared for a topic with [`#[topic("name")]`](macro@crate::topic).
pub trait Topic: Serialize + DeserializeOwned {
    /// The topic's name.
    const NAME: &'static str;

    /// [`crate::recv`] of this topic: the oldest message on it, waiting up to `timeout`.
    fn recv(timeout: Duration) -> Result<Option<Self>, Error> {
        crate::recv(Self::NAME, timeout)
    }

    /// [`crate::send`] of this message to workflow `workflow_id`'s topic.
    fn send_to(&self, workflow_id: &str) -> Result<(), Error> {
        crate::send(workflow_id, Self::NAME, self)
    }
}

/// One `#[topic]` declaration, registered where it is written.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct TopicDef {
    pub name: &'static str,
    pub type_name: &'static str,
    /// The type's JSON Schema, as JSON text.
    pub schema: fn() -> String,
    /// Whether a message decodes as the type: what the native harness checks a send with.
    pub check: fn(&[u8]) -> Result<(), String>,
}

inventory::collect!(TopicDef);

/// Every declared topic.
pub(crate) fn declared() -> impl Iterator<Item = &'static TopicDef> {
    inventory::iter::<TopicDef>.into_iter()
}

/// The declared topic `name`, if any (the native test harness checks messages with it).
#[cfg(not(target_family = "wasm"))]
pub(crate) fn find(name: &str) -> Option<&'static TopicDef> {
    declared().find(|def| def.name == name)
}

#[doc(hidden)]
pub fn topic_schema<T: schemars::JsonSchema>() -> String {
    let schema = schemars::schema_for!(T);
    // A schema is a JSON value: writing it cannot fail.
    serde_json::to_string(&schema).unwrap_or_else(|_| "{}".to_owned())
}

#[doc(hidden)]
pub fn topic_check<T: DeserializeOwned>(message: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<T>(message)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A message or event value that does not decode as the type the workflow asked for, handed
/// to the workflow as an error value it can act on (the message itself is consumed and
/// recorded, so a replay sees the same). Only on topics without a declared type: the host
/// refuses a malformed send to a declared one.
///
/// ```ignore
/// match recv::<Shipped>("shipped", Duration::from_secs(60)) {
///     Ok(Some(shipped)) => ship(shipped),
///     Ok(None) => refund()?,
///     Err(e) if e.downcast_ref::<Undecodable>().is_some() => refund()?,
///     Err(e) => return Err(e),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    /// What was read ("the message on topic \"shipped\"").
    pub what: String,
    /// The Rust type it was read as.
    pub expected: &'static str,
    /// The deserializer's message (it names the field).
    pub message: String,
    /// The JSON as it was sent.
    pub json: String,
}

impl std::fmt::Display for Undecodable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} does not decode: expected {}: {}",
            self.what, self.expected, self.message
        )
    }
}

impl std::error::Error for Undecodable {}
