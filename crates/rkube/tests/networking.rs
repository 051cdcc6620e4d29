//! Service networking on a real node (containerd on this machine, busybox pods), seen
//! from inside pods and from the host: ClusterIP routing by DNS name balanced across a
//! Deployment, NodePort on 127.0.0.1, a LoadBalancer on the node's address, session
//! affinity, scaling and readiness changing the backends,
//! headless StatefulSet names, the seed Ingress on port 80, and NetworkPolicies.
//!
//! The node's networking owns host-wide iptables chains and ports 80/443, so these tests
//! take turns.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Mutex;

use common::{MINUTE, Node, Server, apply, jsonpath, wait_for};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// An httpd Deployment whose pods answer their own name; ready while /tmp/ready exists.
fn httpd(name: &str, replicas: u32, labels: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{{labels}}}}}
  template:
    metadata: {{labels: {{{labels}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox
        command: ["sh", "-c", "mkdir -p /www && echo $HOSTNAME > /www/index.html && echo api-$HOSTNAME > /www/api && touch /tmp/ready && exec httpd -f -p 8080 -h /www"]
        ports: [{{containerPort: 8080, name: http}}]
        readinessProbe:
          exec: {{command: ["cat", "/tmp/ready"]}}
          periodSeconds: 1
"#
    )
}

fn client_pod(name: &str, labels: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{{labels}}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
"#
    )
}

fn wait_ready(s: &Server, selector: &str, n: usize) -> Vec<String> {
    wait_for(MINUTE, &format!("{n} ready pods {selector}"), || {
        let out = jsonpath(
            s,
            &["get", "pods", "-l", selector],
            r#"{range .items[*]}{.metadata.name}|{.status.conditions[?(@.type=="Ready")].status}|{.metadata.deletionTimestamp}{"\n"}{end}"#,
        );
        let ready: Vec<String> = out
            .lines()
            .filter_map(|l| {
                let mut p = l.split('|');
                let name = p.next()?;
                (p.next() == Some("True") && p.next() == Some("")).then(|| name.to_string())
            })
            .collect();
        (ready.len() == n).then_some(ready)
    })
}

/// `count` requests from pod `from` to `url`: the answers (one line each, failures as
/// `FAIL`).
fn fetch_from(s: &Server, from: &str, url: &str, count: u32) -> Vec<String> {
    let script = format!(
        "for i in $(seq {count}); do timeout 3 wget -qO- {url} || echo FAIL; done 2>/dev/null"
    );
    let out = s.kubectl(&["exec", from, "--", "sh", "-c", &script]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-m", "5"])
        .args(args)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn services_route_by_name_balance_and_follow_endpoints() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = Node::networked(&[]);
    apply(&s, &httpd("web", 2, "app: web"));
    apply(
        &s,
        r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-sticky}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-lb}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{port: 8081, targetPort: http}]
"#,
    );
    apply(&s, &client_pod("client", "app: client"));
    let pods: BTreeSet<String> = wait_ready(&s, "app=web", 2).into_iter().collect();
    wait_ready(&s, "app=client", 1);

    // Through the cluster DNS name and the ClusterIP, both pods answer.
    let seen = wait_for(MINUTE, "both web pods behind the ClusterIP", || {
        let got: BTreeSet<String> =
            fetch_from(&s, "client", "http://web.default.svc.cluster.local", 12)
                .into_iter()
                .collect();
        (got == pods).then_some(got)
    });
    assert_eq!(seen, pods);

    // The NodePort on the host's loopback.
    let answer = curl(&["http://127.0.0.1:30080/"]);
    assert!(pods.contains(&answer), "NodePort answered {answer:?}");

    // A LoadBalancer Service reports the node's address and answers on it (with
    // externalTrafficPolicy: Local every endpoint here is local).
    let node_ip = jsonpath(
        &s,
        &["get", "nodes"],
        r#"{.items[0].status.addresses[?(@.type=="InternalIP")].address}"#,
    );
    let lb_ip = wait_for(MINUTE, "the LoadBalancer's ingress address", || {
        let ip = jsonpath(
            &s,
            &["get", "service", "web-lb"],
            "{.status.loadBalancer.ingress[0].ip}",
        );
        (!ip.is_empty()).then_some(ip)
    });
    assert_eq!(lb_ip, node_ip);
    let answer = curl(&[&format!("http://{lb_ip}:8081/")]);
    assert!(
        pods.contains(&answer),
        "the LoadBalancer answered {answer:?}"
    );

    // Scaling up adds the new pod to the backends.
    s.ok(&["scale", "deployment/web", "--replicas=3"]);
    let three: BTreeSet<String> = wait_ready(&s, "app=web", 3).into_iter().collect();
    wait_for(MINUTE, "the third pod behind the ClusterIP", || {
        let got: BTreeSet<String> = fetch_from(&s, "client", "http://web", 15)
            .into_iter()
            .collect();
        (got == three).then_some(())
    });

    // sessionAffinity: ClientIP keeps one client on one of the three pods.
    let sticky = fetch_from(&s, "client", "http://web-sticky", 12);
    let first = sticky.first().cloned().unwrap_or_default();
    assert!(three.contains(&first), "web-sticky answered {sticky:?}");
    assert!(
        sticky.iter().all(|a| *a == first),
        "one client, several pods: {sticky:?}"
    );

    // A pod that turns unready stops receiving traffic.
    let unready = three.iter().next().expect("a pod").clone();
    s.ok(&["exec", &unready, "--", "rm", "/tmp/ready"]);
    wait_ready(&s, "app=web", 2);
    wait_for(MINUTE, "the endpoints without the unready pod", || {
        let ips = jsonpath(
            &s,
            &["get", "endpoints", "web"],
            "{.subsets[*].addresses[*].ip}",
        );
        (ips.split_whitespace().count() == 2).then_some(())
    });
    // The proxy follows the endpoints; once it has, no request reaches the pod.
    wait_for(MINUTE, "traffic only to the ready pods", || {
        let got = fetch_from(&s, "client", "http://web", 20);
        (!got.contains(&unready) && !got.iter().any(|l| l == "FAIL")).then_some(())
    });
    let got = fetch_from(&s, "client", "http://web", 20);
    assert!(!got.contains(&unready), "unready pod answered: {got:?}");
}

#[test]
fn headless_statefulset_pods_resolve_by_name() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = Node::networked(&[]);
    apply(
        &s,
        r#"
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 8080, name: http}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox
        command: ["sleep", "3600"]
"#,
    );
    apply(&s, &client_pod("client", "app: client"));
    wait_ready(&s, "app=db", 2);
    wait_ready(&s, "app=client", 1);
    let ip0 = jsonpath(&s, &["get", "pod", "db-0"], "{.status.podIP}");
    let ip1 = jsonpath(&s, &["get", "pod", "db-1"], "{.status.podIP}");
    let lookup = |name: &str| {
        let out = s.kubectl(&["exec", "client", "--", "nslookup", name]);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let all = wait_for(MINUTE, "both StatefulSet pods in DNS", || {
        let out = lookup("db.default.svc.cluster.local");
        (out.contains(&ip0) && out.contains(&ip1)).then_some(out)
    });
    assert!(all.contains(&ip0) && all.contains(&ip1), "{all}");
    let one = lookup("db-0.db.default.svc.cluster.local");
    assert!(one.contains(&ip0) && !one.contains(&ip1), "{one}");
    // Short names through the search list, and the kubernetes Service.
    let api = lookup("kubernetes.default");
    assert!(api.contains("10.43.0.1"), "{api}");
    let missing = s.kubectl(&[
        "exec",
        "client",
        "--",
        "nslookup",
        "nope.default.svc.cluster.local",
    ]);
    assert!(!missing.status.success(), "a missing name must not resolve");
}

#[test]
fn seed_ingress_routes_by_host_and_path() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = Node::networked(&[]);
    apply(&s, &httpd("api", 1, "app: api"));
    apply(&s, &httpd("frontend", 1, "app: frontend"));
    apply(
        &s,
        r#"
apiVersion: v1
kind: Service
metadata: {name: api-service}
spec:
  selector: {app: api}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: frontend-service}
spec:
  selector: {app: frontend}
  ports: [{port: 80, targetPort: 8080}]
"#,
    );
    let api = wait_ready(&s, "app=api", 1).remove(0);
    let frontend = wait_ready(&s, "app=frontend", 1).remove(0);
    let seed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/manifests/seeds/007_001_Ingress.yaml"
    );
    s.ok(&["create", "-f", seed]);
    let host = "Host: app.example.com";
    let got = wait_for(MINUTE, "the api backend at /api", || {
        let got = curl(&["-H", host, "http://127.0.0.1/api"]);
        (got == format!("api-{api}")).then_some(got)
    });
    assert_eq!(got, format!("api-{api}"));
    assert_eq!(curl(&["-H", host, "http://127.0.0.1/"]), frontend);
    // Another host has no rule.
    assert_eq!(
        curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Host: other.example.com",
            "http://127.0.0.1/"
        ]),
        "404"
    );
    // The status carries the node's address.
    let node_ip = jsonpath(
        &s,
        &["get", "nodes"],
        r#"{.items[0].status.addresses[?(@.type=="InternalIP")].address}"#,
    );
    wait_for(MINUTE, "the Ingress status address", || {
        let ip = jsonpath(
            &s,
            &["get", "ingress", "app-ingress"],
            "{.status.loadBalancer.ingress[0].ip}",
        );
        (ip == node_ip).then_some(())
    });
    let class = jsonpath(&s, &["get", "ingressclass", "rkube"], "{.spec.controller}");
    assert_eq!(class, "rkube.io/ingress");
}

#[test]
fn network_policies_isolate_pods() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = Node::networked(&[]);
    apply(&s, &httpd("api", 1, "app: api"));
    apply(&s, &httpd("other", 1, "app: other"));
    apply(&s, &client_pod("frontend", "app: frontend"));
    apply(&s, &client_pod("stranger", "app: stranger"));
    wait_ready(&s, "app=api", 1);
    wait_ready(&s, "app=other", 1);
    wait_ready(&s, "app=frontend", 1);
    wait_ready(&s, "app=stranger", 1);
    let api_ip = jsonpath(
        &s,
        &["get", "pods", "-l", "app=api"],
        "{.items[0].status.podIP}",
    );
    let other_ip = jsonpath(
        &s,
        &["get", "pods", "-l", "app=other"],
        "{.items[0].status.podIP}",
    );
    let api_url = format!("http://{api_ip}:8080/");
    let other_url = format!("http://{other_ip}:8080/");
    let reaches = |from: &str, url: &str| fetch_from(&s, from, url, 1) != ["FAIL"];
    assert!(reaches("stranger", &api_url) && reaches("stranger", &other_url));

    // The seed policy: api pods take only frontend pods on 8080.
    let seed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/manifests/seeds/008_001_NetworkPolicy.yaml"
    );
    s.ok(&["create", "-f", seed]);
    wait_for(MINUTE, "the stranger refused by api", || {
        (!reaches("stranger", &api_url)).then_some(())
    });
    assert!(
        reaches("frontend", &api_url),
        "frontend must still reach api:8080"
    );
    assert!(
        reaches("stranger", &other_url),
        "other pods are not selected"
    );

    // Default deny for the namespace: nothing gets into the other pods either.
    apply(
        &s,
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny}
spec:
  podSelector: {}
  policyTypes: [Ingress]
"#,
    );
    wait_for(MINUTE, "default deny", || {
        (!reaches("stranger", &other_url)).then_some(())
    });
    assert!(!reaches("frontend", &other_url));
    assert!(
        reaches("frontend", &api_url),
        "the seed policy still lets frontend in"
    );

    // Deleting the policies opens the namespace again.
    s.ok(&["delete", "networkpolicy", "--all"]);
    wait_for(MINUTE, "traffic allowed again", || {
        reaches("stranger", &api_url).then_some(())
    });
}
