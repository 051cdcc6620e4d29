//! The real kubectl against `rkube server`: the seed manifests, reading them back in every
//! output format, discovery-driven commands, and everyday edits.

mod common;

use common::{Server, manifests_dir};

fn seed_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(manifests_dir().join("seeds"))
        .expect("seeds dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "expected the seed manifests, found {files:?}"
    );
    files
}

#[test]
fn every_seed_manifest_creates_and_reads_back() {
    // API read-back only: without controllers the seed Deployment makes no pods that the
    // label-selection checks below would also list.
    let s = Server::start(&["--disable-controllers"]);
    // The ResourceQuota seed lives in team-a, which a user creates first.
    s.ok(&["create", "namespace", "team-a"]);
    for f in seed_files() {
        let path = f.to_str().expect("utf-8 path");
        let out = s.ok(&["create", "-f", path]);
        assert!(out.contains("created"), "{path}: {out}");
    }
    let names = [
        ("configmap", "app-config"),
        ("secret", "db-secret"),
        ("statefulset", "postgres"),
        ("daemonset", "fluentd"),
        ("job", "backup-job"),
        ("cronjob", "daily-backup"),
        ("ingress", "app-ingress"),
        ("networkpolicy", "api-netpol"),
        ("storageclass", "high-performance-replicated"),
        ("pod", "resource-demo"),
        ("hpa", "app-hpa"),
        ("role", "pod-reader"),
        ("rolebinding", "read-pods"),
        ("service", "my-service"),
        ("crd", "databases.example.com"),
        ("pdb", "app-pdb"),
        ("namespace", "production"),
        ("deployment", "nginx-deployment"),
        ("svc", "nginx-service"),
        ("pvc", "database-pvc"),
        ("csidriver", "csi.example.com"),
        ("deploy", "my-app-deployment"),
        ("cm", "my-app-config"),
        ("po", "config-pod"),
    ];
    for (kind, name) in names {
        let out = s.ok(&["get", kind, name, "-o", "jsonpath={.metadata.name}"]);
        assert_eq!(out, name, "get {kind} {name}");
        let described = s.ok(&["describe", kind, name]);
        assert!(
            described.contains(name),
            "describe {kind} {name}: {described}"
        );
    }
    let quota = s.ok(&[
        "get",
        "resourcequota",
        "team-quota",
        "-n",
        "team-a",
        "-o",
        "jsonpath={.spec.hard.requests\\.cpu}",
    ]);
    assert_eq!(quota, "100");

    // Output formats.
    let yaml = s.ok(&["get", "configmap", "app-config", "-o", "yaml"]);
    assert!(
        yaml.contains("database_url: postgres://localhost:5432/mydb"),
        "{yaml}"
    );
    assert!(yaml.contains("resourceVersion:"), "{yaml}");
    let json: serde_json::Value =
        serde_json::from_str(&s.ok(&["get", "deployment", "nginx-deployment", "-o", "json"]))
            .expect("json");
    assert_eq!(json["spec"]["replicas"], 3);
    assert_eq!(json["metadata"]["generation"], 1);
    assert!(
        json["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    let cols = s.ok(&[
        "get",
        "pods",
        "-o",
        "custom-columns=NAME:.metadata.name,IMAGE:.spec.containers[0].image",
    ]);
    assert!(
        cols.lines().next().is_some_and(|l| l.starts_with("NAME")),
        "{cols}"
    );
    assert!(
        cols.contains("nginx-pod") && cols.contains("nginx:1.21"),
        "{cols}"
    );

    // Label selection and all namespaces.
    let by_label = s.ok(&["get", "pods", "-l", "app=nginx", "-o", "name"]);
    let mut got: Vec<&str> = by_label.lines().collect();
    got.sort();
    assert_eq!(got, ["pod/my-nginx-pod", "pod/nginx-pod"]);
    let set_based = s.ok(&[
        "get",
        "pods",
        "-l",
        "app in (nginx),app notin (x)",
        "-o",
        "name",
    ]);
    assert_eq!(set_based.lines().count(), 2, "{set_based}");
    let all = s.ok(&["get", "resourcequota,configmaps", "-A"]);
    assert!(
        all.contains("team-a") && all.contains("team-quota"),
        "{all}"
    );
    assert!(
        all.lines()
            .next()
            .is_some_and(|l| l.starts_with("NAMESPACE")),
        "{all}"
    );
    let field = s.ok(&[
        "get",
        "pods",
        "--field-selector",
        "metadata.name=config-pod",
        "-o",
        "name",
    ]);
    assert_eq!(field.trim(), "pod/config-pod");

    // Human-readable tables with upstream's columns.
    let header = |args: &[&str]| -> String {
        let out = s.ok(args);
        out.lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(header(&["get", "pods"]), "NAME READY STATUS RESTARTS AGE");
    assert_eq!(
        header(&["get", "pods", "-o", "wide"]),
        "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES"
    );
    assert_eq!(
        header(&["get", "deploy"]),
        "NAME READY UP-TO-DATE AVAILABLE AGE"
    );
    assert_eq!(
        header(&["get", "deploy", "-o", "wide"]),
        "NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR"
    );
    assert_eq!(
        header(&["get", "svc"]),
        "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE"
    );
    assert_eq!(header(&["get", "cm"]), "NAME DATA AGE");
    assert_eq!(header(&["get", "secrets"]), "NAME TYPE DATA AGE");
    assert_eq!(
        header(&["get", "jobs"]),
        "NAME STATUS COMPLETIONS DURATION AGE"
    );
    assert_eq!(
        header(&["get", "cronjobs"]),
        "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE"
    );
    let pods = s.ok(&["get", "pods"]);
    let row = pods
        .lines()
        .find(|l| l.starts_with("resource-demo"))
        .expect("resource-demo row");
    assert_eq!(
        row.split_whitespace().take(4).collect::<Vec<_>>(),
        ["resource-demo", "0/1", "Pending", "0"]
    );
    let svc = s.ok(&["get", "svc", "nginx-service"]);
    let cells: Vec<&str> = svc
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(cells[1], "LoadBalancer");
    assert!(cells[2].starts_with("10.43."), "{svc}");
    assert_eq!(cells[3], "<pending>");
    assert!(
        cells[4].starts_with("80:3") && cells[4].ends_with("/TCP"),
        "{svc}"
    );
    let labels = s.ok(&["get", "pods", "--show-labels", "-l", "app=nginx"]);
    assert!(labels.contains("app=nginx"), "{labels}");
}

#[test]
fn discovery_commands_work() {
    let s = Server::start(&[]);
    let resources = s.ok(&["api-resources"]);
    for expect in [
        "deployments",
        "deploy",
        "apps/v1",
        "pods",
        "po",
        "horizontalpodautoscalers",
        "customresourcedefinitions",
    ] {
        assert!(
            resources.contains(expect),
            "api-resources lacks {expect}: {resources}"
        );
    }
    let namespaced = s.ok(&["api-resources", "--namespaced=false", "-o", "name"]);
    assert!(namespaced.lines().any(|l| l == "nodes"), "{namespaced}");
    assert!(!namespaced.lines().any(|l| l == "pods"), "{namespaced}");
    let versions = s.ok(&["api-versions"]);
    for gv in [
        "v1",
        "apps/v1",
        "batch/v1",
        "autoscaling/v2",
        "autoscaling/v1",
        "networking.k8s.io/v1",
        "rbac.authorization.k8s.io/v1",
        "policy/v1",
        "storage.k8s.io/v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
        "scheduling.k8s.io/v1",
        "node.k8s.io/v1",
        "events.k8s.io/v1",
        "apiextensions.k8s.io/v1",
        "admissionregistration.k8s.io/v1",
        "certificates.k8s.io/v1",
    ] {
        assert!(
            versions.lines().any(|l| l == gv),
            "api-versions lacks {gv}: {versions}"
        );
    }
    let explain = s.ok(&["explain", "deployment.spec.strategy"]);
    assert!(
        explain.contains("KIND:") && explain.contains("Deployment"),
        "{explain}"
    );
    assert!(explain.contains("rollingUpdate"), "{explain}");
    let version = s.ok(&["version"]);
    assert!(version.contains("Server Version: v1.33"), "{version}");
}

#[test]
fn everyday_edits_with_kubectl() {
    let s = Server::start(&[]);
    s.ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=fast",
        "--from-literal=level=3",
    ]);
    s.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=password=s3cr3t",
    ]);
    assert_eq!(
        s.ok(&["get", "cm", "settings", "-o", "jsonpath={.data.mode}"]),
        "fast"
    );
    let pw = s.ok(&["get", "secret", "creds", "-o", "jsonpath={.data.password}"]);
    assert_eq!(pw, "czNjcjN0");

    s.ok(&["label", "configmap", "settings", "tier=backend"]);
    s.ok(&["annotate", "configmap", "settings", "owner=team-a"]);
    assert_eq!(
        s.ok(&["get", "cm", "-l", "tier=backend", "-o", "name"])
            .trim(),
        "configmap/settings"
    );
    assert_eq!(
        s.ok(&[
            "get",
            "cm",
            "settings",
            "-o",
            "jsonpath={.metadata.annotations.owner}"
        ]),
        "team-a"
    );
    // Overwriting a label needs --overwrite, as upstream.
    let err = s.fails(&["label", "configmap", "settings", "tier=frontend"]);
    assert!(err.contains("already has a value"), "{err}");
    s.ok(&["label", "configmap", "settings", "tier-"]);
    assert_eq!(s.ok(&["get", "cm", "-l", "tier", "-o", "name"]).trim(), "");

    // Not found and already exists read like upstream.
    let err = s.fails(&["get", "configmap", "missing"]);
    assert!(
        err.contains("Error from server (NotFound): configmaps \"missing\" not found"),
        "{err}"
    );
    let err = s.fails(&["create", "configmap", "settings"]);
    assert!(
        err.contains("error: failed to create configmap: configmaps \"settings\" already exists"),
        "{err}"
    );

    // Deleting by name, by label, and everything.
    for i in 0..3 {
        s.ok(&[
            "create",
            "configmap",
            &format!("batch-{i}"),
            "--from-literal=a=b",
        ]);
    }
    s.ok(&["label", "configmap", "batch-0", "batch-1", "group=one"]);
    let out = s.ok(&["delete", "configmap", "settings"]);
    assert!(out.contains("configmap \"settings\" deleted"), "{out}");
    s.ok(&["delete", "configmap", "-l", "group=one"]);
    let left = s.ok(&["get", "configmaps", "-o", "name"]);
    assert!(
        left.contains("batch-2") && !left.contains("batch-0") && !left.contains("batch-1"),
        "{left}"
    );
    s.ok(&["delete", "configmaps", "--all"]);
    assert_eq!(s.ok(&["get", "configmaps", "-o", "name"]).trim(), "");
    let err = s.fails(&["delete", "configmap", "settings"]);
    assert!(err.contains("NotFound"), "{err}");
}

#[test]
fn invalid_seed_manifests_are_rejected_like_upstream() {
    let s = Server::start(&[]);
    let dir = manifests_dir().join("seeds-invalid");
    let mismatch = "* spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`";
    let nginx = dir.join("082_003_Deployment.yaml");
    let err = s.fails(&["create", "-f", nginx.to_str().expect("path")]);
    let expected = format!(
        "The Deployment \"nginx\" is invalid: \n* spec.selector: Required value\n{mismatch}\n"
    );
    assert!(
        err.ends_with(&expected),
        "got:\n{err}\nwant suffix:\n{expected}"
    );
    let web = dir.join("041_001_Deployment.yaml");
    let err = s.fails(&["create", "-f", web.to_str().expect("path")]);
    let expected = format!(
        "The Deployment \"web-app\" is invalid: \n* spec.selector: Required value\n{mismatch}\n* spec.template.spec.containers: Required value\n"
    );
    assert!(
        err.ends_with(&expected),
        "got:\n{err}\nwant suffix:\n{expected}"
    );
    // Nothing was stored.
    assert_eq!(s.ok(&["get", "deployments", "-o", "name"]).trim(), "");
}

#[test]
fn kubectl_1_27_to_1_33_all_work() {
    let s = Server::start(&[]);
    let cm = manifests_dir().join("seeds/001_001_ConfigMap.yaml");
    for v in ["1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33"] {
        let kubectl = common::kubectl_version(v);
        let run = |args: &[&str]| {
            let out = std::process::Command::new(&kubectl)
                .args(args)
                .env("KUBECONFIG", &s.kubeconfig)
                .output()
                .expect("kubectl");
            assert!(
                out.status.success(),
                "kubectl {v} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let tag = v.replace('.', "-");
        run(&[
            "create",
            "deployment",
            &format!("web-{tag}"),
            "--image=nginx",
            "--replicas=2",
        ]);
        run(&["apply", "-f", cm.to_str().expect("path")]);
        run(&[
            "create",
            "configmap",
            &format!("cm-{tag}"),
            "--from-literal=a=b",
        ]);
        let got = run(&[
            "get",
            "deploy",
            &format!("web-{tag}"),
            "-o",
            "jsonpath={.spec.replicas}",
        ]);
        assert_eq!(got, "2", "kubectl {v}");
        let table = run(&["get", "deploy"]);
        assert!(
            table.starts_with("NAME") && table.contains(&format!("web-{tag}")),
            "kubectl {v}: {table}"
        );
    }
}
