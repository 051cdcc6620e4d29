//! From a pod spec to CRI configs: the sandbox (hostname, DNS, ports, namespaces, cgroup
//! parent by QoS class) and each container (resources, security context, labels, log
//! path), as upstream's `kuberuntime_sandbox.go` and `kuberuntime_container_linux.go` do.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use apimachinery::quantity::{milli_value, value};
use k8s_cri::v1::{
    Capability, DnsConfig, Int64Value, LinuxContainerResources, LinuxContainerSecurityContext,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, PortMapping, Protocol,
};
use k8s_openapi::api::core::v1::{
    Container, EphemeralContainer, Pod, PodSecurityContext, SecurityContext,
};

use super::client::{
    AGENT_LABEL, CONTAINER_NAME_LABEL, POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL,
};

/// What the node contributes to every pod's configs.
#[derive(Clone, Debug)]
pub struct NodeContext {
    pub node_name: String,
    pub host_ip: String,
    /// Cluster DNS servers for `dnsPolicy: ClusterFirst`; empty falls back to the node's
    /// resolv.conf (upstream does the same, with a warning, when no cluster DNS is set).
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    /// `/var/log/pods`.
    pub log_root: PathBuf,
    /// `/kubepods`.
    pub cgroup_root: String,
    /// Node memory capacity in bytes (the burstable OOM score scale).
    pub memory_capacity: i64,
}

/// Upstream's `CPUShares` bounds and CFS period.
const MIN_SHARES: i64 = 2;
const MAX_SHARES: i64 = 262_144;
const CFS_PERIOD_US: i64 = 100_000;
const MIN_QUOTA_US: i64 = 1000;

pub fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}
pub fn namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}
pub fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

/// Upstream `format.Pod`: `name_namespace(uid)`, how kubelet messages name a pod.
pub fn pod_ref(pod: &Pod) -> String {
    format!("{}_{}({})", name(pod), namespace(pod), uid(pod))
}

/// `<log_root>/<namespace>_<name>_<uid>`.
pub fn log_dir(log_root: &Path, pod: &Pod) -> PathBuf {
    log_root.join(format!("{}_{}_{}", namespace(pod), name(pod), uid(pod)))
}

pub fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

fn qos_class(pod: &Pod) -> &str {
    // The API server sets it on create and it never changes.
    pod.status
        .as_ref()
        .and_then(|s| s.qos_class.as_deref())
        .unwrap_or("BestEffort")
}

/// `/kubepods/pod<uid>` (Guaranteed), `/kubepods/burstable/pod<uid>`,
/// `/kubepods/besteffort/pod<uid>`.
pub fn cgroup_parent(root: &str, pod: &Pod) -> String {
    let uid = uid(pod);
    match qos_class(pod) {
        "Guaranteed" => format!("{root}/pod{uid}"),
        "Burstable" => format!("{root}/burstable/pod{uid}"),
        _ => format!("{root}/besteffort/pod{uid}"),
    }
}

fn base_labels(pod: &Pod, agent_id: &str) -> HashMap<String, String> {
    HashMap::from([
        (AGENT_LABEL.to_string(), agent_id.to_string()),
        (POD_NAME_LABEL.to_string(), name(pod).to_string()),
        (POD_NAMESPACE_LABEL.to_string(), namespace(pod).to_string()),
        (POD_UID_LABEL.to_string(), uid(pod).to_string()),
    ])
}

/// The pod's hostname: `spec.hostname`, else its name cut to 63 characters; empty for
/// host-network pods (runc refuses a hostname without a UTS namespace).
fn hostname(pod: &Pod) -> String {
    if host_network(pod) {
        return String::new();
    }
    let h = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| name(pod).to_string());
    let mut h: String = h.chars().take(63).collect();
    while h.ends_with(['-', '.']) {
        h.pop();
    }
    h
}

/// The node's own resolver settings (`/etc/resolv.conf`).
fn host_resolv() -> (Vec<String>, Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let (mut servers, mut searches, mut options) = (Vec::new(), Vec::new(), Vec::new());
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => servers.extend(words.next().map(String::from)),
            Some("search" | "domain") => searches = words.map(String::from).collect(),
            Some("options") => options.extend(words.map(String::from)),
            _ => {}
        }
    }
    (servers, searches, options)
}

/// The sandbox's DNS per `dnsPolicy` (upstream `getPodDNSType` / `GetPodDNS`); `None`
/// lets the runtime copy the node's resolv.conf.
pub fn dns_config(pod: &Pod, node: &NodeContext) -> Option<DnsConfig> {
    let spec = pod.spec.as_ref()?;
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let cluster = !node.cluster_dns.is_empty()
        && match policy {
            "ClusterFirstWithHostNet" => true,
            "ClusterFirst" => !host_network(pod),
            _ => false,
        };
    let mut cfg = if cluster {
        let (_, host_searches, _) = host_resolv();
        let ns = namespace(pod);
        let d = &node.cluster_domain;
        let mut searches = vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.clone()];
        searches.extend(host_searches);
        DnsConfig {
            servers: node.cluster_dns.clone(),
            searches,
            options: vec!["ndots:5".into()],
        }
    } else if policy == "None" {
        DnsConfig::default()
    } else if spec.dns_config.is_none() {
        return None;
    } else {
        let (servers, searches, options) = host_resolv();
        DnsConfig {
            servers,
            searches,
            options,
        }
    };
    if let Some(extra) = &spec.dns_config {
        for s in extra.nameservers.iter().flatten() {
            if !cfg.servers.contains(s) {
                cfg.servers.push(s.clone());
            }
        }
        for s in extra.searches.iter().flatten() {
            if !cfg.searches.contains(s) {
                cfg.searches.push(s.clone());
            }
        }
        for o in extra.options.iter().flatten() {
            let text = match &o.value {
                Some(v) => format!("{}:{v}", o.name.as_deref().unwrap_or_default()),
                None => o.name.clone().unwrap_or_default(),
            };
            let key = text.split(':').next().unwrap_or_default().to_string();
            cfg.options
                .retain(|x| x.split(':').next() != Some(key.as_str()));
            cfg.options.push(text);
        }
    }
    Some(cfg)
}

fn port_mappings(pod: &Pod) -> Vec<PortMapping> {
    if host_network(pod) {
        return Vec::new();
    }
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => Protocol::Udp,
                Some("SCTP") => Protocol::Sctp,
                _ => Protocol::Tcp,
            } as i32,
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect()
}

fn namespaces(pod: &Pod) -> NamespaceOption {
    let spec = pod.spec.as_ref();
    let flag = |f: fn(&k8s_openapi::api::core::v1::PodSpec) -> Option<bool>| {
        spec.and_then(f).unwrap_or(false)
    };
    NamespaceOption {
        network: if flag(|s| s.host_network) {
            NamespaceMode::Node
        } else {
            NamespaceMode::Pod
        } as i32,
        pid: if flag(|s| s.host_pid) {
            NamespaceMode::Node
        } else if flag(|s| s.share_process_namespace) {
            NamespaceMode::Pod
        } else {
            NamespaceMode::Container
        } as i32,
        ipc: if flag(|s| s.host_ipc) {
            NamespaceMode::Node
        } else {
            NamespaceMode::Pod
        } as i32,
        ..Default::default()
    }
}

fn pod_security(pod: &Pod) -> Option<&PodSecurityContext> {
    pod.spec.as_ref()?.security_context.as_ref()
}

pub fn sandbox_config(
    pod: &Pod,
    attempt: u32,
    node: &NodeContext,
    agent_id: &str,
) -> PodSandboxConfig {
    let mut labels = base_labels(pod, agent_id);
    for (k, v) in pod.metadata.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let psc = pod_security(pod);
    let privileged = pod.spec.iter().flat_map(|s| &s.containers).any(|c| {
        c.security_context
            .as_ref()
            .and_then(|s| s.privileged)
            .unwrap_or(false)
    });
    let sysctls = psc
        .and_then(|s| s.sysctls.as_ref())
        .into_iter()
        .flatten()
        .map(|s| (s.name.clone(), s.value.clone()))
        .collect();
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name(pod).to_string(),
            uid: uid(pod).to_string(),
            namespace: namespace(pod).to_string(),
            attempt,
        }),
        hostname: hostname(pod),
        log_directory: log_dir(&node.log_root, pod).to_string_lossy().into_owned(),
        dns_config: dns_config(pod, node),
        port_mappings: port_mappings(pod),
        labels,
        annotations: pod
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent(&node.cgroup_root, pod),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces(pod)),
                run_as_user: psc
                    .and_then(|s| s.run_as_user)
                    .map(|value| Int64Value { value }),
                run_as_group: psc
                    .and_then(|s| s.run_as_group)
                    .map(|value| Int64Value { value }),
                supplemental_groups: psc
                    .and_then(|s| s.supplemental_groups.clone())
                    .unwrap_or_default(),
                privileged,
                ..Default::default()
            }),
            sysctls,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Labels of a container: the pod's identity, its name, this agent.
pub fn container_labels(pod: &Pod, container: &str, agent_id: &str) -> HashMap<String, String> {
    let mut l = base_labels(pod, agent_id);
    l.insert(CONTAINER_NAME_LABEL.to_string(), container.to_string());
    l
}

fn quantity<'a>(c: &'a Container, limits: bool, res: &str) -> Option<&'a str> {
    let r = c.resources.as_ref()?;
    let list = if limits { &r.limits } else { &r.requests };
    list.as_ref()?.get(res).map(|q| q.0.as_str())
}

/// cgroup settings of a container (upstream `calculateLinuxResources` and the QoS OOM
/// score).
pub fn resources(pod: &Pod, c: &Container, node: &NodeContext) -> LinuxContainerResources {
    let cpu_request = quantity(c, false, "cpu").map(milli_value);
    let cpu_limit = quantity(c, true, "cpu").map(milli_value);
    let memory_request = quantity(c, false, "memory").map(value).unwrap_or(0);
    let memory_limit = quantity(c, true, "memory").map(value).unwrap_or(0);
    // No request but a limit: the request is the limit (API defaulting does the same).
    let shares_milli = cpu_request.or(cpu_limit).unwrap_or(0);
    let cpu_shares = (shares_milli * 1024 / 1000).clamp(MIN_SHARES, MAX_SHARES);
    let cpu_quota = cpu_limit
        .filter(|m| *m > 0)
        .map(|m| (m * CFS_PERIOD_US / 1000).max(MIN_QUOTA_US))
        .unwrap_or(0);
    let oom_score_adj = match qos_class(pod) {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ => {
            let cap = node.memory_capacity.max(1);
            (1000 - (1000 * memory_request) / cap).clamp(3, 999)
        }
    };
    LinuxContainerResources {
        cpu_period: if cpu_quota > 0 { CFS_PERIOD_US } else { 0 },
        cpu_quota,
        cpu_shares,
        memory_limit_in_bytes: memory_limit,
        oom_score_adj,
        ..Default::default()
    }
}

/// Upstream's default masked and read-only /proc and /sys paths for unprivileged
/// containers (`securitycontext.ConvertToRuntimeMaskedPaths` with the Default proc mount).
const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The container's effective user settings: its own security context over the pod's.
pub struct Identity {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: bool,
}

pub fn identity(pod: &Pod, c: &Container) -> Identity {
    let psc = pod_security(pod);
    let sc = c.security_context.as_ref();
    Identity {
        run_as_user: sc
            .and_then(|s| s.run_as_user)
            .or_else(|| psc.and_then(|s| s.run_as_user)),
        run_as_group: sc
            .and_then(|s| s.run_as_group)
            .or_else(|| psc.and_then(|s| s.run_as_group)),
        run_as_non_root: sc
            .and_then(|s| s.run_as_non_root)
            .or_else(|| psc.and_then(|s| s.run_as_non_root))
            .unwrap_or(false),
    }
}

/// Upstream `verifyRunAsNonRoot`: the message when the container would run as root
/// although `runAsNonRoot` forbids it. `image_uid`/`image_user` are the image's user.
pub fn verify_non_root(
    pod: &Pod,
    c: &Container,
    image_uid: Option<i64>,
    image_user: &str,
) -> Result<(), String> {
    let id = identity(pod, c);
    if !id.run_as_non_root {
        return Ok(());
    }
    let who = format!("(pod: {:?}, container: {})", pod_ref(pod), c.name);
    if let Some(uid) = id.run_as_user {
        return if uid == 0 {
            Err(format!(
                "container's runAsUser breaks non-root policy {who}"
            ))
        } else {
            Ok(())
        };
    }
    match image_uid {
        Some(0) => Err(format!(
            "container has runAsNonRoot and image will run as root {who}"
        )),
        Some(_) => Ok(()),
        None if image_user.is_empty() || image_user == "root" => Err(format!(
            "container has runAsNonRoot and image will run as root {who}"
        )),
        None => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({image_user}), cannot verify user is non-root {who}"
        )),
    }
}

pub fn security_context(pod: &Pod, c: &Container) -> LinuxContainerSecurityContext {
    let sc: Option<&SecurityContext> = c.security_context.as_ref();
    let psc = pod_security(pod);
    let privileged = sc.and_then(|s| s.privileged).unwrap_or(false);
    let id = identity(pod, c);
    let caps = sc.and_then(|s| s.capabilities.as_ref());
    LinuxContainerSecurityContext {
        capabilities: caps.map(|c| Capability {
            add_capabilities: c.add.clone().unwrap_or_default(),
            drop_capabilities: c.drop.clone().unwrap_or_default(),
            ..Default::default()
        }),
        privileged,
        namespace_options: Some(namespaces(pod)),
        run_as_user: id.run_as_user.map(|value| Int64Value { value }),
        run_as_group: id.run_as_group.map(|value| Int64Value { value }),
        readonly_rootfs: sc
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
        supplemental_groups: psc
            .and_then(|s| s.supplemental_groups.clone())
            .unwrap_or_default(),
        no_new_privs: sc.and_then(|s| s.allow_privilege_escalation) == Some(false),
        masked_paths: if privileged {
            Vec::new()
        } else {
            MASKED_PATHS.iter().map(|p| p.to_string()).collect()
        },
        readonly_paths: if privileged {
            Vec::new()
        } else {
            READONLY_PATHS.iter().map(|p| p.to_string()).collect()
        },
        ..Default::default()
    }
}

/// The pod's ephemeral container called `name`, if there is one.
pub fn ephemeral<'a>(pod: &'a Pod, name: &str) -> Option<&'a EphemeralContainer> {
    pod.spec
        .as_ref()?
        .ephemeral_containers
        .as_ref()?
        .iter()
        .find(|e| e.name == name)
}

/// An ephemeral container as the container it runs as (upstream converts its
/// `EphemeralContainerCommon` to a `Container`); `targetContainerName` is left out.
pub fn ephemeral_container(e: &EphemeralContainer) -> Container {
    Container {
        args: e.args.clone(),
        command: e.command.clone(),
        env: e.env.clone(),
        env_from: e.env_from.clone(),
        image: e.image.clone(),
        image_pull_policy: e.image_pull_policy.clone(),
        lifecycle: e.lifecycle.clone(),
        liveness_probe: e.liveness_probe.clone(),
        name: e.name.clone(),
        ports: e.ports.clone(),
        readiness_probe: e.readiness_probe.clone(),
        resize_policy: e.resize_policy.clone(),
        resources: e.resources.clone(),
        restart_policy: e.restart_policy.clone(),
        security_context: e.security_context.clone(),
        startup_probe: e.startup_probe.clone(),
        stdin: e.stdin,
        stdin_once: e.stdin_once,
        termination_message_path: e.termination_message_path.clone(),
        termination_message_policy: e.termination_message_policy.clone(),
        tty: e.tty,
        volume_devices: e.volume_devices.clone(),
        volume_mounts: e.volume_mounts.clone(),
        working_dir: e.working_dir.clone(),
    }
}

/// Puts a container into the PID namespace of container `target_id` (CRI `TARGET` mode),
/// as upstream does for an ephemeral container with a `targetContainerName`: only when it
/// would otherwise get a namespace of its own (a pod sharing its process namespace, or the
/// node's, already shows it every process).
pub fn target_pid_namespace(sc: &mut LinuxContainerSecurityContext, target_id: &str) {
    if let Some(ns) = sc.namespace_options.as_mut()
        && ns.pid == NamespaceMode::Container as i32
    {
        ns.pid = NamespaceMode::Target as i32;
        ns.target_id = target_id.to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    fn node() -> NodeContext {
        NodeContext {
            node_name: "n".into(),
            host_ip: "10.0.0.5".into(),
            cluster_dns: vec!["10.43.0.10".into()],
            cluster_domain: "cluster.local".into(),
            log_root: PathBuf::from("/var/log/pods"),
            cgroup_root: "/kubepods".into(),
            memory_capacity: 8 << 30,
        }
    }

    #[test]
    fn cgroup_parent_follows_the_qos_class() {
        let mut p = pod(json!({"metadata": {"name": "p", "uid": "u1"},
            "spec": {"containers": [{"name": "c"}]}, "status": {"qosClass": "Burstable"}}));
        assert_eq!(cgroup_parent("/kubepods", &p), "/kubepods/burstable/podu1");
        p.status.as_mut().expect("status").qos_class = Some("Guaranteed".into());
        assert_eq!(cgroup_parent("/kubepods", &p), "/kubepods/podu1");
        p.status = None;
        assert_eq!(cgroup_parent("/kubepods", &p), "/kubepods/besteffort/podu1");
    }

    #[test]
    fn cpu_and_memory_become_shares_quota_and_limit() {
        let p = pod(json!({"metadata": {"name": "p", "uid": "u"},
            "spec": {"containers": [{"name": "c", "resources": {
                "requests": {"cpu": "250m", "memory": "64Mi"},
                "limits": {"cpu": "500m", "memory": "128Mi"}}}]},
            "status": {"qosClass": "Burstable"}}));
        let c = &p.spec.as_ref().expect("spec").containers[0];
        let r = resources(&p, c, &node());
        assert_eq!(r.cpu_shares, 256);
        assert_eq!((r.cpu_quota, r.cpu_period), (50_000, 100_000));
        assert_eq!(r.memory_limit_in_bytes, 128 << 20);
        assert_eq!(r.oom_score_adj, 1000 - (1000 * (64 << 20)) / (8 << 30));
        let be = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}));
        let r = resources(&be, &be.spec.as_ref().expect("spec").containers[0], &node());
        assert_eq!((r.cpu_shares, r.cpu_quota, r.oom_score_adj), (2, 0, 1000));
    }

    #[test]
    fn cluster_first_dns_uses_the_cluster_server_and_search_path() {
        let p = pod(json!({"metadata": {"name": "p", "namespace": "shop"},
            "spec": {"containers": [{"name": "c"}],
                "dnsConfig": {"options": [{"name": "ndots", "value": "2"}]}}}));
        let d = dns_config(&p, &node()).expect("dns");
        assert_eq!(d.servers, ["10.43.0.10"]);
        assert_eq!(
            &d.searches[..3],
            [
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local"
            ]
        );
        assert_eq!(d.options, ["ndots:2"]);
        let none = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}],
            "dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"]}}}),
        );
        let d = dns_config(&none, &node()).expect("dns");
        assert_eq!(
            (d.servers.as_slice(), d.searches.len()),
            (&["1.1.1.1".to_string()][..], 0)
        );
        let host = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}],
            "hostNetwork": true}}),
        );
        assert!(dns_config(&host, &node()).is_none());
    }

    #[test]
    fn run_as_non_root_refuses_root_images() {
        let p = pod(
            json!({"metadata": {"name": "p", "namespace": "d", "uid": "u"},
            "spec": {"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "c"}]}}),
        );
        let c = &p.spec.as_ref().expect("spec").containers[0];
        let err = verify_non_root(&p, c, Some(0), "").expect_err("root image");
        assert_eq!(
            err,
            "container has runAsNonRoot and image will run as root (pod: \"p_d(u)\", container: c)"
        );
        assert!(verify_non_root(&p, c, Some(1000), "").is_ok());
    }

    #[test]
    fn host_network_pods_have_no_hostname_and_share_the_node_network() {
        let p = pod(json!({"metadata": {"name": "p", "uid": "u"},
            "spec": {"hostNetwork": true, "containers": [{"name": "c",
                "ports": [{"containerPort": 80, "hostPort": 8080}]}]}}));
        let cfg = sandbox_config(&p, 0, &node(), "a");
        assert_eq!(cfg.hostname, "");
        assert!(cfg.port_mappings.is_empty());
        let ns = cfg
            .linux
            .and_then(|l| l.security_context)
            .and_then(|s| s.namespace_options)
            .expect("namespaces");
        assert_eq!(ns.network, NamespaceMode::Node as i32);
        assert_eq!(cfg.labels[AGENT_LABEL], "a");
    }

    #[test]
    fn ephemeral_containers_join_their_targets_pid_namespace() {
        let p = pod(json!({"metadata": {"name": "p", "uid": "u"},
            "spec": {"containers": [{"name": "app"}],
                "ephemeralContainers": [{"name": "debugger", "image": "busybox",
                    "targetContainerName": "app", "stdin": true}]}}));
        let e = ephemeral(&p, "debugger").expect("ephemeral container");
        assert!(ephemeral(&p, "app").is_none());
        let c = ephemeral_container(e);
        assert_eq!((c.name.as_str(), c.stdin), ("debugger", Some(true)));
        let mut sc = security_context(&p, &c);
        target_pid_namespace(&mut sc, "abc");
        let ns = sc.namespace_options.expect("namespaces");
        assert_eq!(ns.pid, NamespaceMode::Target as i32);
        assert_eq!(ns.target_id, "abc");

        // A pod that shares one process namespace already shows the target's processes.
        let shared = pod(json!({"metadata": {"name": "p", "uid": "u"},
            "spec": {"shareProcessNamespace": true, "containers": [{"name": "app"}]}}));
        let mut sc = security_context(&shared, &c);
        target_pid_namespace(&mut sc, "abc");
        let ns = sc.namespace_options.expect("namespaces");
        assert_eq!(ns.pid, NamespaceMode::Pod as i32);
        assert_eq!(ns.target_id, "");
    }
}
