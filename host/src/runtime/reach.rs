//! Instances as a trust boundary: which other workflows a workflow's code may touch. A send,
//! an event read or a child's await reaches a workflow of the caller's own instance, the
//! caller's own child (whatever its instance), or a workflow of an instance the caller's
//! instance names in `reach` (`"*"` names all). Anything else is answered as if that id did
//! not exist, so one tenant's guest learns nothing of another's workflows, not even that
//! they exist. Outside clients with the token are not bound by it.

use reprise_store::WorkflowRecord;

/// Who is asking: a workflow, its instance and what that instance may reach.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller<'a> {
    pub(crate) id: &'a str,
    pub(crate) instance: &'a str,
    pub(crate) reach: &'a [String],
}

impl Caller<'_> {
    /// Whether this caller's code may touch `target`.
    pub(crate) fn reaches(&self, target: &WorkflowRecord) -> bool {
        target.instance == self.instance
            || target.parent_workflow_id.as_deref() == Some(self.id)
            || self
                .reach
                .iter()
                .any(|name| name == "*" || *name == target.instance)
    }

    /// The words for an id this caller cannot reach, the same whether the workflow does not
    /// exist or belongs to an instance out of reach.
    pub(crate) fn no_such_workflow(&self, id: &str) -> String {
        format!(
            "no workflow with id {id} within reach of instance {:?} (its own workflows and \
             children, and those of the instances its `reach` names)",
            self.instance
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reprise_store::WorkflowStatus;

    fn workflow(instance: &str, parent: Option<&str>) -> WorkflowRecord {
        WorkflowRecord {
            instance: instance.into(),
            parent_workflow_id: parent.map(str::to_string),
            ..WorkflowRecord::example("target", WorkflowStatus::Pending)
        }
    }

    #[test]
    fn a_workflow_reaches_its_instance_its_children_and_what_reach_names() {
        let none: Vec<String> = Vec::new();
        let beta = Caller {
            id: "me",
            instance: "beta",
            reach: &none,
        };
        assert!(beta.reaches(&workflow("beta", None)));
        assert!(
            beta.reaches(&workflow("alpha", Some("me"))),
            "its own child"
        );
        assert!(!beta.reaches(&workflow("alpha", None)));
        assert!(!beta.reaches(&workflow("alpha", Some("someone-else"))));

        let billing = vec!["billing".to_string()];
        let granted = Caller {
            reach: &billing,
            ..beta
        };
        assert!(granted.reaches(&workflow("billing", None)));
        assert!(!granted.reaches(&workflow("alpha", None)));
        let all = vec!["*".to_string()];
        assert!(
            Caller {
                reach: &all,
                ..beta
            }
            .reaches(&workflow("alpha", None))
        );
    }
}
