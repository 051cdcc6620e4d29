//! Many simulated nodes from one process: all register Ready with their leases. (5,000
//! nodes, with their RSS and the pods/s they take, are measured by `rkube bench
//! scheduler`; tests assert nothing about time.)

mod common;

use common::cluster;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use kubelet::{Sim, SimConfig};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_two_hundred_nodes_with_leases() {
    let c = cluster().await;
    let client = c.client.clone();
    let stop = CancellationToken::new();
    let cfg = SimConfig {
        nodes: 200,
        name_prefix: "many-".into(),
        ..SimConfig::default()
    };
    let sim = Sim::start(client.clone(), cfg, stop.clone())
        .await
        .expect("simulator starts");
    eprintln!(
        "registered 200 nodes and their leases in {:?}",
        sim.registration_time()
    );
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("list nodes");
    assert_eq!(nodes.items.len(), 200);
    let ready = nodes
        .items
        .iter()
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count();
    assert_eq!(ready, 200);
    let leases = Api::<Lease>::namespaced(client.clone(), "kube-node-lease")
        .list(&ListParams::default())
        .await
        .expect("list leases");
    assert_eq!(leases.items.len(), 200);
    stop.cancel();
    sim.join().await;
}
