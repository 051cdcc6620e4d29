//! The proxy's cluster view against a real rkube API server in-process (memory store).

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use proxy::cluster::{Cluster, Kind};
use tokio_util::sync::CancellationToken;

/// The node's loops (rules, DNS, Ingress, LoadBalancer status) wait for the same watches at
/// the same time; every one of them must get going, and every one must see a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_waiting_loop_starts_and_sees_changes() {
    let (server, client, _dir) = apiserver::testing::memory_server().await;
    let stop = CancellationToken::new();
    let cluster = Cluster::watch(&client, &stop);
    let loops: Vec<_> = (0..4)
        .map(|_| {
            let cluster = cluster.clone();
            let mut changes = cluster.changes(&[Kind::Service]);
            tokio::spawn(async move {
                cluster.ready(&[Kind::Service, Kind::EndpointSlice]).await;
                // The first change is "build the initial state"; the second is the new one.
                assert!(changes.next().await);
                while !cluster
                    .services
                    .state()
                    .iter()
                    .any(|s| s.metadata.name.as_deref() == Some("web"))
                {
                    assert!(changes.next().await, "watch ended");
                }
            })
        })
        .collect();
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ports": [{"port": 80}]},
    }))
    .expect("service");
    Api::<Service>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &svc)
        .await
        .expect("create");
    // A loop that was never woken hangs; the deadline only turns that into a failure.
    let all = futures::future::join_all(loops);
    let done = tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("every loop started and saw the new Service");
    for d in done {
        d.expect("loop task");
    }
    stop.cancel();
    server.stop.cancel();
}
