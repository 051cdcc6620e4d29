//! Per-kind rules every write applies before validation (upstream's `PrepareForCreate` /
//! `PrepareForUpdate` and `BeforeCreate` / `BeforeUpdate`): server-set metadata, the
//! spec/status split of kinds with a status subresource, generation, initial status.

use std::collections::BTreeSet;

use apimachinery::registry::ResourceType;
use serde_json::{Value, json};

use crate::objects::{self, meta_mut};

/// A Secret's `stringData` is write-only: each entry becomes the base64 `data` entry of
/// its key, overriding one there (upstream does it converting v1 to the internal type).
fn fold_string_data(rt: &ResourceType, obj: &mut Value) {
    use base64::Engine;
    if !(rt.group.is_empty() && rt.kind == "Secret") {
        return;
    }
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let Some(Value::Object(strings)) = map.remove("stringData") else {
        return;
    };
    let data = map.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    for (k, v) in strings {
        let text = v.as_str().unwrap_or_default();
        data[k] = Value::String(base64::engine::general_purpose::STANDARD.encode(text));
    }
}

/// Prepares a new object: system metadata and the kind's initial status.
pub fn prepare_for_create(rt: &ResourceType, obj: &mut Value) {
    fold_string_data(rt, obj);
    let meta = meta_mut(obj);
    meta.insert("uid".into(), Value::String(objects::new_uid()));
    meta.insert("creationTimestamp".into(), Value::String(objects::now()));
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(field);
    }
    if rt.tracks_generation {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    if rt.has_subresource("status") {
        initial_status(rt, obj);
    }
}

/// What a create may say about status: upstream resets it for every kind with a status
/// subresource except nodes (kubelets register with their status), then fills a few in.
fn initial_status(rt: &ResourceType, obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Node") => {}
        ("", "Namespace") => {
            map.insert("status".into(), json!({"phase": "Active"}));
            let spec = map.entry("spec").or_insert_with(|| json!({}));
            if spec.get("finalizers").is_none() {
                spec["finalizers"] = json!(["kubernetes"]);
            }
        }
        ("", "Pod") => {
            let qos = qos_class(map.get("spec"));
            map.insert(
                "status".into(),
                json!({"phase": "Pending", "qosClass": qos}),
            );
        }
        ("", "PersistentVolume" | "PersistentVolumeClaim") => {
            map.insert("status".into(), json!({"phase": "Pending"}));
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            // Names are accepted and the API served as soon as the CRD is stored, so the
            // conditions `kubectl wait --for condition=established` looks for hold at once.
            let mut accepted = map
                .get("spec")
                .and_then(|s| s.get("names"))
                .cloned()
                .unwrap_or_else(|| json!({}));
            if accepted.get("singular").is_none()
                && let Some(kind) = accepted.get("kind").and_then(Value::as_str)
            {
                accepted["singular"] = json!(kind.to_lowercase());
            }
            if accepted.get("listKind").is_none()
                && let Some(kind) = accepted.get("kind").and_then(Value::as_str)
            {
                accepted["listKind"] = json!(format!("{kind}List"));
            }
            let now = objects::now();
            let stored: Vec<Value> = map
                .get("spec")
                .and_then(|s| s.get("versions"))
                .and_then(Value::as_array)
                .map(|vs| {
                    vs.iter()
                        .filter(|v| v["storage"] == json!(true))
                        .filter_map(|v| v.get("name").cloned())
                        .collect()
                })
                .unwrap_or_default();
            map.insert(
                "status".into(),
                json!({
                    "acceptedNames": accepted,
                    "storedVersions": stored,
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                         "message": "no conflicts found", "lastTransitionTime": now},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                         "message": "the initial names have been accepted", "lastTransitionTime": now},
                    ],
                }),
            );
        }
        ("", "Service") => {
            map.insert("status".into(), json!({"loadBalancer": {}}));
        }
        _ => {
            map.insert("status".into(), json!({}));
        }
    }
}

/// Upstream's pod QoS class: Guaranteed when every container limits cpu and memory with
/// requests equal to limits, BestEffort when nothing requests or limits anything.
pub fn qos_class(spec: Option<&Value>) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|f| spec.and_then(|s| s.get(*f)).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        let relevant = |m: Option<&serde_json::Map<String, Value>>| {
            m.map(|m| m.keys().any(|k| k == "cpu" || k == "memory"))
                .unwrap_or(false)
        };
        any |= relevant(requests) || relevant(limits);
        for res in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(res));
            let request = requests.and_then(|r| r.get(res)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Prepares an update of `old` to `new`. For the main resource the status is kept from
/// `old`; for the `status` subresource everything but status is. Fields the server owns
/// are carried over; generation grows when the spec changes.
pub fn prepare_for_update(
    rt: &ResourceType,
    new: &mut Value,
    old: &Value,
    subresource: Option<&str>,
) {
    if subresource == Some("finalize") {
        // Upstream's finalize strategy: only `spec.finalizers` changes through it.
        let finalizers = new["spec"].get("finalizers").cloned();
        let rv = new["metadata"].get("resourceVersion").cloned();
        *new = old.clone();
        match finalizers {
            Some(f) => new["spec"]["finalizers"] = f,
            None => {
                if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove("finalizers");
                }
            }
        }
        let meta = meta_mut(new);
        match rv {
            Some(rv) => meta.insert("resourceVersion".into(), rv),
            None => meta.remove("resourceVersion"),
        };
        return;
    }
    if subresource == Some("ephemeralcontainers") {
        keep_only_ephemeral_containers(rt, new, old);
        return;
    }
    if subresource == Some("status") {
        let status = new.get("status").cloned();
        let rv = new["metadata"].get("resourceVersion").cloned();
        *new = old.clone();
        match status {
            Some(s) => new["status"] = s,
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        let meta = meta_mut(new);
        match rv {
            Some(rv) => meta.insert("resourceVersion".into(), rv),
            None => meta.remove("resourceVersion"),
        };
        return;
    }
    fold_string_data(rt, new);
    if rt.has_subresource("status")
        && let Some(m) = new.as_object_mut()
    {
        match old.get("status") {
            Some(s) => m.insert("status".into(), s.clone()),
            None => m.remove("status"),
        };
    }
    if rt.group.is_empty() && rt.kind == "Service" {
        drop_type_dependent_fields(new, old);
        carry_allocated(new, old);
    }
    let old_meta = &old["metadata"];
    let spec_changed = !objects::spec_equal(new, old);
    let meta = meta_mut(new);
    for field in [
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.get(field) {
            Some(v) => meta.insert(field.into(), v.clone()),
            None => meta.remove(field),
        };
    }
    if meta
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
        && let Some(uid) = old_meta.get("uid")
    {
        meta.insert("uid".into(), uid.clone());
    }
    meta.remove("selfLink");
    if rt.tracks_generation && spec_changed {
        let generation = old_meta["generation"].as_i64().unwrap_or(0) + 1;
        meta.insert("generation".into(), json!(generation));
    }
}

/// Upstream's ephemeral containers strategy: of the request only `spec.ephemeralContainers`,
/// the uid (when given) and the resourceVersion count; everything else is the stored pod's.
/// The generation grows when the containers changed, as for any pod spec change.
fn keep_only_ephemeral_containers(rt: &ResourceType, new: &mut Value, old: &Value) {
    let containers = new["spec"].get("ephemeralContainers").cloned();
    let uid = new["metadata"]
        .get("uid")
        .filter(|u| u.as_str().is_some_and(|u| !u.is_empty()))
        .cloned();
    let rv = new["metadata"].get("resourceVersion").cloned();
    *new = old.clone();
    match containers {
        Some(c) => new["spec"]["ephemeralContainers"] = c,
        None => {
            if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("ephemeralContainers");
            }
        }
    }
    let spec_changed = !objects::spec_equal(new, old);
    let meta = meta_mut(new);
    if let Some(uid) = uid {
        meta.insert("uid".into(), uid);
    }
    match rv {
        Some(rv) => meta.insert("resourceVersion".into(), rv),
        None => meta.remove("resourceVersion"),
    };
    if rt.tracks_generation && spec_changed {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        meta.insert("generation".into(), json!(generation));
    }
}

/// A Service's `spec.type` (ClusterIP when unset).
fn service_type(svc: &Value) -> &str {
    svc["spec"]["type"].as_str().unwrap_or("ClusterIP")
}

/// Do Services of this type have node ports?
fn has_node_ports(service_type: &str) -> bool {
    matches!(service_type, "NodePort" | "LoadBalancer")
}

/// A Service whose type changes loses the fields only its old type used, when the update
/// left them as they were (upstream's `dropTypeDependentFields`): patching a LoadBalancer to
/// `type: ClusterIP` drops its node ports, `allocateLoadBalancerNodePorts`,
/// `loadBalancerClass`, `externalTrafficPolicy` and `healthCheckNodePort` instead of failing
/// validation on them. A field the update itself changed stays, for validation to judge.
fn drop_type_dependent_fields(new: &mut Value, old: &Value) {
    let (new_type, old_type) = (service_type(new).to_string(), service_type(old));
    let health_check =
        |v: &Value, t: &str| t == "LoadBalancer" && v["spec"]["externalTrafficPolicy"] == "Local";
    let drop_health_check = health_check(old, old_type) && !health_check(new, &new_type);
    let node_port_set = |v: &Value| -> BTreeSet<i64> {
        v["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["nodePort"].as_i64())
            .filter(|n| *n != 0)
            .collect()
    };
    let same_node_ports = node_port_set(new) == node_port_set(old);
    let unchanged: Vec<&str> = [
        "clusterIP",
        "clusterIPs",
        "ipFamilies",
        "ipFamilyPolicy",
        "healthCheckNodePort",
        "allocateLoadBalancerNodePorts",
        "loadBalancerClass",
        "externalTrafficPolicy",
    ]
    .into_iter()
    .filter(|f| new["spec"].get(*f) == old["spec"].get(*f))
    .collect();
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let drop = |spec: &mut serde_json::Map<String, Value>, field: &str| {
        if unchanged.contains(&field) {
            spec.remove(field);
        }
    };
    if old_type != "ExternalName" && new_type == "ExternalName" {
        if unchanged.contains(&"clusterIP") && unchanged.contains(&"clusterIPs") {
            drop(spec, "clusterIP");
            drop(spec, "clusterIPs");
        }
        drop(spec, "ipFamilies");
        drop(spec, "ipFamilyPolicy");
    }
    if drop_health_check {
        drop(spec, "healthCheckNodePort");
    }
    if old_type == "LoadBalancer" && new_type != "LoadBalancer" {
        drop(spec, "allocateLoadBalancerNodePorts");
        drop(spec, "loadBalancerClass");
    }
    if has_node_ports(old_type) && !has_node_ports(&new_type) {
        drop(spec, "externalTrafficPolicy");
        if same_node_ports {
            let ports = spec.get_mut("ports").and_then(Value::as_array_mut);
            for p in ports.into_iter().flatten().filter_map(Value::as_object_mut) {
                p.remove("nodePort");
            }
        }
    }
}

/// An update that leaves out the Service's allocated cluster IP or node ports keeps them
/// (upstream's `patchAllocatedValues`), so re-applying a manifest without them works.
fn carry_allocated(new: &mut Value, old: &Value) {
    if new["spec"]["type"].as_str() == Some("ExternalName") || !new["spec"].is_object() {
        return;
    }
    if new["spec"]["clusterIP"].as_str().unwrap_or("").is_empty()
        && let Some(ip) = old["spec"]
            .get("clusterIP")
            .filter(|ip| ip.as_str().is_some_and(|s| !s.is_empty()))
    {
        new["spec"]["clusterIP"] = ip.clone();
        if let Some(ips) = old["spec"].get("clusterIPs") {
            new["spec"]["clusterIPs"] = ips.clone();
        }
    }
    if !has_node_ports(service_type(new)) {
        return;
    }
    let old_ports = old["spec"]["ports"].as_array().cloned().unwrap_or_default();
    if let Some(ports) = new["spec"]["ports"].as_array_mut() {
        for p in ports.iter_mut() {
            if p["nodePort"].as_i64().unwrap_or(0) != 0 {
                continue;
            }
            let same = old_ports.iter().find(|o| {
                o["port"] == p["port"]
                    && o["protocol"].as_str().unwrap_or("TCP")
                        == p["protocol"].as_str().unwrap_or("TCP")
            });
            if let Some(np) = same.and_then(|o| o.get("nodePort")) {
                p["nodePort"] = np.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apimachinery::registry::Registry;

    #[test]
    fn qos_classes() {
        assert_eq!(
            qos_class(Some(&json!({"containers": [{"name": "a"}]}))),
            "BestEffort"
        );
        let g = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(Some(&g)), "Guaranteed");
        let b = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(Some(&b)), "Burstable");
    }

    #[test]
    fn secret_string_data_is_stored_as_base64_data() {
        let reg = Registry::builtin();
        let rt = reg.get("", "v1", "secrets").expect("secrets");
        let mut s = json!({"metadata": {"name": "s"}, "data": {"a": "eA==", "b": "eQ=="},
            "stringData": {"b": "s3cret"}});
        prepare_for_create(rt, &mut s);
        assert_eq!(s["data"], json!({"a": "eA==", "b": "czNjcmV0"}));
        assert!(s.get("stringData").is_none());
        let old = s.clone();
        let mut new = json!({"metadata": {"name": "s"}, "stringData": {"c": "z"}});
        prepare_for_update(rt, &mut new, &old, None);
        assert_eq!(new["data"], json!({"c": "eg=="}));
    }

    #[test]
    fn update_keeps_status_and_bumps_generation_on_spec_change() {
        let reg = Registry::builtin();
        let rt = reg.get("apps", "v1", "deployments").expect("deployments");
        let old = json!({"metadata": {"name": "d", "uid": "u", "generation": 1, "creationTimestamp": "t"},
            "spec": {"replicas": 1}, "status": {"replicas": 1}});
        let mut new =
            json!({"metadata": {"name": "d"}, "spec": {"replicas": 2}, "status": {"replicas": 9}});
        prepare_for_update(rt, &mut new, &old, None);
        assert_eq!(new["status"]["replicas"], 1);
        assert_eq!(new["metadata"]["generation"], 2);
        assert_eq!(new["metadata"]["uid"], "u");
        let mut same =
            json!({"metadata": {"name": "d", "labels": {"a": "b"}}, "spec": {"replicas": 1}});
        prepare_for_update(rt, &mut same, &old, None);
        assert_eq!(same["metadata"]["generation"], 1);
    }

    #[test]
    fn status_update_changes_only_status() {
        let reg = Registry::builtin();
        let rt = reg.get("apps", "v1", "deployments").expect("deployments");
        let old = json!({"metadata": {"name": "d", "labels": {"a": "b"}}, "spec": {"replicas": 1}});
        let mut new =
            json!({"metadata": {"name": "d"}, "spec": {"replicas": 5}, "status": {"replicas": 3}});
        prepare_for_update(rt, &mut new, &old, Some("status"));
        assert_eq!(new["spec"]["replicas"], 1);
        assert_eq!(new["status"]["replicas"], 3);
        assert_eq!(new["metadata"]["labels"]["a"], "b");
    }

    #[test]
    fn ephemeral_containers_update_changes_only_ephemeral_containers() {
        let reg = Registry::builtin();
        let rt = reg.get("", "v1", "pods").expect("pods");
        let old = json!({"metadata": {"name": "p", "uid": "u", "generation": 1, "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]},
            "status": {"phase": "Running"}});
        let mut new = json!({"metadata": {"name": "p", "resourceVersion": "7"},
            "spec": {"containers": [{"name": "app", "image": "other"}],
                "ephemeralContainers": [{"name": "debugger", "image": "busybox"}]},
            "status": {"phase": "Failed"}});
        prepare_for_update(rt, &mut new, &old, Some("ephemeralcontainers"));
        assert_eq!(new["spec"]["containers"][0]["image"], "busybox");
        assert_eq!(new["spec"]["ephemeralContainers"][0]["name"], "debugger");
        assert_eq!(new["status"]["phase"], "Running");
        assert_eq!(new["metadata"]["labels"]["a"], "b");
        assert_eq!(new["metadata"]["uid"], "u");
        assert_eq!(new["metadata"]["resourceVersion"], "7");
        assert_eq!(new["metadata"]["generation"], 2);
    }

    #[test]
    fn a_service_changing_type_drops_what_only_the_old_type_used() {
        let reg = Registry::builtin();
        let rt = reg.get("", "v1", "services").expect("services");
        let old = json!({"metadata": {"name": "web"}, "spec": {"type": "LoadBalancer",
            "clusterIP": "10.43.0.9", "clusterIPs": ["10.43.0.9"],
            "externalTrafficPolicy": "Local", "healthCheckNodePort": 31999,
            "allocateLoadBalancerNodePorts": true,
            "ports": [{"port": 80, "nodePort": 30080}]}});
        // A merge patch of `type` alone: everything else as it was.
        let mut new = old.clone();
        new["spec"]["type"] = json!("ClusterIP");
        prepare_for_update(rt, &mut new, &old, None);
        let spec = &new["spec"];
        for gone in [
            "externalTrafficPolicy",
            "healthCheckNodePort",
            "allocateLoadBalancerNodePorts",
        ] {
            assert!(spec.get(gone).is_none(), "{gone} kept: {spec}");
        }
        assert!(spec["ports"][0].get("nodePort").is_none(), "{spec}");
        assert_eq!(spec["clusterIP"], "10.43.0.9");
        // A node port the update itself changes stays, for validation to refuse.
        let mut changed = old.clone();
        changed["spec"]["type"] = json!("ClusterIP");
        changed["spec"]["ports"][0]["nodePort"] = json!(30081);
        prepare_for_update(rt, &mut changed, &old, None);
        assert_eq!(changed["spec"]["ports"][0]["nodePort"], 30081);
        // LoadBalancer to NodePort keeps the node ports and the traffic policy.
        let mut np = old.clone();
        np["spec"]["type"] = json!("NodePort");
        prepare_for_update(rt, &mut np, &old, None);
        assert_eq!(np["spec"]["ports"][0]["nodePort"], 30080);
        assert_eq!(np["spec"]["externalTrafficPolicy"], "Local");
        assert!(np["spec"].get("healthCheckNodePort").is_none());
    }
}
