//! Every `#[step]` and `#[workflow]` registers itself where it is defined, so one left out of
//! `export!` still runs isolated and still shows in `reprise inspect`. wit-bindgen's exports
//! run the constructors that register them before anything else.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use crate::runtime::{StepDef, WorkflowDef};

inventory::collect!(StepDef);
inventory::collect!(WorkflowDef);

/// `listed` first, then every registered step not listed, each name once.
pub fn all_steps(listed: &'static [StepDef]) -> &'static [StepDef] {
    static ALL: OnceLock<Vec<StepDef>> = OnceLock::new();
    ALL.get_or_init(|| merged(listed, inventory::iter::<StepDef>, |s| s.name))
}

/// `listed` first, then every registered workflow not listed, each name once.
pub fn all_workflows(listed: &'static [WorkflowDef]) -> &'static [WorkflowDef] {
    static ALL: OnceLock<Vec<WorkflowDef>> = OnceLock::new();
    ALL.get_or_init(|| merged(listed, inventory::iter::<WorkflowDef>, |w| w.name))
}

fn merged<'a, T: Copy + 'a>(
    listed: &[T],
    registered: impl IntoIterator<Item = &'a T>,
    name: impl Fn(&T) -> &'static str,
) -> Vec<T> {
    let mut seen = BTreeSet::new();
    let mut all: Vec<T> = listed.to_vec();
    seen.extend(all.iter().map(&name));
    let mut rest: Vec<T> = registered
        .into_iter()
        .copied()
        .filter(|def| seen.insert(name(def)))
        .collect();
    // Registration order depends on the linker: list the unlisted by name.
    rest.sort_by_key(|def| name(def));
    all.extend(rest);
    all
}
