//! A node agent's Summary (`GET /stats/summary`, upstream's `stats/v1alpha1`) read into the
//! usage metrics.k8s.io reports, and that usage as `NodeMetrics` and `PodMetrics` objects
//! with metrics-server's quantities: CPU in nanocores (`DecimalSI`, so `6082165n` or
//! `5m`), memory working set in bytes (`BinarySI`, so `22272Ki`).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Limited};
use jiff::Timestamp;
use k8s_metrics::v1beta1::{Container, NodeMetrics, PodMetrics, Usage as UsageQuantities};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde_json::Value;

use crate::kubelet_client;

/// How long one agent may take to answer (metrics-server's default scrape timeout).
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest Summary read (a node's 110 pods make some hundred KiB).
const MAX_SUMMARY: usize = 16 << 20;

/// CPU and memory in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_nanocores: u64,
    pub memory_bytes: u64,
}

impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage {
            cpu_nanocores: self.cpu_nanocores.saturating_add(o.cpu_nanocores),
            memory_bytes: self.memory_bytes.saturating_add(o.memory_bytes),
        }
    }
}

/// Usage measured at one time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample<T> {
    pub timestamp: Timestamp,
    pub usage: T,
}

/// One pod's uid and, once every container has a CPU rate and a working set, each
/// container's usage.
pub type PodUsage = (String, Option<Sample<Vec<(String, Usage)>>>);

/// What one node's Summary tells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeSummary {
    /// The node's own usage, once it has a CPU rate.
    pub node: Option<Sample<Usage>>,
    /// Pods by `(namespace, name)`.
    pub pods: HashMap<(String, String), PodUsage>,
}

/// The usage of one `stats/v1alpha1` object (node, container) that has both a CPU rate
/// and a working set, timed by its CPU sample.
fn usage(stats: &Value) -> Option<Sample<Usage>> {
    let cpu_nanocores = stats["cpu"]["usageNanoCores"].as_u64()?;
    let memory_bytes = stats["memory"]["workingSetBytes"].as_u64()?;
    let timestamp = stats["cpu"]["time"]
        .as_str()
        .or_else(|| stats["memory"]["time"].as_str())?
        .parse()
        .ok()?;
    Some(Sample {
        timestamp,
        usage: Usage {
            cpu_nanocores,
            memory_bytes,
        },
    })
}

/// Reads a Summary. Entries without what metrics need are kept as "no metrics", the way
/// metrics-server skips a pod until all its containers have two samples.
pub fn parse(summary: &Value) -> NodeSummary {
    let mut out = NodeSummary {
        node: usage(&summary["node"]),
        pods: HashMap::new(),
    };
    for pod in summary["pods"].as_array().into_iter().flatten() {
        let r = &pod["podRef"];
        let (Some(ns), Some(name)) = (r["namespace"].as_str(), r["name"].as_str()) else {
            continue;
        };
        let uid = r["uid"].as_str().unwrap_or_default().to_string();
        let containers: Option<Vec<(String, Sample<Usage>)>> = pod["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| Some((c["name"].as_str()?.to_string(), usage(c)?)))
            .collect();
        let sample = containers.filter(|c| !c.is_empty()).and_then(|c| {
            // The earliest container sample times the pod, as metrics-server does.
            let timestamp = c.iter().map(|(_, s)| s.timestamp).min()?;
            Some(Sample {
                timestamp,
                usage: c.into_iter().map(|(n, s)| (n, s.usage)).collect(),
            })
        });
        out.pods
            .insert((ns.to_string(), name.to_string()), (uid, sample));
    }
    out
}

/// Whether metrics are asked of this node: it is Ready, and it reports where its agent
/// listens (simulated nodes report no kubelet endpoint and have no stats).
pub fn scrapable(node: &Value) -> bool {
    let ready = node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_i64()
        .is_some_and(|p| p > 0);
    ready && port
}

/// The node's Summary from its agent; `None` (logged) when the agent cannot be reached
/// in time or answers with anything but a Summary.
pub async fn fetch(node: &Value, token: &str) -> Option<NodeSummary> {
    let name = node["metadata"]["name"].as_str().unwrap_or_default();
    let read = async {
        let at = kubelet_client::location(node).map_err(|e| e.message().to_string())?;
        let resp = kubelet_client::get(&at, "/stats/summary", token)
            .await
            .map_err(|e| e.message().to_string())?;
        if resp.status() != StatusCode::OK {
            return Err(format!("the agent answered {}", resp.status()));
        }
        let body: Bytes = Limited::new(resp.into_body(), MAX_SUMMARY)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        serde_json::from_slice::<Value>(&body).map_err(|e| e.to_string())
    };
    match tokio::time::timeout(SCRAPE_TIMEOUT, read).await {
        Ok(Ok(summary)) => Some(parse(&summary)),
        Ok(Err(e)) => {
            tracing::debug!(node = name, error = %e, "no stats summary from the node");
            None
        }
        Err(_) => {
            tracing::debug!(node = name, "the node's stats summary timed out");
            None
        }
    }
}

/// `resource.Quantity` text of `mantissa`×10^`exponent` in `DecimalSI`: trailing zeros
/// folded into the exponent, which is then a multiple of three with its SI suffix.
fn decimal_si(mantissa: u64, exponent: i32) -> String {
    if mantissa == 0 {
        return "0".into();
    }
    let (mut m, mut e) = (u128::from(mantissa), exponent);
    while m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    while e.rem_euclid(3) != 0 {
        m *= 10;
        e -= 1;
    }
    let suffix = match e {
        -9 => "n".to_string(),
        -6 => "u".into(),
        -3 => "m".into(),
        0 => String::new(),
        3 => "k".into(),
        6 => "M".into(),
        9 => "G".into(),
        12 => "T".into(),
        15 => "P".into(),
        18 => "E".into(),
        e => format!("e{e}"),
    };
    format!("{m}{suffix}")
}

/// CPU in nanocores, as metrics-server's `NewScaledQuantity(n, -9)`.
pub fn cpu_quantity(nanocores: u64) -> Quantity {
    Quantity(decimal_si(nanocores, -9))
}

/// Memory in bytes, as metrics-server's `BinarySI` quantity: powers of 1024 when exact;
/// under 1 KiB, or not a multiple of 1024, upstream falls back to `DecimalSI` and plain
/// digits.
pub fn memory_quantity(bytes: u64) -> Quantity {
    if bytes < 1024 {
        return Quantity(decimal_si(bytes, 0));
    }
    let (mut n, mut exp) = (bytes, 0);
    while exp < 6 && n % 1024 == 0 {
        n /= 1024;
        exp += 1;
    }
    Quantity(format!(
        "{n}{}",
        ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp]
    ))
}

/// Go's `time.Duration.String()` for windows: `10s`, `1m30s`, `10.5s`.
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    match (secs / 3600, (secs / 60) % 60, secs % 60) {
        (0, 0, s) => format!("{s}{frac}s"),
        (0, m, s) => format!("{m}m{s}{frac}s"),
        (h, m, s) => format!("{h}h{m}m{s}{frac}s"),
    }
}

fn usage_quantities(u: Usage) -> UsageQuantities {
    UsageQuantities {
        cpu: cpu_quantity(u.cpu_nanocores),
        memory: memory_quantity(u.memory_bytes),
    }
}

/// The metadata metrics-server gives an object: the source's name, namespace and labels,
/// created now.
fn meta(source: &Value, now: Timestamp) -> ObjectMeta {
    let m = &source["metadata"];
    ObjectMeta {
        name: m["name"].as_str().map(str::to_string),
        namespace: m["namespace"].as_str().map(str::to_string),
        labels: serde_json::from_value(m["labels"].clone()).ok(),
        creation_timestamp: Some(Time(now)),
        ..Default::default()
    }
}

/// Serialized, with the window as Go prints it (k8s-metrics pads nanoseconds).
fn finish<T: serde::Serialize>(obj: &T, window: Duration) -> Value {
    let mut v = serde_json::to_value(obj).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("window".into(), go_duration(window).into());
    }
    v
}

/// A `NodeMetrics` (without `kind`/`apiVersion`: list items carry none).
pub fn node_metrics(node: &Value, s: &Sample<Usage>, window: Duration, now: Timestamp) -> Value {
    let m = NodeMetrics {
        metadata: meta(node, now),
        timestamp: Time(s.timestamp),
        window,
        usage: usage_quantities(s.usage),
    };
    finish(&m, window)
}

/// A `PodMetrics` (without `kind`/`apiVersion`), containers in the Summary's order.
pub fn pod_metrics(
    pod: &Value,
    s: &Sample<Vec<(String, Usage)>>,
    window: Duration,
    now: Timestamp,
) -> Value {
    let m = PodMetrics {
        metadata: meta(pod, now),
        timestamp: Time(s.timestamp),
        window,
        containers: s
            .usage
            .iter()
            .map(|(name, u)| Container {
                name: name.clone(),
                usage: usage_quantities(*u),
            })
            .collect(),
    };
    finish(&m, window)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn quantities_print_as_metrics_servers() {
        assert_eq!(cpu_quantity(6_082_165).0, "6082165n");
        assert_eq!(cpu_quantity(5_000_000).0, "5m");
        assert_eq!(cpu_quantity(1_500_000_000).0, "1500m");
        assert_eq!(cpu_quantity(2_000_000_000).0, "2");
        assert_eq!(cpu_quantity(120_000).0, "120u");
        assert_eq!(cpu_quantity(0).0, "0");
        assert_eq!(memory_quantity(22_806_528).0, "22272Ki");
        assert_eq!(memory_quantity(3 << 30).0, "3Gi");
        assert_eq!(memory_quantity(1_000_001).0, "1000001");
        assert_eq!(memory_quantity(1000).0, "1k");
        assert_eq!(memory_quantity(512).0, "512");
    }

    #[test]
    fn windows_print_as_go_durations() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_millis(14_982)), "14.982s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
    }

    fn summary() -> Value {
        json!({
            "node": {
                "nodeName": "n1",
                "cpu": {"time": "2024-05-01T10:00:10Z", "usageNanoCores": 196_382_978u64, "usageCoreNanoSeconds": 5},
                "memory": {"time": "2024-05-01T10:00:10Z", "workingSetBytes": 1_893_208_064u64},
            },
            "pods": [
                {
                    "podRef": {"name": "web", "namespace": "default", "uid": "u1"},
                    "containers": [
                        {"name": "app", "cpu": {"time": "2024-05-01T10:00:12Z", "usageNanoCores": 1_000_000}, "memory": {"time": "2024-05-01T10:00:12Z", "workingSetBytes": 4_194_304}},
                        {"name": "side", "cpu": {"time": "2024-05-01T10:00:11Z", "usageNanoCores": 0}, "memory": {"time": "2024-05-01T10:00:11Z", "workingSetBytes": 1_048_576}},
                    ],
                },
                {
                    "podRef": {"name": "fresh", "namespace": "default", "uid": "u2"},
                    "containers": [
                        {"name": "app", "cpu": {"time": "2024-05-01T10:00:12Z"}, "memory": {"time": "2024-05-01T10:00:12Z", "workingSetBytes": 4096}},
                    ],
                },
            ],
        })
    }

    #[test]
    fn a_summary_gives_node_and_pod_usage_once_rates_exist() {
        let s = parse(&summary());
        let node = s.node.expect("node usage");
        assert_eq!(node.usage.cpu_nanocores, 196_382_978);
        assert_eq!(
            node.timestamp,
            "2024-05-01T10:00:10Z".parse::<Timestamp>().expect("time")
        );
        let (uid, web) = &s.pods[&("default".to_string(), "web".to_string())];
        assert_eq!(uid, "u1");
        let web = web.as_ref().expect("web has metrics");
        assert_eq!(
            web.timestamp,
            "2024-05-01T10:00:11Z".parse::<Timestamp>().expect("time"),
            "the earliest container sample"
        );
        assert_eq!(web.usage.len(), 2);
        // A container without a rate yet: the pod has no metrics.
        assert!(
            s.pods[&("default".to_string(), "fresh".to_string())]
                .1
                .is_none()
        );
        assert_eq!(parse(&json!({"node": {"nodeName": "n1"}})).node, None);
    }

    #[test]
    fn pod_metrics_have_metrics_servers_shape() {
        let s = parse(&summary());
        let web = s.pods[&("default".to_string(), "web".to_string())]
            .1
            .clone()
            .expect("metrics");
        let pod = json!({"metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "uid": "u1"}});
        let now: Timestamp = "2024-05-01T10:00:20Z".parse().expect("time");
        let m = pod_metrics(&pod, &web, Duration::from_secs(10), now);
        assert_eq!(
            m,
            json!({
                "metadata": {
                    "name": "web",
                    "namespace": "default",
                    "labels": {"app": "web"},
                    "creationTimestamp": "2024-05-01T10:00:20Z",
                },
                "timestamp": "2024-05-01T10:00:11Z",
                "window": "10s",
                "containers": [
                    {"name": "app", "usage": {"cpu": "1m", "memory": "4Mi"}},
                    {"name": "side", "usage": {"cpu": "0", "memory": "1Mi"}},
                ],
            })
        );
        let node = json!({"metadata": {"name": "n1"}});
        let m = node_metrics(&node, &s.node.expect("node"), Duration::from_secs(10), now);
        assert_eq!(
            m["usage"],
            json!({"cpu": "196382978n", "memory": "1848836Ki"})
        );
        assert_eq!(m["metadata"]["name"], "n1");
        assert!(m["metadata"].get("namespace").is_none());
    }

    #[test]
    fn only_ready_nodes_with_an_agent_endpoint_are_scraped() {
        let node = |ready: &str, port: Option<i64>| {
            let mut n = json!({"status": {"conditions": [{"type": "Ready", "status": ready}]}});
            if let Some(p) = port {
                n["status"]["daemonEndpoints"] = json!({"kubeletEndpoint": {"Port": p}});
            }
            n
        };
        assert!(scrapable(&node("True", Some(10250))));
        assert!(!scrapable(&node("False", Some(10250))));
        assert!(!scrapable(&node("True", None)));
    }
}
