//! The formats Reprise's parts share, serde only: the admin API's bodies ([`wire`]), what a
//! workflow id may be ([`ids`]), and the names and encodings stored in every history row
//! ([`recorded`]). The host, the store, the client and the guest SDK's test host all use these
//! definitions, so none of them can drift from the others.

pub mod ids;
pub mod recorded;
pub mod wire;
