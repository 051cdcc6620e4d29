//! SchedulingGates (PreEnqueue): a pod with `spec.schedulingGates` waits outside the active
//! queue until its gates are removed. The queue implements the check; this plugin carries the
//! name profiles enable.

use std::sync::Arc;

use crate::framework::{Handle, Plugin, Points};

pub const NAME: &str = "SchedulingGates";

pub fn new(_args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(SchedulingGates))
}

struct SchedulingGates;

impl Plugin for SchedulingGates {
    fn name(&self) -> &'static str {
        NAME
    }

    fn points(&self) -> Points {
        Points::PRE_ENQUEUE
    }
}
