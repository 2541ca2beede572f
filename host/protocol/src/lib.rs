//! The formats Reprise's parts share, serde only: the admin API's bodies ([`wire`]), what a
//! workflow id may be ([`ids`]), and the names and encodings stored in every history row
//! ([`recorded`]), and how a URL is shown where a secret in it must not go ([`redact`]). The
//! host, the store, the client and the guest SDK all use these definitions, so none of them can
//! drift from the others.

pub mod ids;
pub mod recorded;
pub mod redact;
pub mod wire;
