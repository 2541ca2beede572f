//! The newest version of each workflow this runtime has seen registered: what an instance
//! with `upgrade = "auto"` moves its workflows to when they wake or recover.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::runtime::execution::instance::LoadedComponent;

/// Workflow name → the component most recently registered that defines it.
#[derive(Default)]
pub(crate) struct Newest(RwLock<HashMap<String, Arc<LoadedComponent>>>);

impl Newest {
    /// `component` was registered: it is now the newest version of each workflow it defines.
    pub(crate) fn saw(&self, component: &Arc<LoadedComponent>) {
        let mut map = match self.0.write() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        for workflow in &component.definitions.workflows {
            map.insert(workflow.clone(), component.clone());
        }
    }

    /// The newest version defining `workflow`, if one was registered here.
    pub(crate) fn of(&self, workflow: &str) -> Option<Arc<LoadedComponent>> {
        match self.0.read() {
            Ok(map) => map.get(workflow).cloned(),
            Err(poisoned) => poisoned.into_inner().get(workflow).cloned(),
        }
    }
}
