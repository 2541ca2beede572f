//! Which version of each configured component a server starts new workflows on: the newest
//! one it has seen. A new version (on SIGHUP, or uploaded) replaces it for new starts only;
//! workflows in flight keep the version they run on, which the engine keeps loaded beside it.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::runtime::{LoadedComponent, Runtime, RuntimeError};

/// Instance name → the component version new workflows of that instance start on.
pub type Instances = BTreeMap<String, Arc<LoadedComponent>>;

/// The versions a server serves, swapped whole so a reader sees one consistent map.
pub struct Serving {
    /// Instance name → the configured component's name.
    components: BTreeMap<String, String>,
    current: RwLock<Arc<Instances>>,
}

impl std::fmt::Debug for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current: BTreeMap<String, String> = self
            .instances()
            .iter()
            .map(|(instance, c)| (instance.clone(), c.digest.clone()))
            .collect();
        f.debug_struct("Serving")
            .field("components", &self.components)
            .field("current", &current)
            .finish()
    }
}

impl Serving {
    /// Serving `current`, where each instance runs the component named in `components`.
    pub fn new(components: BTreeMap<String, String>, current: Instances) -> Self {
        Serving {
            components,
            current: RwLock::new(Arc::new(current)),
        }
    }

    /// The versions new starts get now, by instance.
    pub fn instances(&self) -> Arc<Instances> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether `name` is a configured component.
    pub fn serves(&self, name: &str) -> bool {
        self.components.values().any(|c| c == name)
    }

    /// The version new starts of component `name` get, if it is configured.
    pub fn newest(&self, name: &str) -> Option<Arc<LoadedComponent>> {
        let instance = self.components.iter().find(|(_, c)| *c == name)?.0;
        self.instances().get(instance).cloned()
    }

    /// Stores `bytes` as a version of component `name`, keeps it loaded, and makes it the one
    /// new starts of its instances get. Returns it, and whether it is new to this server.
    pub async fn add_version(
        &self,
        runtime: &Runtime,
        name: &str,
        bytes: &[u8],
    ) -> Result<(Arc<LoadedComponent>, bool), RuntimeError> {
        let loaded = runtime.register_named(bytes, name).await?;
        let mut swapped = false;
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = (**guard).clone();
        for (instance, component) in &self.components {
            if component == name && next.get(instance).is_none_or(|c| c.digest != loaded.digest) {
                next.insert(instance.clone(), loaded.clone());
                swapped = true;
            }
        }
        *guard = Arc::new(next);
        if swapped {
            tracing::info!(component = name, digest = %loaded.digest, "new version serves new starts; workflows in flight keep theirs");
        }
        Ok((loaded, swapped))
    }
}
