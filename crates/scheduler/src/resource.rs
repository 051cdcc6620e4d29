//! Resource arithmetic as the scheduler sees it: quantities parsed once into integers
//! (milli-CPU, bytes, counts), per-pod requests with upstream's init-container and sidecar
//! rules (`resourcehelper.PodRequests`), and the "non-zero" defaults scoring uses for
//! containers that request nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
pub const PODS: &str = "pods";

/// Upstream `schedutil.DefaultMilliCPURequest`: what a container without a CPU request
/// counts as when spreading by score (100m).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Upstream `schedutil.DefaultMemoryRequest` (200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// `Quantity.Value()`: the integer value, rounded up (bytes, counts).
pub fn value(q: &Quantity) -> i64 {
    apimachinery::quantity::value(&q.0)
}

/// `Quantity.MilliValue()`, rounded up (CPU).
pub fn milli_value(q: &Quantity) -> i64 {
    apimachinery::quantity::milli_value(&q.0)
}

/// Upstream `IsScalarResourceName`: extended resources (`example.com/foo`), prefixed native
/// resources, `hugepages-*` and `attachable-volumes-*`. Everything else that is not cpu,
/// memory, ephemeral-storage or pods is ignored by the scheduler.
pub fn is_scalar_resource_name(name: &str) -> bool {
    name.contains('/') && !name.starts_with("requests.")
        || name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
}

/// Upstream `IsExtendedResourceName`: a domain-qualified name outside `kubernetes.io/`.
pub fn is_extended_resource_name(name: &str) -> bool {
    if !name.contains('/') || name.starts_with("requests.") {
        return false;
    }
    let domain = name.split('/').next().unwrap_or("");
    !(domain == "kubernetes.io" || domain.ends_with(".kubernetes.io"))
}

/// Upstream `framework.Resource`: the dimensions the scheduler tracks, as integers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Only meaningful for a node's allocatable (`pods`).
    pub allowed_pod_number: i64,
    /// Extended and other scalar resources, unsorted; usually empty (no allocation).
    pub scalar: Vec<(Arc<str>, i64)>,
}

impl Resource {
    /// From a `ResourceList` (requests, allocatable, overhead).
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Resource {
        let mut r = Resource::default();
        r.add_list(list);
        r
    }

    pub fn add_list(&mut self, list: &BTreeMap<String, Quantity>) {
        for (name, q) in list {
            match name.as_str() {
                CPU => self.milli_cpu += milli_value(q),
                MEMORY => self.memory += value(q),
                EPHEMERAL_STORAGE => self.ephemeral_storage += value(q),
                PODS => self.allowed_pod_number += value(q),
                n if is_scalar_resource_name(n) => self.add_scalar(n, value(q)),
                _ => {}
            }
        }
    }

    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar
            .iter()
            .find(|(n, _)| &**n == name)
            .map_or(0, |(_, v)| *v)
    }

    /// Whether `name` is present at all (upstream distinguishes a missing extended resource
    /// from one with zero allocatable when scoring).
    pub fn has_scalar(&self, name: &str) -> bool {
        self.scalar.iter().any(|(n, _)| &**n == name)
    }

    pub fn add_scalar(&mut self, name: &str, v: i64) {
        match self.scalar.iter_mut().find(|(n, _)| &**n == name) {
            Some((_, x)) => *x += v,
            None => self.scalar.push((Arc::from(name), v)),
        }
    }

    fn max_scalar(&mut self, name: &Arc<str>, v: i64) {
        match self.scalar.iter_mut().find(|(n, _)| n == name) {
            Some((_, x)) => *x = (*x).max(v),
            None => self.scalar.push((name.clone(), v)),
        }
    }

    pub fn add(&mut self, o: &Resource) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        self.allowed_pod_number += o.allowed_pod_number;
        for (n, v) in &o.scalar {
            match self.scalar.iter_mut().find(|(m, _)| m == n) {
                Some((_, x)) => *x += v,
                None => self.scalar.push((n.clone(), *v)),
            }
        }
    }

    pub fn sub(&mut self, o: &Resource) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        self.allowed_pod_number -= o.allowed_pod_number;
        for (n, v) in &o.scalar {
            match self.scalar.iter_mut().find(|(m, _)| m == n) {
                Some((_, x)) => *x -= v,
                None => self.scalar.push((n.clone(), -v)),
            }
        }
    }

    fn set_max(&mut self, o: &Resource) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        for (n, v) in &o.scalar {
            self.max_scalar(n, *v);
        }
    }

    /// The amount of a named resource (`cpu` in millis, others in units).
    pub fn get(&self, name: &str) -> i64 {
        match name {
            CPU => self.milli_cpu,
            MEMORY => self.memory,
            EPHEMERAL_STORAGE => self.ephemeral_storage,
            PODS => self.allowed_pod_number,
            n => self.scalar(n),
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.iter().all(|(_, v)| *v == 0)
    }
}

fn container_requests(c: &Container) -> Option<&BTreeMap<String, Quantity>> {
    c.resources.as_ref().and_then(|r| r.requests.as_ref())
}

/// A container's requests, with `defaults` filling cpu/memory the container leaves out
/// (upstream `applyNonMissing`).
fn requests_of(c: &Container, non_missing: bool) -> Resource {
    let mut r = container_requests(c)
        .map(Resource::from_list)
        .unwrap_or_default();
    if non_missing {
        let reqs = container_requests(c);
        if !reqs.is_some_and(|m| m.contains_key(CPU)) {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !reqs.is_some_and(|m| m.contains_key(MEMORY)) {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

/// Upstream `resourcehelper.PodRequests`: the sum of regular and sidecar containers, raised
/// to the peak any init container needs while it runs (a regular init container runs next to
/// the sidecars started before it), plus pod overhead. With `non_missing`, containers that
/// omit cpu or memory count as 100m / 200Mi (what scoring uses).
pub fn pod_requests(pod: &Pod, non_missing: bool) -> Resource {
    let Some(spec) = pod.spec.as_ref() else {
        return Resource::default();
    };
    let mut reqs = Resource::default();
    for c in &spec.containers {
        reqs.add(&requests_of(c, non_missing));
    }
    let mut sidecars = Resource::default();
    let mut init_peak = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let r = requests_of(c, non_missing);
        if c.restart_policy.as_deref() == Some("Always") {
            reqs.add(&r);
            sidecars.add(&r);
            init_peak.set_max(&sidecars);
        } else {
            let mut running = r;
            running.add(&sidecars);
            init_peak.set_max(&running);
        }
    }
    reqs.set_max(&init_peak);
    if let Some(overhead) = &spec.overhead {
        reqs.add_list(overhead);
    }
    reqs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_string())
    }

    #[test]
    fn quantities_parse_like_upstream() {
        let cases = [
            ("500m", 500, 1),
            ("1", 1000, 1),
            ("1.5", 1500, 2),
            ("100n", 1, 1),
            ("2k", 2_000_000, 2000),
            ("1Ki", 1_024_000, 1024),
            ("256Mi", 268_435_456_000, 268_435_456),
            ("1e3", 1_000_000, 1000),
            ("0", 0, 0),
        ];
        for (s, milli, val) in cases {
            assert_eq!(milli_value(&q(s)), milli, "{s} milli");
            assert_eq!(value(&q(s)), val, "{s} value");
        }
        assert_eq!(value(&q("garbage")), 0);
    }

    #[test]
    fn scalar_names() {
        assert!(is_scalar_resource_name("nvidia.com/gpu"));
        assert!(is_scalar_resource_name("hugepages-2Mi"));
        assert!(!is_scalar_resource_name("storage"));
        assert!(is_extended_resource_name("nvidia.com/gpu"));
        assert!(!is_extended_resource_name("kubernetes.io/foo"));
        assert!(!is_extended_resource_name("cpu"));
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).expect("pod")
    }

    #[test]
    fn pod_requests_take_init_peak_and_sidecars() {
        // Upstream's example: init 2/1G and 2/3G, containers 2/1G + 1/1G → cpu 3, memory 3G.
        let p = pod(json!({
            "initContainers": [
                {"name": "i1", "resources": {"requests": {"cpu": "2", "memory": "1G"}}},
                {"name": "i2", "resources": {"requests": {"cpu": "2", "memory": "3G"}}}
            ],
            "containers": [
                {"name": "c1", "resources": {"requests": {"cpu": "2", "memory": "1G"}}},
                {"name": "c2", "resources": {"requests": {"cpu": "1", "memory": "1G"}}}
            ]
        }));
        let r = pod_requests(&p, false);
        assert_eq!((r.milli_cpu, r.memory), (3000, 3_000_000_000));

        // A sidecar runs next to everything after it: sidecar 1 cpu + init 2 cpu = 3 peak,
        // sidecar + container = 1 + 1 = 2 steady → 3.
        let p = pod(json!({
            "initContainers": [
                {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
                {"name": "i", "resources": {"requests": {"cpu": "2"}}}
            ],
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "nvidia.com/gpu": "2"}}}],
            "overhead": {"cpu": "250m"}
        }));
        let r = pod_requests(&p, false);
        assert_eq!(r.milli_cpu, 3250);
        assert_eq!(r.scalar("nvidia.com/gpu"), 2);

        // Non-missing defaults apply per container.
        let p = pod(
            json!({"containers": [{"name": "a"}, {"name": "b", "resources": {"requests": {"cpu": "0"}}}]}),
        );
        let r = pod_requests(&p, true);
        assert_eq!(r.milli_cpu, DEFAULT_MILLI_CPU_REQUEST);
        assert_eq!(r.memory, 2 * DEFAULT_MEMORY_REQUEST);
        assert!(pod_requests(&p, false).is_zero());
    }
}
