//! A real in-process API server with hand-made Nodes, a scheduler against it, and waits on
//! conditions with deadlines.

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use scheduler::{Readiness, Scheduler, SchedulerConfig};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const TIMEOUT: Duration = Duration::from_secs(40);

pub struct Cluster {
    pub server: apiserver::Running,
    pub client: kube::Client,
    pub stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.cancel();
        self.server.stop.cancel();
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

impl Cluster {
    pub async fn start() -> Cluster {
        init_tracing();
        let (server, client, dir) = apiserver::testing::memory_server().await;
        Cluster {
            server,
            client,
            stop: CancellationToken::new(),
            _dir: dir,
        }
    }

    /// Starts a scheduler and waits until it has synced.
    pub async fn scheduler(&self, config: SchedulerConfig) -> Readiness {
        let s = Scheduler::new(self.client.clone(), config).expect("scheduler config");
        let ready = s.readiness();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            if let Err(e) = s.run(stop).await {
                panic!("scheduler failed: {e}");
            }
        });
        tokio::time::timeout(TIMEOUT, ready.wait())
            .await
            .expect("scheduler ready");
        ready
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    pub fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    /// Creates a Ready node with `labels` (plus `kubernetes.io/hostname`), `allocatable`
    /// and `taints`.
    pub async fn node(&self, name: &str, labels: Value, allocatable: Value, taints: Value) -> Node {
        let mut labels = labels;
        labels["kubernetes.io/hostname"] = json!(name);
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints},
        }))
        .expect("node");
        let created = self
            .nodes()
            .create(&PostParams::default(), &node)
            .await
            .expect("create node");
        let status = json!({"status": {
            "capacity": allocatable, "allocatable": allocatable,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status"}],
        }});
        self.nodes()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
            .await
            .unwrap_or(created)
    }

    /// A node with 4 cpu, 8Gi memory, 110 pods.
    pub async fn plain_node(&self, name: &str, labels: Value) -> Node {
        self.node(
            name,
            labels,
            json!({"cpu": "4", "memory": "8Gi", "pods": "110"}),
            json!([]),
        )
        .await
    }

    pub async fn pod(&self, v: Value) -> Pod {
        let mut v = v;
        v["apiVersion"] = json!("v1");
        v["kind"] = json!("Pod");
        if v["spec"]["containers"].is_null() {
            v["spec"]["containers"] = json!([{"name": "app", "image": "busybox"}]);
        }
        let pod: Pod = serde_json::from_value(v).expect("pod");
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .expect("create pod")
    }

    pub async fn get_pod(&self, name: &str) -> Pod {
        self.pods().get(name).await.expect("get pod")
    }

    /// Waits until the pod is bound; returns its node.
    pub async fn bound(&self, name: &str) -> String {
        wait(&format!("pod {name} bound"), || async {
            let p = self.pods().get_opt(name).await.ok().flatten()?;
            p.spec.and_then(|s| s.node_name).filter(|n| !n.is_empty())
        })
        .await
    }

    /// Waits for `PodScheduled=False` reason `Unschedulable` and returns its message.
    pub async fn unschedulable(&self, name: &str) -> String {
        wait(&format!("pod {name} unschedulable"), || async {
            let p = self.pods().get_opt(name).await.ok().flatten()?;
            let c = p
                .status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "PodScheduled")?;
            (c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
                .then_some(c.message.unwrap_or_default())
        })
        .await
    }

    /// Events about pod `name`.
    pub async fn events(&self, name: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), "default");
        api.list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .collect()
    }

    /// Waits for an event with `reason` about pod `name`.
    pub async fn event(&self, name: &str, reason: &str) -> Event {
        wait(&format!("{reason} event for {name}"), || async {
            self.events(name)
                .await
                .into_iter()
                .find(|e| e.reason.as_deref() == Some(reason))
        })
        .await
    }

    /// Plays the kubelet for pods being deleted: finishes their deletion at once.
    pub fn finalize_terminating_pods(&self) {
        let pods = self.pods();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                if let Ok(list) = pods.list(&ListParams::default()).await {
                    for p in list.items {
                        if p.metadata.deletion_timestamp.is_some() {
                            let name = p.metadata.name.unwrap_or_default();
                            let _ = pods
                                .delete(&name, &DeleteParams::default().grace_period(0))
                                .await;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
}

/// Polls `f` until it yields a value; panics after [`TIMEOUT`].
pub async fn wait<T, F, Fut>(what: &str, f: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
