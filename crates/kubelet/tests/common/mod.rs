//! A real rkube API server in-process (memory store, free port, temp data dir) and a
//! kube-rs client for it, plus the waits and objects the simulator tests share.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kube::api::{Api, ObjectMeta, PostParams};
use kubelet::SimConfig;

pub struct Cluster {
    pub client: kube::Client,
    pub server: apiserver::Running,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.server.stop.cancel();
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kubelet=info".into()),
        )
        .with_test_writer()
        .try_init();
}

pub async fn cluster() -> Cluster {
    init_tracing();
    let (server, client, dir) = apiserver::testing::memory_server().await;
    Cluster {
        client,
        server,
        _dir: dir,
    }
}

/// A simulator config with intervals short enough for tests.
pub fn sim_config(nodes: usize, prefix: &str) -> SimConfig {
    SimConfig {
        nodes,
        name_prefix: prefix.to_string(),
        lease_renew_interval: Duration::from_millis(300),
        pod_run_duration: Duration::from_millis(300),
        ..SimConfig::default()
    }
}

/// Polls `check` until it yields a value or `timeout` passes (then panics naming `what`).
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn pod(name: &str, restart_policy: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some([("app".to_string(), name.to_string())].into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some(restart_policy.to_string()),
            containers: vec![Container {
                name: "app".into(),
                image: Some("busybox:1.36".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

/// Creates `pod` in `default` and binds it to `node` through `pods/binding`, as a
/// scheduler does.
pub async fn create_and_bind(client: &kube::Client, pod: &Pod, node: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let created = pods
        .create(&PostParams::default(), pod)
        .await
        .expect("create pod");
    let name = created.metadata.name.clone().expect("name");
    let binding = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    let _: serde_json::Value = pods
        .create_subresource("binding", &name, &PostParams::default(), &binding)
        .await
        .expect("bind pod");
}

pub fn condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a str> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

pub fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}
