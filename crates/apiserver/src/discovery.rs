//! API discovery documents: what `kubectl` reads before every command to map kinds and short
//! names to resources.
//!
//! Two formats are served from the same URLs, chosen by the `Accept` header
//! ([`negotiate`]):
//! - legacy (`application/json`): `/api` (`APIVersions`), `/apis` (`APIGroupList`),
//!   `/apis/<group>` (`APIGroup`) and `/api/v1`, `/apis/<group>/<version>` (`APIResourceList`,
//!   with subresources as `deployments/status` entries);
//! - aggregated (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`) for `/api` and `/apis`: the
//!   whole tree in one response, which kubectl 1.30+ asks for first.
//!
//! Everything is computed once per [`Registry`] by [`Discovery::new`] and kept as serialized
//! [`Document`]s, so serving is a clone of `Bytes`.

use std::collections::BTreeMap;

use apimachinery::registry::{GroupInfo, Registry, ResourceType};
use base64::Engine;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::resource_metrics;

/// Content type of legacy discovery and of every other JSON response.
///
/// kubectl 1.27/1.28 compare the response `Content-Type` of `/api` and `/apis` to this string
/// exactly (client-go `downloadLegacy`/`downloadAPIs` switch on it), so it must carry no
/// `charset` or other parameter.
pub const LEGACY_CONTENT_TYPE: &str = "application/json";

/// Content type of aggregated discovery v2. client-go (1.30+) only treats a response as
/// aggregated when its `Content-Type` carries these `g`/`v`/`as` parameters; otherwise it
/// decodes the body as legacy discovery and finds nothing.
pub const AGGREGATED_V2_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// A serialized response body with a content hash for `ETag`/`If-None-Match`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    body: Bytes,
    hash: String,
}

impl Document {
    /// Serializes `value` once and hashes the bytes.
    pub fn from_json(value: &Value) -> Self {
        Self::from_bytes(Bytes::from(value.to_string()))
    }

    pub fn from_bytes(body: Bytes) -> Self {
        let hash = content_hash(&body);
        Document { body, hash }
    }

    /// The body; cloning `Bytes` is a reference-count bump.
    pub fn body(&self) -> Bytes {
        self.body.clone()
    }

    /// Uppercase hex hash of the body; changes whenever the body does.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The `ETag` header value (the hash in double quotes, as upstream sends it).
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.hash)
    }

    /// Whether a request's `If-None-Match` names this document, so a `304 Not Modified`
    /// may be sent instead of the body (upstream compares the quoted hash exactly).
    pub fn matches(&self, if_none_match: Option<&str>) -> bool {
        if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == self.etag()))
    }
}

/// A stable 128-bit FNV-1a hash of `bytes` as 32 uppercase hex digits.
///
/// Upstream uses SHA-512; clients treat the value as opaque, so any hash that changes with the
/// content and is the same across restarts and replicas will do.
pub fn content_hash(bytes: &[u8]) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013B;
    let h = bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME));
    format!("{h:032X}")
}

/// Which discovery format a request asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoveryFormat {
    Legacy,
    AggregatedV2,
}

impl DiscoveryFormat {
    /// The exact `Content-Type` the response must carry.
    pub fn content_type(self) -> &'static str {
        match self {
            DiscoveryFormat::Legacy => LEGACY_CONTENT_TYPE,
            DiscoveryFormat::AggregatedV2 => AGGREGATED_V2_CONTENT_TYPE,
        }
    }
}

/// Chooses the discovery format for a request's `Accept` header.
///
/// Mirrors upstream's negotiation: media ranges in order of `q` (then of appearance); an
/// `application/json` range with `g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList` selects
/// aggregated v2; plain `application/json`, `application/*` or `*/*` select legacy. Ranges we
/// cannot serve are skipped: protobuf, and `v=v2beta1`, which upstream 1.33 no longer serves
/// (`AggregatedDiscoveryRemoveBetaType` defaults to on), so kubectl 1.27–1.29 fall back to
/// legacy discovery exactly as they do against a 1.33 cluster. A missing or empty header
/// means legacy. `None` means nothing acceptable: upstream answers `406 Not Acceptable`.
pub fn negotiate(accept: Option<&str>) -> Option<DiscoveryFormat> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(DiscoveryFormat::Legacy);
    };
    let mut best: Option<(f32, DiscoveryFormat)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let mut q = 1.0_f32;
        let (mut g, mut v, mut as_) = (None, None, None);
        for param in parts {
            let Some((k, val)) = param.split_once('=') else {
                continue;
            };
            let val = val.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "q" => q = val.parse().unwrap_or(0.0),
                "g" => g = Some(val.to_string()),
                "v" => v = Some(val.to_string()),
                "as" => as_ = Some(val.to_string()),
                _ => {}
            }
        }
        if q <= 0.0 {
            continue;
        }
        let format = match (media.as_str(), g.as_deref(), v.as_deref(), as_.as_deref()) {
            (
                "application/json",
                Some("apidiscovery.k8s.io"),
                Some("v2"),
                Some("APIGroupDiscoveryList"),
            ) => DiscoveryFormat::AggregatedV2,
            ("application/json" | "application/*" | "*/*", None, None, None) => {
                DiscoveryFormat::Legacy
            }
            _ => continue,
        };
        // Strictly greater: among equal weights the first listed wins.
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, format));
        }
    }
    best.map(|(_, f)| f)
}

/// Every discovery document of one registry, serialized.
#[derive(Clone, Debug)]
pub struct Discovery {
    api_versions: Document,
    group_list: Document,
    groups: BTreeMap<String, Document>,
    /// Keyed by group version: `v1`, `apps/v1`.
    resource_lists: BTreeMap<String, Document>,
    aggregated_core: Document,
    aggregated_apis: Document,
}

impl Discovery {
    /// Builds every document. `server_address` (`host:port`) is what `/api` advertises in
    /// `serverAddressByClientCIDRs`. Call again when the registry changes (CRDs).
    pub fn new(registry: &Registry, server_address: &str) -> Self {
        let mut groups = registry.groups();
        let mut resource_lists = BTreeMap::new();
        for g in &groups {
            for v in &g.versions {
                let doc = api_resource_list(registry, &g.name, v);
                resource_lists.insert(group_version(&g.name, v), Document::from_json(&doc));
            }
        }
        // metrics.k8s.io is served outside the registry (nothing of it is stored); it is
        // listed after the built-in groups, where upstream's aggregator lists
        // metrics-server's APIService.
        let metrics = resource_metrics::group_info();
        resource_lists.insert(
            group_version(resource_metrics::GROUP, resource_metrics::VERSION),
            Document::from_json(&resource_metrics::api_resource_list()),
        );
        let mut group_list = api_group_list(registry);
        if let Some(list) = group_list["groups"].as_array_mut() {
            list.push(group_entry(&metrics));
        }
        let mut aggregated_apis = aggregated(registry, false);
        if let Some(items) = aggregated_apis["items"].as_array_mut() {
            items.push(resource_metrics::aggregated_group());
        }
        groups.push(metrics);
        Discovery {
            api_versions: Document::from_json(&api_versions(registry, server_address)),
            group_list: Document::from_json(&group_list),
            groups: groups
                .iter()
                .filter(|g| !g.name.is_empty())
                .map(|g| (g.name.clone(), Document::from_json(&api_group(g))))
                .collect(),
            resource_lists,
            aggregated_core: Document::from_json(&aggregated(registry, true)),
            aggregated_apis: Document::from_json(&aggregated_apis),
        }
    }

    /// `GET /api`, legacy.
    pub fn api_versions(&self) -> &Document {
        &self.api_versions
    }

    /// `GET /apis`, legacy.
    pub fn api_group_list(&self) -> &Document {
        &self.group_list
    }

    /// `GET /apis/<group>`; `None` for an unknown group (404).
    pub fn api_group(&self, group: &str) -> Option<&Document> {
        self.groups.get(group)
    }

    /// `GET /api/v1` (group `""`) or `GET /apis/<group>/<version>`; `None` if not served.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<&Document> {
        self.resource_lists.get(&group_version(group, version))
    }

    /// `GET /api` with aggregated v2 requested: the core group alone.
    pub fn aggregated_core(&self) -> &Document {
        &self.aggregated_core
    }

    /// `GET /apis` with aggregated v2 requested: every named group.
    pub fn aggregated_apis(&self) -> &Document {
        &self.aggregated_apis
    }
}

/// `v1` or `apps/v1`.
fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

fn version_for_discovery(group: &str, version: &str) -> Value {
    json!({"groupVersion": group_version(group, version), "version": version})
}

/// The `APIVersions` document of `/api`.
pub fn api_versions(registry: &Registry, server_address: &str) -> Value {
    let versions: Vec<String> = registry
        .groups()
        .into_iter()
        .find(|g| g.name.is_empty())
        .map(|g| g.versions)
        .unwrap_or_default();
    json!({
        "kind": "APIVersions",
        "versions": versions,
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    })
}

/// The `APIGroup` document of `/apis/<group>`.
pub fn api_group(group: &GroupInfo) -> Value {
    let mut g = group_entry(group);
    if let Some(obj) = g.as_object_mut() {
        obj.insert("kind".into(), "APIGroup".into());
        obj.insert("apiVersion".into(), "v1".into());
    }
    g
}

fn group_entry(group: &GroupInfo) -> Value {
    let versions: Vec<Value> = group
        .versions
        .iter()
        .map(|v| version_for_discovery(&group.name, v))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": group.name, "versions": versions, "preferredVersion": preferred})
}

/// The `APIGroupList` document of `/apis` (named groups only; core is under `/api`).
pub fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .filter(|g| !g.name.is_empty())
        .map(group_entry)
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The `APIResourceList` of one group version, sorted by name so subresources follow their
/// parent (`deployments`, `deployments/scale`, `deployments/status`) as upstream lists them.
pub fn api_resource_list(registry: &Registry, group: &str, version: &str) -> Value {
    let preferred = preferred_versions(registry);
    let mut resources: Vec<Value> = Vec::new();
    for rt in registry.resources_of(group, version) {
        let mut r = Map::new();
        r.insert("name".into(), rt.plural.clone().into());
        r.insert("singularName".into(), rt.singular.clone().into());
        r.insert("namespaced".into(), rt.namespaced.into());
        r.insert("kind".into(), rt.kind.clone().into());
        r.insert("verbs".into(), json!(rt.verbs));
        if !rt.short_names.is_empty() {
            r.insert("shortNames".into(), json!(rt.short_names));
        }
        if !rt.categories.is_empty() {
            r.insert("categories".into(), json!(rt.categories));
        }
        let storage_version = preferred
            .get(&rt.group)
            .map_or(rt.version.as_str(), String::as_str);
        r.insert(
            "storageVersionHash".into(),
            storage_version_hash(rt, storage_version).into(),
        );
        resources.push(Value::Object(r));
        for sub in &rt.subresources {
            let mut s = Map::new();
            s.insert("name".into(), format!("{}/{}", rt.plural, sub.name).into());
            // Upstream leaves singularName empty for subresources.
            s.insert("singularName".into(), "".into());
            s.insert("namespaced".into(), rt.namespaced.into());
            // group/version appear only when the body kind lives elsewhere (Scale).
            if sub.group != rt.group || sub.version != rt.version {
                s.insert("group".into(), sub.group.clone().into());
                s.insert("version".into(), sub.version.clone().into());
            }
            s.insert("kind".into(), sub.kind.clone().into());
            s.insert("verbs".into(), json!(sub.verbs));
            resources.push(Value::Object(s));
        }
    }
    resources.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut doc = json!({
        "kind": "APIResourceList",
        "groupVersion": group_version(group, version),
        "resources": resources,
    });
    // Upstream's core list carries no apiVersion; named groups say v1.
    if !group.is_empty()
        && let Some(obj) = doc.as_object_mut()
    {
        obj.insert("apiVersion".into(), "v1".into());
    }
    doc
}

/// group → preferred (first) version: the version objects are stored in.
fn preferred_versions(registry: &Registry) -> BTreeMap<String, String> {
    registry
        .groups()
        .into_iter()
        .filter_map(|g| g.versions.first().cloned().map(|v| (g.name, v)))
        .collect()
}

/// Upstream: base64 of the first 8 bytes of a digest of the storage group/version/kind, the
/// same for every served version of a resource. Only its equality matters to clients.
fn storage_version_hash(rt: &ResourceType, storage_version: &str) -> String {
    let key = format!("{}/{}/{}", rt.group, storage_version, rt.kind);
    let digest = content_hash(key.as_bytes());
    let bytes: Vec<u8> = (0..8)
        .filter_map(|i| u8::from_str_radix(digest.get(i * 2..i * 2 + 2)?, 16).ok())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn gvk_json(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

/// The aggregated `APIGroupDiscoveryList`: of the core group only (`/api`) or of every named
/// group (`/apis`). Versions are listed preferred first, which is how client-go picks the
/// preferred version; resources and subresources are sorted by name.
pub fn aggregated(registry: &Registry, core: bool) -> Value {
    let items: Vec<Value> = registry
        .groups()
        .iter()
        .filter(|g| g.name.is_empty() == core)
        .map(|g| {
            let versions: Vec<Value> = g
                .versions
                .iter()
                .map(|v| {
                    let mut resources: Vec<Value> = registry
                        .resources_of(&g.name, v)
                        .map(|rt| aggregated_resource(rt))
                        .collect();
                    resources.sort_by(|a, b| a["resource"].as_str().cmp(&b["resource"].as_str()));
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let metadata = if g.name.is_empty() {
                json!({})
            } else {
                json!({"name": g.name})
            };
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

fn aggregated_resource(rt: &ResourceType) -> Value {
    let mut r = Map::new();
    r.insert("resource".into(), rt.plural.clone().into());
    r.insert(
        "responseKind".into(),
        gvk_json(&rt.group, &rt.version, &rt.kind),
    );
    r.insert(
        "scope".into(),
        if rt.namespaced {
            "Namespaced"
        } else {
            "Cluster"
        }
        .into(),
    );
    r.insert("singularResource".into(), rt.singular.clone().into());
    r.insert("verbs".into(), json!(rt.verbs));
    if !rt.short_names.is_empty() {
        r.insert("shortNames".into(), json!(rt.short_names));
    }
    if !rt.categories.is_empty() {
        r.insert("categories".into(), json!(rt.categories));
    }
    if !rt.subresources.is_empty() {
        let mut subs: Vec<&_> = rt.subresources.iter().collect();
        subs.sort_by(|a, b| a.name.cmp(&b.name));
        let subs: Vec<Value> = subs
            .into_iter()
            .map(|s| {
                // client-go drops a subresource without responseKind, so it is always set.
                json!({
                    "subresource": s.name,
                    "responseKind": gvk_json(&s.group, &s.version, &s.kind),
                    "verbs": s.verbs,
                })
            })
            .collect();
        r.insert("subresources".into(), Value::Array(subs));
    }
    Value::Object(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
        list.as_array()
            .and_then(|a| a.iter().find(|x| x[key] == name))
            .unwrap_or(&Value::Null)
    }

    #[test]
    fn negotiate_picks_v2_for_kubectl_1_33_accept() {
        let accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,\
                      application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,\
                      application/json";
        assert_eq!(negotiate(Some(accept)), Some(DiscoveryFormat::AggregatedV2));
        assert_eq!(
            DiscoveryFormat::AggregatedV2.content_type(),
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
    }

    #[test]
    fn negotiate_falls_back_to_legacy_for_kubectl_1_27_accept() {
        let accept = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(Some(accept)), Some(DiscoveryFormat::Legacy));
        assert_eq!(negotiate(None), Some(DiscoveryFormat::Legacy));
        assert_eq!(negotiate(Some("*/*")), Some(DiscoveryFormat::Legacy));
        assert_eq!(DiscoveryFormat::Legacy.content_type(), "application/json");
    }

    #[test]
    fn negotiate_honours_q_and_rejects_unservable() {
        let accept = "application/json;q=0.5, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
        assert_eq!(negotiate(Some(accept)), Some(DiscoveryFormat::AggregatedV2));
        assert_eq!(negotiate(Some("application/vnd.kubernetes.protobuf")), None);
        assert_eq!(negotiate(Some("application/json;q=0")), None);
    }

    #[test]
    fn aggregated_lists_deployments_with_short_names_and_subresources() {
        let doc = aggregated(&Registry::builtin(), false);
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
        let apps = doc["items"]
            .as_array()
            .and_then(|a| a.iter().find(|g| g["metadata"]["name"] == "apps"))
            .expect("apps group");
        let v1 = &apps["versions"][0];
        assert_eq!(v1["version"], "v1");
        assert_eq!(v1["freshness"], "Current");
        let d = find(&v1["resources"], "resource", "deployments");
        assert_eq!(
            d["responseKind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        assert_eq!(d["scope"], "Namespaced");
        assert_eq!(d["singularResource"], "deployment");
        assert_eq!(d["shortNames"], json!(["deploy"]));
        assert_eq!(d["categories"], json!(["all"]));
        let status = find(&d["subresources"], "subresource", "status");
        assert_eq!(status["responseKind"]["kind"], "Deployment");
        assert_eq!(status["verbs"], json!(["get", "patch", "update"]));
    }

    #[test]
    fn aggregated_core_has_one_unnamed_group_and_preferred_version_first() {
        let r = Registry::builtin();
        let core = aggregated(&r, true);
        let items = core["items"].as_array().expect("items");
        assert_eq!(items.len(), 1);
        assert!(items[0]["metadata"].get("name").is_none());
        let pods = find(&items[0]["versions"][0]["resources"], "resource", "pods");
        assert_eq!(pods["responseKind"]["group"], "");
        let nodes = find(&items[0]["versions"][0]["resources"], "resource", "nodes");
        assert_eq!(nodes["scope"], "Cluster");
        let apis = aggregated(&r, false);
        let hpa = apis["items"]
            .as_array()
            .and_then(|a| a.iter().find(|g| g["metadata"]["name"] == "autoscaling"))
            .expect("autoscaling");
        assert_eq!(hpa["versions"][0]["version"], "v2");
    }

    #[test]
    fn legacy_documents_have_upstream_shape() {
        let r = Registry::builtin();
        let api = api_versions(&r, "10.0.0.1:6443");
        assert_eq!(api["versions"], json!(["v1"]));
        assert_eq!(
            api["serverAddressByClientCIDRs"][0]["serverAddress"],
            "10.0.0.1:6443"
        );
        let groups = api_group_list(&r);
        let autoscaling = find(&groups["groups"], "name", "autoscaling");
        assert_eq!(
            autoscaling["preferredVersion"]["groupVersion"],
            "autoscaling/v2"
        );
        assert!(find(&groups["groups"], "name", "").is_null());

        let apps = api_resource_list(&r, "apps", "v1");
        assert_eq!(apps["groupVersion"], "apps/v1");
        let names: Vec<&str> = apps["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .filter_map(|x| x["name"].as_str())
            .collect();
        let d = names
            .iter()
            .position(|n| *n == "deployments")
            .expect("deployments");
        // Subresources follow their resource in name order, as upstream lists them.
        assert_eq!(
            names[d + 1..d + 3],
            ["deployments/scale", "deployments/status"]
        );
        let dep = find(&apps["resources"], "name", "deployments");
        assert_eq!(dep["shortNames"], json!(["deploy"]));
        assert!(
            dep["storageVersionHash"]
                .as_str()
                .is_some_and(|h| !h.is_empty())
        );
        let status = find(&apps["resources"], "name", "deployments/status");
        assert_eq!(status["kind"], "Deployment");
        assert!(status.get("group").is_none());
    }

    #[test]
    fn storage_version_hash_is_shared_across_versions() {
        let r = Registry::builtin();
        let v1 = api_resource_list(&r, "autoscaling", "v1");
        let v2 = api_resource_list(&r, "autoscaling", "v2");
        let h1 = &find(&v1["resources"], "name", "horizontalpodautoscalers")["storageVersionHash"];
        let h2 = &find(&v2["resources"], "name", "horizontalpodautoscalers")["storageVersionHash"];
        assert_eq!(h1, h2);
    }

    #[test]
    fn metrics_api_is_discoverable_in_both_formats() {
        let d = Discovery::new(&Registry::builtin(), "127.0.0.1:6443");
        let json = |doc: &Document| -> Value { serde_json::from_slice(&doc.body()).expect("json") };
        let groups = json(d.api_group_list());
        let metrics = find(&groups["groups"], "name", "metrics.k8s.io");
        assert_eq!(
            metrics["preferredVersion"]["groupVersion"],
            "metrics.k8s.io/v1beta1"
        );
        let agg = json(d.aggregated_apis());
        let item = agg["items"]
            .as_array()
            .and_then(|a| a.iter().find(|g| g["metadata"]["name"] == "metrics.k8s.io"))
            .expect("metrics group");
        let pods = find(&item["versions"][0]["resources"], "resource", "pods");
        assert_eq!(pods["responseKind"]["kind"], "PodMetrics");
        let list = json(
            d.resource_list("metrics.k8s.io", "v1beta1")
                .expect("resource list"),
        );
        assert_eq!(
            find(&list["resources"], "name", "nodes")["kind"],
            "NodeMetrics"
        );
        assert!(d.api_group("metrics.k8s.io").is_some());
    }

    #[test]
    fn documents_are_cached_with_etags() {
        let d = Discovery::new(&Registry::builtin(), "127.0.0.1:6443");
        let doc = d.aggregated_apis();
        assert!(doc.matches(Some(&doc.etag())));
        assert!(!doc.matches(Some("\"other\"")));
        assert!(!doc.matches(None));
        assert!(d.resource_list("", "v1").is_some());
        assert!(d.resource_list("apps", "v1").is_some());
        assert!(d.resource_list("apps", "v2").is_none());
        assert!(d.api_group("apps").is_some());
        let v: Value = serde_json::from_slice(&d.api_versions().body()).expect("json");
        assert_eq!(v["kind"], "APIVersions");
        assert_ne!(d.aggregated_core().hash(), d.aggregated_apis().hash());
    }
}
