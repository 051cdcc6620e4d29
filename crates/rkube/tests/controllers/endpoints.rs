//! Endpoints and EndpointSlice controllers: a Service's selected pods, ports resolved by
//! name, scaling reflected, headless Services, and both gone with the Service.

use super::common::{apply, jsonpath};
use super::{DEADLINE, cluster, names, rollout_status, sorted_values, wait_for};

const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: busybox, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
"#;

fn endpoint_ips(s: &super::common::Server, name: &str) -> Vec<String> {
    sorted_values(
        s,
        &["get", "endpoints", name],
        "{.subsets[*].addresses[*].ip}",
    )
}

fn pod_ips(s: &super::common::Server) -> Vec<String> {
    sorted_values(
        s,
        &["get", "pods", "-l", "app=web"],
        "{.items[*].status.podIP}",
    )
}

#[test]
fn services_list_their_pods_in_endpoints_and_endpoint_slices() {
    let (s, _sim) = cluster();
    apply(&s, APP);
    rollout_status(&s, "deploy/web");
    let ips = wait_for(DEADLINE, "3 endpoints", || {
        let ips = endpoint_ips(&s, "web");
        (ips.len() == 3 && ips == pod_ips(&s)).then_some(ips)
    });
    // The named targetPort resolved to the container port.
    assert_eq!(
        jsonpath(
            &s,
            &["get", "endpoints", "web"],
            "{.subsets[0].ports[0].port}"
        ),
        "8080"
    );
    let shown = s.ok(&["get", "endpoints", "web"]);
    assert!(shown.contains(&format!("{}:8080", ips[0])), "{shown}");
    // The slice: same addresses, ready, owned by the Service.
    let slice = wait_for(DEADLINE, "an EndpointSlice with 3 endpoints", || {
        let n = names(
            &s,
            &["endpointslices", "-l", "kubernetes.io/service-name=web"],
        );
        let first = n.first()?.clone();
        let count = jsonpath(
            &s,
            &["get", "endpointslice", &first],
            "{.endpoints[*].addresses[0]}",
        );
        (count.split_whitespace().count() == 3).then_some(first)
    });
    let ready = jsonpath(
        &s,
        &["get", "endpointslice", &slice],
        "{.endpoints[*].conditions.ready}",
    );
    assert_eq!(ready, "true true true");
    assert_eq!(
        jsonpath(&s, &["get", "endpointslice", &slice], "{.ports[0].port}"),
        "8080"
    );
    assert_eq!(
        jsonpath(
            &s,
            &["get", "endpointslice", &slice],
            "{.metadata.ownerReferences[0].kind}"
        ),
        "Service"
    );
    // Headless without ports: the pods, no ports.
    wait_for(DEADLINE, "headless endpoints", || {
        (endpoint_ips(&s, "web-headless") == ips).then_some(())
    });

    s.ok(&["scale", "deploy/web", "--replicas=1"]);
    wait_for(DEADLINE, "1 endpoint after scaling", || {
        (endpoint_ips(&s, "web").len() == 1).then_some(())
    });

    s.ok(&["delete", "service", "web"]);
    wait_for(
        DEADLINE,
        "endpoints and slices gone with the Service",
        || {
            let eps = names(&s, &["endpoints"]);
            let slices = names(
                &s,
                &["endpointslices", "-l", "kubernetes.io/service-name=web"],
            );
            (!eps.contains(&"web".to_string()) && slices.is_empty()).then_some(())
        },
    );
}
