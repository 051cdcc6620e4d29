//! Which objects a list, watch or deletecollection covers: label and field selectors
//! (the namespace is covered by the key prefix).

use apimachinery::selector::{FieldSelector, LabelSelector, field};
use apimachinery::status::ApiError;
use serde_json::Value;

use super::Ctx;

#[derive(Debug, Default)]
pub struct Filter {
    label: Option<LabelSelector>,
    field: Option<FieldSelector>,
    name: Option<String>,
}

impl Filter {
    pub fn from_ctx(ctx: &Ctx) -> Result<Self, ApiError> {
        let label = match ctx.query.value("labelSelector") {
            Some(s) => Some(LabelSelector::parse(s)?),
            None => None,
        };
        let field = match ctx.query.value("fieldSelector") {
            Some(s) => Some(field::parse(&ctx.rt.group, &ctx.rt.kind, s)?),
            None => None,
        };
        Ok(Filter {
            label,
            field,
            name: None,
        })
    }

    /// Restricts to one object (a watch on `…/pods/<name>`).
    pub fn pin_name(&mut self, name: &str) {
        self.name = Some(name.to_string());
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(name) = &self.name
            && obj["metadata"]["name"].as_str() != Some(name)
        {
            return false;
        }
        self.label.as_ref().is_none_or(|l| l.matches_object(obj))
            && self.field.as_ref().is_none_or(|f| f.matches(obj))
    }
}
