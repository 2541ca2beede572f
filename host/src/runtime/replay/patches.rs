//! `reprise patches`: for each patch and version, how many workflows in flight recorded its
//! marker, took the old branch, or have not reached it yet — so a team knows when the old
//! branch (and then the `patched` call) can go. Found by replaying each workflow on its own
//! version with nothing executed: the history alone does not show who took the old branch.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::check::{in_flight, replay_all};
use super::{Next, Verdict};
use crate::runtime::error::RuntimeError;
use crate::runtime::shared::Shared;
use reprise_protocol::recorded;

/// One patch on one version.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PatchUse {
    /// The patch's id, as `patched("id")` names it.
    pub patch: String,
    /// The component version the workflows run on.
    pub app_version: String,
    /// Workflows in flight that took the new branch (recorded the marker).
    pub recorded: usize,
    /// Workflows in flight that passed the patch before it existed: the old branch.
    pub old_branch: usize,
    /// Workflows in flight whose next call is the patch: they will take the new branch.
    pub not_reached: usize,
}

/// The uses of every patch by the workflows in flight (of `instance`, if given).
pub(crate) async fn patches(
    shared: &Arc<Shared>,
    instance: Option<String>,
) -> Result<Vec<PatchUse>, RuntimeError> {
    let workflows = in_flight(shared, instance, None).await?;
    let mut uses: BTreeMap<(String, String), PatchUse> = BTreeMap::new();
    for (workflow, replay) in replay_all(shared, workflows, None).await? {
        let mut count = |patch: &str, what: fn(&mut PatchUse)| {
            let key = (patch.to_string(), workflow.app_version.clone());
            let entry = uses.entry(key).or_insert_with(|| PatchUse {
                patch: patch.to_string(),
                app_version: workflow.app_version.clone(),
                ..PatchUse::default()
            });
            what(entry);
        };
        for (patch, new_branch) in &replay.seen.patches {
            if *new_branch {
                count(patch, |u| u.recorded += 1);
            } else {
                count(patch, |u| u.old_branch += 1);
            }
        }
        if let Verdict::Clean {
            next: Next::Call { name, .. },
        } = &replay.verdict
            && let Some(patch) = name.strip_prefix(recorded::PATCH_PREFIX)
        {
            count(patch, |u| u.not_reached += 1);
        }
    }
    Ok(uses.into_values().collect())
}
