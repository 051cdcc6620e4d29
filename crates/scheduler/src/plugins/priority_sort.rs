//! PrioritySort (QueueSort): higher `spec.priority` first, then the earlier arrival. The
//! scheduling queue implements the order itself; this plugin carries the name profiles enable.

use std::sync::Arc;

use crate::framework::{Handle, Plugin, Points};

pub const NAME: &str = "PrioritySort";

pub fn new(_args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(PrioritySort))
}

struct PrioritySort;

impl Plugin for PrioritySort {
    fn name(&self) -> &'static str {
        NAME
    }

    fn points(&self) -> Points {
        Points::QUEUE_SORT
    }
}
