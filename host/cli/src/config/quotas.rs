//! `[instances.NAME.quotas]`: what one instance's workflows may take of what all share.

use serde::Deserialize;

use super::units::optional_size;
use reprise_host::quotas::Quotas;

/// An instance's quotas as written; what is left out keeps its default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasConfig {
    /// Children one workflow may start [default: 10000].
    pub max_children: Option<u32>,
    /// Bytes one workflow may hold in messages sent, events and streams [default: 256MiB].
    #[serde(default, deserialize_with = "optional_size")]
    pub max_held_bytes: Option<u64>,
    /// Workflows of the instance one host starts per second [default: unbounded].
    pub starts_per_second: Option<u32>,
}

impl QuotasConfig {
    /// The quotas, defaults filled in.
    pub fn quotas(&self) -> Quotas {
        let defaults = Quotas::default();
        Quotas {
            max_children: self.max_children.unwrap_or(defaults.max_children),
            max_held_bytes: self.max_held_bytes.unwrap_or(defaults.max_held_bytes),
            starts_per_second: self.starts_per_second.or(defaults.starts_per_second),
        }
    }
}
