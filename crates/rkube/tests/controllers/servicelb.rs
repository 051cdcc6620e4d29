//! Service load balancer controller: a LoadBalancer Service's ingress addresses are the
//! Ready nodes' addresses, follow the nodes, and go when the Service stops being one.

use super::common::apply;
use super::{DEADLINE, cluster, names, sorted_values, wait_for};

fn lb_ips(s: &super::common::Server, svc: &str) -> Vec<String> {
    sorted_values(
        s,
        &["get", "service", svc],
        "{.status.loadBalancer.ingress[*].ip}",
    )
}

fn node_ips(s: &super::common::Server) -> Vec<String> {
    sorted_values(
        s,
        &["get", "nodes"],
        r#"{.items[*].status.addresses[?(@.type=="InternalIP")].address}"#,
    )
}

#[test]
fn load_balancer_addresses_are_the_ready_nodes() {
    let (s, _sim) = cluster();
    apply(
        &s,
        r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: other-class}
spec:
  type: LoadBalancer
  loadBalancerClass: example.com/lb
  selector: {app: web}
  ports: [{port: 80}]
"#,
    );
    let all = node_ips(&s);
    assert_eq!(all.len(), 3, "{all:?}");
    wait_for(DEADLINE, "the three nodes' addresses on web", || {
        (lb_ips(&s, "web") == all).then_some(())
    });
    // kubectl shows them as the EXTERNAL-IP.
    let row = s.ok(&["get", "service", "web", "--no-headers"]);
    assert!(row.contains(&all.join(",")), "{row}");

    // A node that goes leaves the list.
    let nodes = names(&s, &["nodes"]);
    s.ok(&["delete", "node", &nodes[0]]);
    let left = node_ips(&s);
    assert_eq!(left.len(), 2, "{left:?}");
    wait_for(DEADLINE, "the remaining two addresses", || {
        (lb_ips(&s, "web") == left).then_some(())
    });

    // Another class's Service is left to its controller.
    assert!(lb_ips(&s, "other-class").is_empty());

    // No longer a LoadBalancer: no addresses.
    s.ok(&[
        "patch",
        "service",
        "web",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ]);
    wait_for(DEADLINE, "web without addresses", || {
        lb_ips(&s, "web").is_empty().then_some(())
    });
}
