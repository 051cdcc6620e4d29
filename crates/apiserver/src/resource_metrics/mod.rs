//! `metrics.k8s.io/v1beta1`, what `kubectl top` and autoscalers read: `nodes`
//! (`NodeMetrics`, cluster-scoped) and `pods` (`PodMetrics`, namespaced), verbs get and
//! list. Upstream serves them from metrics-server behind the aggregator; here the API
//! server builds them on request from the Summary API of the Ready nodes' agents, which
//! sample every 10 s. Nothing is stored, so the group lives outside the registry and is
//! added to discovery by hand.
//!
//! Behaviour follows metrics-server: only Running pods have metrics, a pod only once all
//! its containers have two samples, and the objects Get cannot find are NotFound the way
//! its listers say it (`pods "x" not found`, `node "x" not found`) or, for an object with
//! no metrics yet, `podmetrics.metrics.k8s.io "ns/x" not found`.
//!
//! # Layout
//! - `mod.rs`: discovery entries, routing, get and list, Table output.
//! - `summary.rs`: reading an agent's Summary; `NodeMetrics`/`PodMetrics` and quantities.

pub mod summary;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use apimachinery::registry::GroupInfo;
use apimachinery::selector::{FieldSelector, LabelSelector, field};
use apimachinery::status::ApiError;
use futures::StreamExt;
use http::{HeaderMap, Response, StatusCode};
use jiff::Timestamp;
use serde_json::{Value, json};

use self::summary::{NodeSummary, Usage};
use crate::codec::{self, Body};
use crate::request::{Query, RequestInfo};
use crate::state::ApiState;
use crate::table;

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
/// What the agents' rates are averaged over: their sampling period.
const WINDOW: Duration = Duration::from_secs(10);
/// Agents asked at once.
const SCRAPE_CONCURRENCY: usize = 32;

/// The group as discovery lists it.
pub fn group_info() -> GroupInfo {
    GroupInfo {
        name: GROUP.into(),
        versions: vec![VERSION.into()],
    }
}

/// `(resource, kind, namespaced)` of the group's resources, in discovery order.
const RESOURCES: &[(&str, &str, bool)] = &[
    ("nodes", "NodeMetrics", false),
    ("pods", "PodMetrics", true),
];

/// The `APIResourceList` of `/apis/metrics.k8s.io/v1beta1`, as metrics-server's (no
/// singular names, no short names).
pub fn api_resource_list() -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|(name, kind, namespaced)| {
            json!({
                "name": name,
                "singularName": "",
                "namespaced": namespaced,
                "kind": kind,
                "verbs": ["get", "list"],
            })
        })
        .collect();
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": format!("{GROUP}/{VERSION}"),
        "resources": resources,
    })
}

/// The group's entry in aggregated discovery (`APIGroupDiscovery`).
pub fn aggregated_group() -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|(name, kind, namespaced)| {
            json!({
                "resource": name,
                "responseKind": {"group": GROUP, "version": VERSION, "kind": kind},
                "scope": if *namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": "",
                "verbs": ["get", "list"],
            })
        })
        .collect();
    json!({
        "metadata": {"name": GROUP},
        "versions": [{"version": VERSION, "resources": resources, "freshness": "Current"}],
    })
}

fn not_served() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

/// Serves a request under `/apis/metrics.k8s.io/`.
pub async fn serve(
    state: &ApiState,
    info: &RequestInfo,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let namespaced = match (info.version.as_str(), info.resource.as_str()) {
        (VERSION, "nodes") => false,
        (VERSION, "pods") => true,
        _ => return Err(not_served()),
    };
    if info.subresource.is_some() || (!namespaced && info.namespace.is_some()) {
        return Err(not_served());
    }
    // A namespaced object is only reached through its namespace.
    if namespaced && info.name.is_some() && info.namespace.is_none() {
        return Err(not_served());
    }
    let now = Timestamp::now();
    let (items, kind, one) = match (info.verb, namespaced, info.name.as_deref()) {
        ("get", false, Some(name)) => {
            (vec![get_node(state, name, now).await?], "NodeMetrics", true)
        }
        ("get", true, Some(name)) => {
            let ns = info.namespace.as_deref().unwrap_or("");
            (
                vec![get_pod(state, ns, name, now).await?],
                "PodMetrics",
                true,
            )
        }
        ("list", false, None) => (nodes(state, query, now).await?, "NodeMetricsList", false),
        ("list", true, None) => (
            pods(state, info.namespace.as_deref(), query, now).await?,
            "PodMetricsList",
            false,
        ),
        _ => {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
    };
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    if table::wants_table(accept)
        && let Ok(table::Output::Table(version)) = table::negotiate(accept)
    {
        return Ok(codec::json(StatusCode::OK, &to_table(&items, version)));
    }
    let api_version = format!("{GROUP}/{VERSION}");
    let mut values = items.into_iter().map(|m| m.value);
    let body = if one {
        let mut v = values.next().unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("kind".into(), kind.into());
            o.insert("apiVersion".into(), api_version.into());
        }
        v
    } else {
        let items: Vec<Value> = values.collect();
        json!({"kind": kind, "apiVersion": api_version, "metadata": {}, "items": items})
    };
    Ok(codec::json(StatusCode::OK, &body))
}

/// One metrics object and its total usage (for Table cells).
struct Metric {
    value: Value,
    total: Usage,
}

/// Objects of a core resource from the watch cache (what metrics-server's listers hold),
/// under a namespace or all.
fn cached(state: &ApiState, resource: &str, namespace: Option<&str>) -> Vec<Value> {
    let registry = state.registry();
    let Some(rt) = registry.get("", "v1", resource) else {
        return Vec::new();
    };
    let cache = state.cache_of(rt);
    let prefix = namespace.map(|ns| format!("{}{ns}/", rt.storage_prefix()));
    cache
        .list(prefix.as_deref(), None)
        .iter()
        .map(|o| o.value.clone())
        .collect()
}

fn cached_one(
    state: &ApiState,
    resource: &str,
    namespace: Option<&str>,
    name: &str,
) -> Option<Value> {
    let registry = state.registry();
    let rt = registry.get("", "v1", resource)?;
    let key = rt.storage_key(namespace, name);
    state.cache_of(rt).get(&key).map(|o| o.value.clone())
}

/// The Summaries of these nodes (by name), from those that can be asked.
async fn summaries(state: &ApiState, nodes: &[Value]) -> HashMap<String, NodeSummary> {
    let asked: Vec<(String, Value)> = nodes
        .iter()
        .filter(|n| summary::scrapable(n))
        .map(|n| (name_of(n).to_string(), n.clone()))
        .collect();
    futures::stream::iter(asked)
        .map(|(name, node)| fetch(name, node, state.token.clone()))
        .buffer_unordered(SCRAPE_CONCURRENCY)
        .filter_map(futures::future::ready)
        .collect()
        .await
}

async fn fetch(name: String, node: Value, token: String) -> Option<(String, NodeSummary)> {
    summary::fetch(&node, &token).await.map(|s| (name, s))
}

/// Label and field selection as metrics-server applies them (fields: `metadata.name`,
/// `metadata.namespace`).
fn selectors(
    query: &Query,
    kind: &str,
) -> Result<(Option<LabelSelector>, Option<FieldSelector>), ApiError> {
    let label = query
        .value("labelSelector")
        .map(LabelSelector::parse)
        .transpose()?;
    let field = query
        .value("fieldSelector")
        .map(|s| field::parse(GROUP, kind, s))
        .transpose()?;
    Ok((label, field))
}

fn selected(obj: &Value, label: &Option<LabelSelector>, field: &Option<FieldSelector>) -> bool {
    label.as_ref().is_none_or(|l| l.matches_object(obj))
        && field.as_ref().is_none_or(|f| f.matches(obj))
}

fn name_of(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or_default()
}

async fn nodes(state: &ApiState, query: &Query, now: Timestamp) -> Result<Vec<Metric>, ApiError> {
    let (label, field) = selectors(query, "NodeMetrics")?;
    let nodes: Vec<Value> = cached(state, "nodes", None)
        .into_iter()
        .filter(|n| selected(n, &label, &field))
        .collect();
    let summaries = summaries(state, &nodes).await;
    let mut items: Vec<Metric> = nodes
        .iter()
        .filter_map(|n| {
            let sample = summaries.get(name_of(n))?.node.as_ref()?;
            Some(Metric {
                value: summary::node_metrics(n, sample, WINDOW, now),
                total: sample.usage,
            })
        })
        .collect();
    items.sort_by(|a, b| name_of(&a.value).cmp(name_of(&b.value)));
    Ok(items)
}

async fn get_node(state: &ApiState, name: &str, now: Timestamp) -> Result<Metric, ApiError> {
    // metrics-server's node lister names the resource in the singular.
    let node = cached_one(state, "nodes", None, name)
        .ok_or_else(|| ApiError::not_found("", "node", name))?;
    let summaries = summaries(state, std::slice::from_ref(&node)).await;
    let sample = summaries
        .get(name)
        .and_then(|s| s.node.as_ref())
        .ok_or_else(|| ApiError::not_found(GROUP, "nodemetrics", name))?;
    Ok(Metric {
        value: summary::node_metrics(&node, sample, WINDOW, now),
        total: sample.usage,
    })
}

fn running(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
}

/// The pod's metrics in its node's Summary, matched by namespace and name (and uid, so a
/// pod recreated under the same name never shows its predecessor's usage).
fn pod_sample<'a>(
    pod: &Value,
    summaries: &'a HashMap<String, NodeSummary>,
) -> Option<&'a summary::Sample<Vec<(String, Usage)>>> {
    let node = pod["spec"]["nodeName"].as_str()?;
    let key = (
        pod["metadata"]["namespace"].as_str()?.to_string(),
        name_of(pod).to_string(),
    );
    let (uid, sample) = summaries.get(node)?.pods.get(&key)?;
    let want = pod["metadata"]["uid"].as_str().unwrap_or_default();
    if !uid.is_empty() && !want.is_empty() && uid != want {
        return None;
    }
    sample.as_ref()
}

/// The nodes the pods run on.
fn nodes_of(state: &ApiState, pods: &[Value]) -> Vec<Value> {
    let names: BTreeSet<&str> = pods
        .iter()
        .filter_map(|p| p["spec"]["nodeName"].as_str())
        .collect();
    names
        .into_iter()
        .filter_map(|n| cached_one(state, "nodes", None, n))
        .collect()
}

async fn pods(
    state: &ApiState,
    namespace: Option<&str>,
    query: &Query,
    now: Timestamp,
) -> Result<Vec<Metric>, ApiError> {
    let (label, field) = selectors(query, "PodMetrics")?;
    let pods: Vec<Value> = cached(state, "pods", namespace)
        .into_iter()
        .filter(|p| running(p) && selected(p, &label, &field))
        .collect();
    let summaries = summaries(state, &nodes_of(state, &pods)).await;
    let mut items: Vec<(&str, &str, Metric)> = pods
        .iter()
        .filter_map(|p| {
            let sample = pod_sample(p, &summaries)?;
            let ns = p["metadata"]["namespace"].as_str().unwrap_or_default();
            Some((ns, name_of(p), pod_metric(p, sample, now)))
        })
        .collect();
    items.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    Ok(items.into_iter().map(|(_, _, m)| m).collect())
}

fn pod_metric(
    pod: &Value,
    sample: &summary::Sample<Vec<(String, Usage)>>,
    now: Timestamp,
) -> Metric {
    Metric {
        value: summary::pod_metrics(pod, sample, WINDOW, now),
        total: sample
            .usage
            .iter()
            .fold(Usage::default(), |acc, (_, u)| acc + *u),
    }
}

async fn get_pod(
    state: &ApiState,
    namespace: &str,
    name: &str,
    now: Timestamp,
) -> Result<Metric, ApiError> {
    // metrics-server only knows Running pods: any other is not found.
    let pod = cached_one(state, "pods", Some(namespace), name)
        .filter(running)
        .ok_or_else(|| ApiError::not_found("", "pods", name))?;
    let summaries = summaries(state, &nodes_of(state, std::slice::from_ref(&pod))).await;
    let sample = pod_sample(&pod, &summaries)
        .ok_or_else(|| ApiError::not_found(GROUP, "podmetrics", &format!("{namespace}/{name}")))?;
    Ok(pod_metric(&pod, sample, now))
}

/// metrics-server's Table: the name, each resource's total (a pod's containers summed),
/// and the window.
fn to_table(items: &[Metric], version: table::MetaVersion) -> Value {
    let rows: Vec<Value> = items
        .iter()
        .map(|m| {
            json!({
                "cells": [
                    name_of(&m.value),
                    summary::cpu_quantity(m.total.cpu_nanocores).0,
                    summary::memory_quantity(m.total.memory_bytes).0,
                    m.value["window"],
                ],
                "object": table::partial_object_metadata(&m.value, version),
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": version.api_version(),
        "metadata": {},
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "Name of the resource", "priority": 0},
            {"name": "cpu", "type": "string", "format": "quantity", "description": "", "priority": 0},
            {"name": "memory", "type": "string", "format": "quantity", "description": "", "priority": 0},
            {"name": "Window", "type": "string", "format": "duration", "description": "", "priority": 0},
        ],
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_lists_both_resources_with_get_and_list() {
        let list = api_resource_list();
        assert_eq!(list["groupVersion"], "metrics.k8s.io/v1beta1");
        assert_eq!(list["resources"][0]["name"], "nodes");
        assert_eq!(list["resources"][0]["namespaced"], false);
        assert_eq!(list["resources"][1]["kind"], "PodMetrics");
        assert_eq!(list["resources"][1]["verbs"], json!(["get", "list"]));
        let agg = aggregated_group();
        assert_eq!(agg["metadata"]["name"], "metrics.k8s.io");
        assert_eq!(agg["versions"][0]["resources"][1]["scope"], "Namespaced");
    }

    #[test]
    fn tables_sum_a_pods_containers() {
        let pod = json!({"metadata": {"name": "web", "namespace": "default"}});
        let sample = summary::Sample {
            timestamp: Timestamp::UNIX_EPOCH,
            usage: vec![
                (
                    "a".to_string(),
                    Usage {
                        cpu_nanocores: 1_000_000,
                        memory_bytes: 4 << 20,
                    },
                ),
                (
                    "b".to_string(),
                    Usage {
                        cpu_nanocores: 500_000,
                        memory_bytes: 1 << 20,
                    },
                ),
            ],
        };
        let m = pod_metric(&pod, &sample, Timestamp::UNIX_EPOCH);
        let t = to_table(&[m], table::MetaVersion::V1);
        assert_eq!(t["rows"][0]["cells"], json!(["web", "1500u", "5Mi", "10s"]));
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "web");
        assert_eq!(t["columnDefinitions"][3]["name"], "Window");
    }
}
