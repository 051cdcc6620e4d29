//! Cluster events that can make an unschedulable pod schedulable (upstream
//! `framework.ClusterEvent`). Each plugin declares the events that could undo its own
//! rejection; the queue moves a pod only on events one of its rejecting plugins declared.

use k8s_openapi::api::core::v1::Node;

/// What changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    Node,
    /// A pod assigned to a node (the queue's own pods are not events).
    AssignedPod,
    Namespace,
}

/// A bit set of actions (upstream `ActionType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Action(pub u32);

impl Action {
    pub const ADD: Action = Action(1);
    pub const DELETE: Action = Action(1 << 1);
    pub const UPDATE_NODE_ALLOCATABLE: Action = Action(1 << 2);
    pub const UPDATE_NODE_LABEL: Action = Action(1 << 3);
    pub const UPDATE_NODE_TAINT: Action = Action(1 << 4);
    pub const UPDATE_NODE_CONDITION: Action = Action(1 << 5);
    pub const UPDATE_NODE_ANNOTATION: Action = Action(1 << 6);
    pub const UPDATE_POD_LABEL: Action = Action(1 << 7);
    pub const UPDATE_POD_SCALE_DOWN: Action = Action(1 << 8);
    pub const UPDATE_POD_OTHER: Action = Action(1 << 9);
    pub const UPDATE: Action = Action(
        Self::UPDATE_NODE_ALLOCATABLE.0
            | Self::UPDATE_NODE_LABEL.0
            | Self::UPDATE_NODE_TAINT.0
            | Self::UPDATE_NODE_CONDITION.0
            | Self::UPDATE_NODE_ANNOTATION.0
            | Self::UPDATE_POD_LABEL.0
            | Self::UPDATE_POD_SCALE_DOWN.0
            | Self::UPDATE_POD_OTHER.0,
    );
    pub const ALL: Action = Action(Self::ADD.0 | Self::DELETE.0 | Self::UPDATE.0);

    pub const fn or(self, o: Action) -> Action {
        Action(self.0 | o.0)
    }

    pub fn intersects(self, o: Action) -> bool {
        self.0 & o.0 != 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClusterEvent {
    pub resource: Resource,
    pub action: Action,
}

impl ClusterEvent {
    pub const fn new(resource: Resource, action: Action) -> ClusterEvent {
        ClusterEvent { resource, action }
    }

    /// Whether this event (what happened) is one `registered` asked for.
    pub fn matches(&self, registered: &ClusterEvent) -> bool {
        self.resource == registered.resource && self.action.intersects(registered.action)
    }

    pub fn label(&self) -> &'static str {
        match (self.resource, self.action) {
            (Resource::Node, a) if a == Action::ADD => "NodeAdd",
            (Resource::Node, a) if a == Action::DELETE => "NodeDelete",
            (Resource::Node, _) => "NodeUpdate",
            (Resource::AssignedPod, a) if a == Action::ADD => "AssignedPodAdd",
            (Resource::AssignedPod, a) if a == Action::DELETE => "AssignedPodDelete",
            (Resource::AssignedPod, _) => "AssignedPodUpdate",
            (Resource::Namespace, _) => "NamespaceChange",
        }
    }
}

/// What a node update changed for scheduling (upstream `NodeSchedulingPropertiesChange`);
/// empty when nothing relevant did.
pub fn node_update_action(old: &Node, new: &Node) -> Action {
    let mut a = Action(0);
    let spec = |n: &Node| n.spec.clone().unwrap_or_default();
    let (os, ns) = (spec(old), spec(new));
    if os.unschedulable.unwrap_or(false) != ns.unschedulable.unwrap_or(false)
        || os.taints != ns.taints
    {
        a = a.or(Action::UPDATE_NODE_TAINT);
    }
    if old.metadata.labels != new.metadata.labels {
        a = a.or(Action::UPDATE_NODE_LABEL);
    }
    if old.metadata.annotations != new.metadata.annotations {
        a = a.or(Action::UPDATE_NODE_ANNOTATION);
    }
    let status = |n: &Node| {
        n.status
            .as_ref()
            .map(|s| (s.allocatable.clone(), s.images.clone()))
    };
    if status(old) != status(new) {
        a = a.or(Action::UPDATE_NODE_ALLOCATABLE);
    }
    let ready = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .map(|c| {
                c.iter()
                    .map(|c| (c.type_.clone(), c.status.clone()))
                    .collect::<Vec<_>>()
            })
    };
    if ready(old) != ready(new) {
        a = a.or(Action::UPDATE_NODE_CONDITION);
    }
    a
}
