//! The resource registry: every resource the API server serves, with what discovery,
//! routing, storage and OpenAPI need to know about it.
//!
//! Built-in kinds come from k8s-openapi types (never hand-written); custom resources are
//! added at run time from CustomResourceDefinitions through [`Registry::with_custom`].

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::{
    admissionregistration, apps, autoscaling, batch, certificates, coordination, core, discovery,
    events, networking, node, policy, rbac, scheduling, storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::{ClusterResourceScope, ListableResource, NamespaceResourceScope};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

/// The verbs of an ordinary read-write resource, in upstream's discovery order.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Typed behaviour a built-in kind gets from its k8s-openapi struct.
pub struct TypedHooks {
    /// Decodes into the typed struct and encodes back: rejects wrong field types, drops
    /// unknown fields and gives the canonical field order.
    pub normalize: fn(Value) -> Result<Value, serde_json::Error>,
    /// The kind's JSON schema (with `#/…` references into the generator's definitions).
    pub schema: fn(&mut SchemaGenerator) -> Schema,
    /// The canonical OpenAPI definition name, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub schema_name: fn() -> std::borrow::Cow<'static, str>,
}

/// A subresource served under `…/{name}/{subresource}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subresource {
    pub name: String,
    /// Kind of the subresource's body (`Scale` for `scale`; the parent kind for `status`).
    pub group: String,
    pub version: String,
    pub kind: String,
    pub verbs: Vec<String>,
}

/// One served group/version/resource.
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    /// URL segment, e.g. `deployments`.
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<String>,
    pub subresources: Vec<Subresource>,
    /// Upstream sets `metadata.generation` and bumps it on spec changes for this kind.
    pub tracks_generation: bool,
    /// `None` for custom resources.
    pub typed: Option<&'static TypedHooks>,
    /// The `openAPIV3Schema` of a custom resource version.
    pub custom_schema: Option<Value>,
    /// A custom resource version's `additionalPrinterColumns`, as stored in its CRD.
    pub printer_columns: Option<Value>,
}

impl std::fmt::Debug for ResourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} {}", self.group, self.version, self.plural)
    }
}

impl ResourceType {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The store key prefix (with trailing slash) for all objects of this resource:
    /// `/registry/pods/`, `/registry/apps/deployments/`. Versions of one group share it.
    pub fn storage_prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/registry/{}/", self.plural)
        } else {
            format!("/registry/{}/{}/", self.group, self.plural)
        }
    }

    /// The store key of one object.
    pub fn storage_key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/{name}", self.storage_prefix()),
            _ => format!("{}{name}", self.storage_prefix()),
        }
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.iter().any(|s| s.name == name)
    }

    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

/// The storage prefix a key belongs to (the inverse of [`ResourceType::storage_key`]):
/// `/registry/pods/ns/x` → `/registry/pods/`, `/registry/apps/deployments/ns/x` →
/// `/registry/apps/deployments/`. Core resource names never contain a dot and never equal
/// one of the dotless built-in group names, so the first segment tells which shape a key has.
pub fn storage_prefix_of_key(key: &str) -> Option<&str> {
    const DOTLESS_GROUPS: &[&str] = &["apps", "autoscaling", "batch", "policy"];
    let rest = key.strip_prefix("/registry/")?;
    let first = rest.split('/').next()?;
    let end = if first.contains('.') || DOTLESS_GROUPS.contains(&first) {
        let second = rest[first.len() + 1..].split('/').next()?;
        first.len() + 1 + second.len()
    } else {
        first.len()
    };
    let total = "/registry/".len() + end + 1;
    (key.len() > total && !rest[..end].ends_with('/')).then(|| &key[..total])
}

/// Whether a k8s-openapi scope type is namespaced.
trait ScopeKind {
    const NAMESPACED: bool;
}
impl ScopeKind for NamespaceResourceScope {
    const NAMESPACED: bool = true;
}
impl ScopeKind for ClusterResourceScope {
    const NAMESPACED: bool = false;
}

fn normalize<T: DeserializeOwned + Serialize>(v: Value) -> Result<Value, serde_json::Error> {
    let typed = T::deserialize(&v)?;
    let mut out = serde_json::to_value(&typed)?;
    prune_added_defaults(&v, &mut out, true);
    Ok(out)
}

/// k8s-openapi gives fields that are required in the schema a non-optional Rust type, so a
/// round trip turns a *missing* required field into an empty one (`selector: {}`,
/// `name: ""`). Upstream's Go types keep it missing, and validation must see it missing
/// (`spec.selector: Required value`, not "empty selector"). So empty values the round trip
/// added where the input had nothing are removed again. So are the `apiVersion`/`kind` it
/// writes into embedded objects (a StatefulSet's `volumeClaimTemplates`): Go keeps an
/// embedded object's type fields as sent, and `kubectl apply` would otherwise see a change
/// on every run.
fn prune_added_defaults(input: &Value, out: &mut Value, root: bool) {
    match (input, out) {
        (Value::Object(i), Value::Object(o)) => {
            o.retain(|k, v| {
                i.contains_key(k)
                    || (!is_empty_value(v) && (root || (k != "apiVersion" && k != "kind")))
            });
            for (k, v) in o.iter_mut() {
                if let Some(iv) = i.get(k) {
                    prune_added_defaults(iv, v, false);
                }
            }
        }
        (Value::Array(i), Value::Array(o)) if i.len() == o.len() => {
            for (iv, ov) in i.iter().zip(o.iter_mut()) {
                prune_added_defaults(iv, ov, false);
            }
        }
        _ => {}
    }
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

struct Hooks<T>(std::marker::PhantomData<T>);
impl<T: DeserializeOwned + Serialize + JsonSchema> Hooks<T> {
    const HOOKS: TypedHooks = TypedHooks {
        normalize: normalize::<T>,
        schema: T::json_schema,
        schema_name: T::schema_name,
    };
}

const STATUS: u8 = 1;
const GENERATION: u8 = 2;
/// Upstream serves no `deletecollection` for this resource.
const NO_DELETECOLLECTION: u8 = 4;
/// The `scale` subresource (autoscaling/v1 Scale).
const SCALE: u8 = 8;
/// Pods' `binding`, `eviction`, `log`, `ephemeralcontainers`, `attach`, `exec` and
/// `portforward` subresources.
const POD_SUBRESOURCES: u8 = 16;
/// Namespaces' `finalize` subresource (the namespace controller's way to drop `kubernetes`).
const FINALIZE: u8 = 32;

fn typed<T>(short: &[&str], categories: &[&str], flags: u8) -> ResourceType
where
    T: ListableResource + DeserializeOwned + Serialize + JsonSchema + 'static,
    T::Scope: ScopeKind,
{
    let verbs = ALL_VERBS
        .iter()
        .filter(|v| flags & NO_DELETECOLLECTION == 0 || **v != "deletecollection")
        .map(|v| v.to_string())
        .collect();
    let mut subresources = Vec::new();
    if flags & STATUS != 0 {
        subresources.push(Subresource {
            name: "status".into(),
            group: T::GROUP.into(),
            version: T::VERSION.into(),
            kind: T::KIND.into(),
            verbs: vec!["get".into(), "patch".into(), "update".into()],
        });
    }
    let sub = |name: &str, group: &str, version: &str, kind: &str, verbs: &[&str]| Subresource {
        name: name.into(),
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
    };
    if flags & SCALE != 0 {
        subresources.push(sub(
            "scale",
            "autoscaling",
            "v1",
            "Scale",
            &["get", "patch", "update"],
        ));
    }
    if flags & POD_SUBRESOURCES != 0 {
        subresources.push(sub("binding", "", "v1", "Binding", &["create"]));
        subresources.push(sub("eviction", "policy", "v1", "Eviction", &["create"]));
        // Upstream's log REST names Pod as its kind; the body is the log text.
        subresources.push(sub("log", "", "v1", "Pod", &["get"]));
        // Adds ephemeral containers; the body is the whole Pod.
        subresources.push(sub(
            "ephemeralcontainers",
            "",
            "v1",
            "Pod",
            &["get", "patch", "update"],
        ));
        // Connect subresources: a client upgrades to WebSocket or SPDY (GET or POST).
        for (name, kind) in [
            ("attach", "PodAttachOptions"),
            ("exec", "PodExecOptions"),
            ("portforward", "PodPortForwardOptions"),
        ] {
            subresources.push(sub(name, "", "v1", kind, &["create", "get"]));
        }
    }
    if flags & FINALIZE != 0 {
        subresources.push(sub("finalize", T::GROUP, T::VERSION, T::KIND, &["update"]));
    }
    subresources.sort_by(|a, b| a.name.cmp(&b.name));
    ResourceType {
        group: T::GROUP.into(),
        version: T::VERSION.into(),
        kind: T::KIND.into(),
        list_kind: T::LIST_KIND.into(),
        plural: T::URL_PATH_SEGMENT.into(),
        singular: T::KIND.to_lowercase(),
        namespaced: T::Scope::NAMESPACED,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: categories.iter().map(|s| s.to_string()).collect(),
        verbs,
        subresources,
        tracks_generation: flags & GENERATION != 0,
        typed: Some(&Hooks::<T>::HOOKS),
        custom_schema: None,
        printer_columns: None,
    }
}

/// Every served resource. Cheap to clone (`Arc`s); rebuilt, not mutated, when CRDs change.
#[derive(Clone)]
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
    /// (group, version, plural) → index into `types`.
    by_gvr: BTreeMap<(String, String, String), usize>,
}

/// One API group as discovery shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    pub name: String,
    /// Versions, preferred first.
    pub versions: Vec<String>,
}

impl Registry {
    /// The built-in resources of Kubernetes 1.33 that rkube serves.
    pub fn builtin() -> Self {
        const ALL: &[&str] = &["all"];
        const EXT: &[&str] = &["api-extensions"];
        const S: u8 = STATUS;
        const SG: u8 = STATUS | GENERATION;
        let types = vec![
            // core/v1
            typed::<core::v1::ConfigMap>(&["cm"], &[], 0),
            typed::<core::v1::Endpoints>(&["ep"], &[], 0),
            typed::<core::v1::Event>(&["ev"], &[], 0),
            typed::<core::v1::LimitRange>(&["limits"], &[], 0),
            typed::<core::v1::Namespace>(&["ns"], &[], S | NO_DELETECOLLECTION | FINALIZE),
            typed::<core::v1::Node>(&["no"], &[], S),
            typed::<core::v1::PersistentVolumeClaim>(&["pvc"], &[], S),
            typed::<core::v1::PersistentVolume>(&["pv"], &[], S),
            typed::<core::v1::Pod>(&["po"], ALL, SG | POD_SUBRESOURCES),
            typed::<core::v1::PodTemplate>(&[], &[], 0),
            typed::<core::v1::ReplicationController>(&["rc"], ALL, SG | SCALE),
            typed::<core::v1::ResourceQuota>(&["quota"], &[], S),
            typed::<core::v1::Secret>(&[], &[], 0),
            typed::<core::v1::ServiceAccount>(&["sa"], &[], 0),
            typed::<core::v1::Service>(&["svc"], ALL, S | NO_DELETECOLLECTION),
            // admissionregistration.k8s.io/v1
            typed::<admissionregistration::v1::MutatingWebhookConfiguration>(&[], EXT, GENERATION),
            typed::<admissionregistration::v1::ValidatingAdmissionPolicy>(&[], EXT, SG),
            typed::<admissionregistration::v1::ValidatingAdmissionPolicyBinding>(
                &[],
                EXT,
                GENERATION,
            ),
            typed::<admissionregistration::v1::ValidatingWebhookConfiguration>(
                &[],
                EXT,
                GENERATION,
            ),
            // apiextensions.k8s.io/v1
            typed::<apiextensions::CustomResourceDefinition>(&["crd", "crds"], EXT, SG),
            // apps/v1
            typed::<apps::v1::ControllerRevision>(&[], &[], 0),
            typed::<apps::v1::DaemonSet>(&["ds"], ALL, SG),
            typed::<apps::v1::Deployment>(&["deploy"], ALL, SG | SCALE),
            typed::<apps::v1::ReplicaSet>(&["rs"], ALL, SG | SCALE),
            typed::<apps::v1::StatefulSet>(&["sts"], ALL, SG | SCALE),
            // autoscaling: v2 is preferred, so it is listed first.
            typed::<autoscaling::v2::HorizontalPodAutoscaler>(&["hpa"], ALL, SG),
            typed::<autoscaling::v1::HorizontalPodAutoscaler>(&["hpa"], ALL, SG),
            // batch/v1
            typed::<batch::v1::CronJob>(&["cj"], ALL, SG),
            typed::<batch::v1::Job>(&[], ALL, SG),
            // certificates.k8s.io/v1
            typed::<certificates::v1::CertificateSigningRequest>(&["csr"], &[], S),
            // coordination.k8s.io/v1
            typed::<coordination::v1::Lease>(&[], &[], 0),
            // discovery.k8s.io/v1
            typed::<discovery::v1::EndpointSlice>(&[], &[], 0),
            // events.k8s.io/v1
            typed::<events::v1::Event>(&["ev"], &[], 0),
            // networking.k8s.io/v1
            typed::<networking::v1::IPAddress>(&["ip"], &[], 0),
            typed::<networking::v1::IngressClass>(&[], &[], 0),
            typed::<networking::v1::Ingress>(&["ing"], &[], SG),
            typed::<networking::v1::NetworkPolicy>(&["netpol"], &[], GENERATION),
            typed::<networking::v1::ServiceCIDR>(&[], &[], S),
            // node.k8s.io/v1
            typed::<node::v1::RuntimeClass>(&[], &[], 0),
            // policy/v1
            typed::<policy::v1::PodDisruptionBudget>(&["pdb"], &[], SG),
            // rbac.authorization.k8s.io/v1
            typed::<rbac::v1::ClusterRoleBinding>(&[], &[], 0),
            typed::<rbac::v1::ClusterRole>(&[], &[], 0),
            typed::<rbac::v1::RoleBinding>(&[], &[], 0),
            typed::<rbac::v1::Role>(&[], &[], 0),
            // scheduling.k8s.io/v1
            typed::<scheduling::v1::PriorityClass>(&["pc"], &[], 0),
            // storage.k8s.io/v1
            typed::<storage::v1::CSIDriver>(&[], &[], 0),
            typed::<storage::v1::CSINode>(&[], &[], 0),
            typed::<storage::v1::CSIStorageCapacity>(&[], &[], 0),
            typed::<storage::v1::StorageClass>(&["sc"], &[], 0),
            typed::<storage::v1::VolumeAttachment>(&[], &[], S),
        ];
        Self::from_types(types.into_iter().map(Arc::new).collect())
    }

    fn from_types(types: Vec<Arc<ResourceType>>) -> Self {
        let by_gvr = types
            .iter()
            .enumerate()
            .map(|(i, t)| ((t.group.clone(), t.version.clone(), t.plural.clone()), i))
            .collect();
        Registry { types, by_gvr }
    }

    /// A registry with these custom resources added (replacing any of the same GVR).
    pub fn with_custom(&self, custom: Vec<ResourceType>) -> Self {
        let mut types: Vec<Arc<ResourceType>> = self
            .types
            .iter()
            .filter(|t| t.typed.is_some())
            .cloned()
            .collect();
        types.extend(custom.into_iter().map(Arc::new));
        Self::from_types(types)
    }

    pub fn all(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&Arc<ResourceType>> {
        self.by_gvr
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .map(|&i| &self.types[i])
    }

    /// The resource of a kind in a group/version.
    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<&Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
    }

    /// Groups in discovery order (core first, then by first appearance), versions
    /// preferred first.
    pub fn groups(&self) -> Vec<GroupInfo> {
        let mut groups: Vec<GroupInfo> = Vec::new();
        for t in &self.types {
            match groups.iter_mut().find(|g| g.name == t.group) {
                Some(g) if !g.versions.contains(&t.version) => g.versions.push(t.version.clone()),
                Some(_) => {}
                None => groups.push(GroupInfo {
                    name: t.group.clone(),
                    versions: vec![t.version.clone()],
                }),
            }
        }
        groups
    }

    /// Resources of one group/version.
    pub fn resources_of<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a Arc<ResourceType>> + 'a {
        self.types
            .iter()
            .filter(move |t| t.group == group && t.version == version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_expected_resources() {
        let r = Registry::builtin();
        let pods = r.get("", "v1", "pods").expect("pods");
        assert!(pods.namespaced);
        assert_eq!(pods.kind, "Pod");
        assert_eq!(pods.list_kind, "PodList");
        assert_eq!(
            pods.storage_key(Some("default"), "x"),
            "/registry/pods/default/x"
        );
        let nodes = r.get("", "v1", "nodes").expect("nodes");
        assert!(!nodes.namespaced);
        assert_eq!(nodes.storage_key(None, "n1"), "/registry/nodes/n1");
        let d = r.get("apps", "v1", "deployments").expect("deployments");
        assert_eq!(
            d.storage_key(Some("ns"), "web"),
            "/registry/apps/deployments/ns/web"
        );
        assert!(d.tracks_generation);
        assert!(d.has_subresource("status"));
        for t in r.all() {
            let key = t.storage_key(Some("ns"), "name");
            assert_eq!(
                storage_prefix_of_key(&key),
                Some(t.storage_prefix().as_str())
            );
        }
        assert_eq!(
            storage_prefix_of_key("/registry/example.com/dbs/ns/x"),
            Some("/registry/example.com/dbs/")
        );
        assert_eq!(storage_prefix_of_key("/registry/pods/"), None);
        let hpa = r
            .groups()
            .into_iter()
            .find(|g| g.name == "autoscaling")
            .expect("autoscaling");
        assert_eq!(hpa.versions, vec!["v2", "v1"]);
    }

    #[test]
    fn normalize_keeps_missing_required_fields_missing() {
        let r = Registry::builtin();
        let d = r.get("apps", "v1", "deployments").expect("deployments");
        let hooks = d.typed.expect("typed");
        let out = (hooks.normalize)(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"},
            "spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}
        }))
        .expect("valid");
        assert!(out["spec"].get("selector").is_none(), "{out}");
        assert!(
            out["spec"]["template"]["spec"]["containers"][0]
                .get("name")
                .is_none(),
            "{out}"
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "x"
        );
    }

    #[test]
    fn normalize_drops_unknown_fields_and_rejects_bad_types() {
        let r = Registry::builtin();
        let cm = r.get("", "v1", "configmaps").expect("configmaps");
        let hooks = cm.typed.expect("typed");
        let out = (hooks.normalize)(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a"}, "data": {"k": "v"}, "bogus": 1
        }))
        .expect("valid");
        assert!(out.get("bogus").is_none());
        assert_eq!(out["data"]["k"], "v");
        assert!(
            (hooks.normalize)(serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": 5
            }))
            .is_err()
        );
    }
}
