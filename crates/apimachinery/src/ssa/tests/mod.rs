//! Field management scenarios against a tiny stand-in for the API server's write path:
//! every write is normalized, defaulted and given server metadata the way the real one
//! does before it is stored, so objects look like what kubectl would read back.
//!
//! - `apply.rs`: server-side apply (create, re-apply, pruning, merging, conflicts, force).
//! - `update.rs`: non-apply writes, user-provided managedFields, the client-side apply
//!   upgrade, subresources.
//! - `errors.rs`: rejected configs and the `Status` of each failure; request options.

mod apply;
mod errors;
mod update;

use serde_json::{Value, json};

use super::{FieldManager, SsaError};
use crate::registry::{Registry, ResourceType};

/// A single stored object and the clock its writes are stamped with.
pub(super) struct Server {
    pub rt: ResourceType,
    pub obj: Option<Value>,
    clock: u32,
}

pub(super) fn registry() -> Registry {
    Registry::builtin()
}

/// A copy of a registry entry (ResourceType is not Clone; the test owns its own).
fn owned(rt: &ResourceType) -> ResourceType {
    ResourceType {
        group: rt.group.clone(),
        version: rt.version.clone(),
        kind: rt.kind.clone(),
        list_kind: rt.list_kind.clone(),
        plural: rt.plural.clone(),
        singular: rt.singular.clone(),
        namespaced: rt.namespaced,
        short_names: rt.short_names.clone(),
        categories: rt.categories.clone(),
        verbs: rt.verbs.clone(),
        subresources: rt.subresources.clone(),
        tracks_generation: rt.tracks_generation,
        typed: rt.typed,
        custom_schema: rt.custom_schema.clone(),
        printer_columns: rt.printer_columns.clone(),
    }
}

impl Server {
    pub fn builtin(group: &str, version: &str, plural: &str) -> Server {
        let reg = registry();
        let rt = reg.get(group, version, plural).expect("built-in resource");
        Server::with(owned(rt))
    }

    pub fn with(rt: ResourceType) -> Server {
        Server {
            rt,
            obj: None,
            clock: 0,
        }
    }

    /// The time of the next write: one second later each time.
    pub fn tick(&mut self) -> String {
        self.clock += 1;
        format!("2024-05-01T10:00:{:02}Z", self.clock)
    }

    pub fn obj(&self) -> &Value {
        self.obj.as_ref().expect("object exists")
    }

    /// `PATCH` with `application/apply-patch+yaml`.
    pub fn apply(&mut self, config: Value, manager: &str, force: bool) -> Result<(), SsaError> {
        let now = self.tick();
        let out =
            FieldManager::new(&self.rt).apply(self.obj.as_ref(), &config, manager, force, &now)?;
        self.obj = Some(self.store(out));
        Ok(())
    }

    /// A create, update or non-apply patch whose result is `new`.
    pub fn write(&mut self, new: Value, manager: &str) {
        self.write_through("", new, manager);
    }

    /// The same through a subresource (`status`, `scale`), `new` being the parent object.
    pub fn write_through(&mut self, subresource: &str, new: Value, manager: &str) {
        let now = self.tick();
        // The strategies keep what this endpoint may not change.
        let kept = match subresource {
            "" if self.rt.has_subresource("status") => Some("status"),
            "status" => Some("spec"),
            _ => None,
        };
        let mut new = new;
        if let (Some(key), Some(map)) = (kept, new.as_object_mut()) {
            match self.obj.as_ref().and_then(|o| o.get(key)) {
                Some(v) => map.insert(key.into(), v.clone()),
                None => map.remove(key),
            };
        }
        let mut new = self.store(new);
        let fm = FieldManager::subresource(&self.rt, subresource);
        fm.update(self.obj.as_ref(), &mut new, manager, &now);
        self.obj = Some(new);
    }

    /// What the registry does around field management: typed normalization, server-set
    /// metadata, the status a main-resource write may not change, defaults.
    fn store(&self, mut obj: Value) -> Value {
        if let Some(hooks) = self.rt.typed {
            obj = (hooks.normalize)(obj).expect("valid object");
        }
        let old = self.obj.as_ref();
        let meta = obj["metadata"].as_object_mut().expect("metadata");
        for (key, fallback) in [
            ("uid", "9f3c6a1e-uid"),
            ("creationTimestamp", "2024-05-01T00:00:00Z"),
        ] {
            let value = old
                .and_then(|o| o["metadata"].get(key).cloned())
                .unwrap_or_else(|| json!(fallback));
            meta.insert(key.into(), value);
        }
        if self.rt.namespaced && !meta.contains_key("namespace") {
            meta.insert("namespace".into(), json!("default"));
        }
        crate::defaults::apply(&self.rt.group, &self.rt.kind, &mut obj);
        obj
    }

    /// `(manager, operation, subresource)` of every entry, in stored order.
    pub fn managers(&self) -> Vec<(String, String, String)> {
        entries(self.obj())
            .iter()
            .map(|e| {
                let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                (s("manager"), s("operation"), s("subresource"))
            })
            .collect()
    }

    /// The fieldsV1 of one manager's entry.
    pub fn fields(&self, manager: &str, operation: &str) -> Value {
        entries(self.obj())
            .into_iter()
            .find(|e| e["manager"] == manager && e["operation"] == operation)
            .map(|e| e["fieldsV1"].clone())
            .unwrap_or(Value::Null)
    }

    pub fn entry(&self, manager: &str, operation: &str) -> Value {
        entries(self.obj())
            .into_iter()
            .find(|e| e["manager"] == manager && e["operation"] == operation)
            .unwrap_or(Value::Null)
    }
}

pub(super) fn entries(obj: &Value) -> Vec<Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The nginx Deployment of the Kubernetes docs, as `kubectl apply` sends it.
pub(super) fn nginx(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [
                    {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}
                ]}
            }
        }
    })
}

/// The message of an apply's failure.
pub(super) fn message(err: &SsaError) -> String {
    err.to_api_error().message().to_string()
}
