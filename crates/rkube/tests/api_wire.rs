//! The REST API on the wire, checked with curl: watch semantics, paging, preconditions,
//! finalizers, dry runs and upstream's error shapes.

mod common;

use common::Server;
use serde_json::json;

const CM: &str = "/api/v1/namespaces/default/configmaps";

fn cm(name: &str) -> String {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})
        .to_string()
}

#[test]
fn watch_streams_history_bookmarks_and_expiry() {
    let s = Server::start(&["--watch-cache-size", "5", "--bookmark-interval", "1"]);
    let first = s
        .curl("POST", CM, Some(&cm("w0")), "application/json")
        .json();
    let rv0: i64 = first["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .parse()
        .expect("int");
    // History replay from a resourceVersion, then a bookmark.
    s.curl("POST", CM, Some(&cm("w1")), "application/json");
    let lines = s.watch_lines(
        &format!("{CM}?watch=true&resourceVersion={rv0}&allowWatchBookmarks=true&timeoutSeconds=3"),
        10,
    );
    assert_eq!(lines[0]["type"], "ADDED", "{lines:?}");
    assert_eq!(lines[0]["object"]["metadata"]["name"], "w1");
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "BOOKMARK" && l["object"]["kind"] == "ConfigMap"),
        "{lines:?}"
    );
    // Beyond the cache's history: an ERROR event carrying a 410.
    for i in 2..12 {
        s.curl("POST", CM, Some(&cm(&format!("w{i}"))), "application/json");
    }
    let lines = s.watch_lines(
        &format!("{CM}?watch=true&resourceVersion={rv0}&timeoutSeconds=2"),
        10,
    );
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["type"], "ERROR");
    assert_eq!(lines[0]["object"]["code"], 410);
    assert_eq!(lines[0]["object"]["reason"], "Expired");
    // sendInitialEvents: the current state, then a bookmark marking its end.
    let lines = s.watch_lines(&format!("{CM}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=2"), 10);
    let added = lines.iter().take_while(|l| l["type"] == "ADDED").count();
    assert_eq!(added, 12, "{lines:?}");
    assert_eq!(lines[added]["type"], "BOOKMARK");
    assert_eq!(
        lines[added]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
}

/// A resource nobody has touched yet has had no changes since the server started, so a
/// watch on it from any revision since then is served (the scheduler's first list-then-
/// watch raced other writes and got 410 Expired).
#[test]
fn watch_of_an_untouched_resource_from_an_earlier_revision_is_served() {
    let s = Server::start(&[]);
    let first = s
        .curl("POST", CM, Some(&cm("before")), "application/json")
        .json();
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    s.curl("POST", CM, Some(&cm("after")), "application/json");
    let lines = s.watch_lines(
        &format!(
            "/api/v1/namespaces/default/podtemplates?watch=true&resourceVersion={rv}&timeoutSeconds=1"
        ),
        5,
    );
    assert!(
        lines.iter().all(|l| l["type"] != "ERROR"),
        "the watch must not expire: {lines:?}"
    );
    let pt = json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"},
        "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}});
    let created = s
        .curl(
            "POST",
            "/api/v1/namespaces/default/podtemplates",
            Some(&pt.to_string()),
            "application/json",
        )
        .json();
    assert_eq!(created["metadata"]["name"], "t", "{created}");
    let lines = s.watch_lines(
        &format!(
            "/api/v1/namespaces/default/podtemplates?watch=true&resourceVersion={rv}&timeoutSeconds=1"
        ),
        5,
    );
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["type"], "ADDED");
    assert_eq!(lines[0]["object"]["metadata"]["name"], "t");
}

#[test]
fn label_selected_watch_sees_objects_enter_and_leave() {
    let s = Server::start(&[]);
    let created = s
        .curl("POST", CM, Some(&cm("sel")), "application/json")
        .json();
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let patch = |labels: serde_json::Value| {
        let r = s.curl(
            "PATCH",
            &format!("{CM}/sel"),
            Some(&json!({"metadata": {"labels": labels}}).to_string()),
            "application/merge-patch+json",
        );
        assert_eq!(r.status, 200, "{}", r.body);
    };
    patch(json!({"app": "web"}));
    patch(json!({"app": "db"}));
    let lines = s.watch_lines(
        &format!("{CM}?watch=1&resourceVersion={rv}&labelSelector=app%3Dweb&timeoutSeconds=1"),
        5,
    );
    let types: Vec<&str> = lines
        .iter()
        .map(|l| l["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(types, ["ADDED", "DELETED"], "{lines:?}");
}

#[test]
fn paged_lists_are_consistent_snapshots() {
    let s = Server::start(&[]);
    for i in 0..7 {
        assert_eq!(
            s.curl("POST", CM, Some(&cm(&format!("p{i}"))), "application/json")
                .status,
            201
        );
    }
    let page1 = s.curl("GET", &format!("{CM}?limit=3"), None, "").json();
    assert_eq!(page1["items"].as_array().expect("items").len(), 3);
    let token = page1["metadata"]["continue"]
        .as_str()
        .expect("continue")
        .to_string();
    // A write between pages does not show up in the rest of the snapshot.
    s.curl("POST", CM, Some(&cm("p9-late")), "application/json");
    let page2 = s
        .curl("GET", &format!("{CM}?limit=3&continue={token}"), None, "")
        .json();
    let token2 = page2["metadata"]["continue"]
        .as_str()
        .expect("continue")
        .to_string();
    let page3 = s
        .curl("GET", &format!("{CM}?limit=3&continue={token2}"), None, "")
        .json();
    assert!(page3["metadata"].get("continue").is_none(), "{page3}");
    let names: Vec<String> = [&page1, &page2, &page3]
        .iter()
        .flat_map(|p| p["items"].as_array().cloned().unwrap_or_default())
        .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(names, ["p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
    assert_eq!(
        page1["metadata"]["resourceVersion"],
        page3["metadata"]["resourceVersion"]
    );
    let bad = s.curl("GET", &format!("{CM}?limit=3&continue=garbage"), None, "");
    assert_eq!(bad.status, 400, "{}", bad.body);
}

#[test]
fn writes_follow_upstream_rules() {
    let s = Server::start(&[]);
    // dryRun stores nothing.
    let r = s.curl(
        "POST",
        &format!("{CM}?dryRun=All"),
        Some(&cm("dry")),
        "application/json",
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(s.curl("GET", &format!("{CM}/dry"), None, "").status, 404);
    // generateName.
    let body =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}})
            .to_string();
    let r = s.curl("POST", CM, Some(&body), "application/json").json();
    let name = r["metadata"]["name"].as_str().expect("name");
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    // A stale resourceVersion on update is a 409 Conflict.
    let created = s
        .curl("POST", CM, Some(&cm("cas")), "application/json")
        .json();
    let mut stale = created.clone();
    stale["data"]["a"] = json!("2");
    assert_eq!(
        s.curl(
            "PUT",
            &format!("{CM}/cas"),
            Some(&stale.to_string()),
            "application/json"
        )
        .status,
        200
    );
    stale["data"]["a"] = json!("3");
    let r = s.curl(
        "PUT",
        &format!("{CM}/cas"),
        Some(&stale.to_string()),
        "application/json",
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "Operation cannot be fulfilled on configmaps \"cas\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // Generation grows on spec changes only.
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    let path = "/apis/apps/v1/namespaces/default/deployments";
    assert_eq!(
        s.curl("POST", path, Some(&dep.to_string()), "application/json")
            .json()["metadata"]["generation"],
        1
    );
    let r = s
        .curl(
            "PATCH",
            &format!("{path}/d"),
            Some(r#"{"metadata":{"labels":{"x":"y"}}}"#),
            "application/merge-patch+json",
        )
        .json();
    assert_eq!(r["metadata"]["generation"], 1);
    let r = s
        .curl(
            "PATCH",
            &format!("{path}/d"),
            Some(r#"{"spec":{"replicas":4}}"#),
            "application/merge-patch+json",
        )
        .json();
    assert_eq!(r["metadata"]["generation"], 2);
    let r = s
        .curl(
            "PATCH",
            &format!("{path}/d/status"),
            Some(r#"{"status":{"replicas":4},"spec":{"replicas":9}}"#),
            "application/merge-patch+json",
        )
        .json();
    assert_eq!(
        (
            r["status"]["replicas"].clone(),
            r["spec"]["replicas"].clone(),
            r["metadata"]["generation"].clone()
        ),
        (json!(4), json!(4), json!(2))
    );
}

#[test]
fn finalizers_hold_deletion_until_removed() {
    let s = Server::start(&[]);
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fin", "finalizers": ["example.com/hold"]}}).to_string();
    assert_eq!(
        s.curl("POST", CM, Some(&body), "application/json").status,
        201
    );
    let r = s.curl("DELETE", &format!("{CM}/fin"), None, "application/json");
    assert_eq!(r.status, 200, "{}", r.body);
    let held = s.curl("GET", &format!("{CM}/fin"), None, "").json();
    assert!(held["metadata"]["deletionTimestamp"].is_string(), "{held}");
    let r = s.curl(
        "PATCH",
        &format!("{CM}/fin"),
        Some(r#"{"metadata":{"finalizers":null}}"#),
        "application/merge-patch+json",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.curl("GET", &format!("{CM}/fin"), None, "").status, 404);
    // Preconditions.
    let created = s
        .curl("POST", CM, Some(&cm("pre")), "application/json")
        .json();
    let r = s.curl(
        "DELETE",
        &format!("{CM}/pre"),
        Some(r#"{"preconditions":{"uid":"nope"}}"#),
        "application/json",
    );
    assert_eq!(r.status, 409, "{}", r.body);
    let uid = created["metadata"]["uid"].as_str().expect("uid");
    let r = s.curl(
        "DELETE",
        &format!("{CM}/pre"),
        Some(&json!({"preconditions": {"uid": uid}}).to_string()),
        "application/json",
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

/// A terminating pod stays through status writes until it is deleted with grace 0, so
/// watchers see the node's final status (upstream's ShouldDeleteDuringUpdate).
#[test]
fn a_terminating_pod_survives_status_writes_until_deleted_with_grace_zero() {
    let s = Server::start(&[]);
    const PODS: &str = "/api/v1/namespaces/default/pods";
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}});
    assert_eq!(
        s.curl("POST", PODS, Some(&pod.to_string()), "application/json")
            .status,
        201
    );
    let r = s.curl("DELETE", &format!("{PODS}/p"), None, "application/json");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["metadata"]["deletionGracePeriodSeconds"], 30);
    let r = s.curl(
        "PATCH",
        &format!("{PODS}/p/status"),
        Some(r#"{"status":{"phase":"Succeeded"}}"#),
        "application/merge-patch+json",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let got = s.curl("GET", &format!("{PODS}/p"), None, "");
    assert_eq!(
        got.status, 200,
        "a status write must not finish a graceful delete"
    );
    assert_eq!(got.json()["status"]["phase"], "Succeeded");
    let r = s.curl(
        "DELETE",
        &format!("{PODS}/p"),
        Some(r#"{"gracePeriodSeconds":0}"#),
        "application/json",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.curl("GET", &format!("{PODS}/p"), None, "").status, 404);
}

/// A deleted namespace stays `Terminating` until its `kubernetes` finalizer is removed
/// through `namespaces/{name}/finalize`, which changes nothing but `spec.finalizers`; then it
/// is gone (upstream's namespace storage and finalize strategy).
#[test]
fn the_finalize_subresource_releases_a_terminating_namespace() {
    // No namespace controller: this test plays its part.
    let s = Server::start(&["--disable-controllers"]);
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gone"}});
    let r = s.curl(
        "POST",
        "/api/v1/namespaces",
        Some(&ns.to_string()),
        "application/json",
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["spec"]["finalizers"], json!(["kubernetes"]));
    let r = s.curl(
        "DELETE",
        "/api/v1/namespaces/gone",
        None,
        "application/json",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let mut current = s.curl("GET", "/api/v1/namespaces/gone", None, "").json();
    assert_eq!(current["status"]["phase"], "Terminating");
    current["spec"]["finalizers"] = json!([]);
    current["metadata"]["labels"] = json!({"ignored": "yes"});
    let r = s.curl(
        "PUT",
        "/api/v1/namespaces/gone/finalize",
        Some(&current.to_string()),
        "application/json",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.json()["metadata"]["labels"].get("ignored").is_none(),
        "{}",
        r.body
    );
    assert_eq!(
        s.curl("GET", "/api/v1/namespaces/gone", None, "").status,
        404
    );
}

#[test]
fn bad_input_gets_upstream_status_errors() {
    let s = Server::start(&[]);
    let status = |r: &common::Reply| {
        (
            r.status,
            r.json()["reason"].as_str().unwrap_or("").to_string(),
        )
    };
    let r = s.curl_with("GET", CM, None, "", false);
    assert_eq!(status(&r), (401, "Unauthorized".into()));
    let r = s.curl("POST", CM, Some("{not json"), "application/json");
    assert_eq!(status(&r), (400, "BadRequest".into()));
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}).to_string();
    let r = s.curl("POST", CM, Some(&svc), "application/json");
    assert_eq!(status(&r), (400, "BadRequest".into()));
    let r = s.curl(
        "POST",
        CM,
        Some(
            &json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
                .to_string(),
        ),
        "application/json",
    );
    assert_eq!(
        r.json()["message"],
        "the API version in the data (apps/v1) does not match the expected API version (v1)"
    );
    let r = s.curl("POST", CM, Some(&cm("Bad_Name")), "application/json");
    assert_eq!(status(&r), (422, "Invalid".into()));
    assert!(r.json()["message"].as_str().unwrap_or("").starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", r.body);
    let r = s.curl(
        "POST",
        "/api/v1/namespaces/nowhere/configmaps",
        Some(&cm("x")),
        "application/json",
    );
    assert_eq!(status(&r), (404, "NotFound".into()));
    assert_eq!(r.json()["message"], "namespaces \"nowhere\" not found");
    let unknown = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "u"}, "bogus": 1, "data": {"a": "b"}}).to_string();
    let r = s.curl(
        "POST",
        &format!("{CM}?fieldValidation=Strict"),
        Some(&unknown),
        "application/json",
    );
    assert_eq!(status(&r), (400, "BadRequest".into()));
    assert_eq!(
        r.json()["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"bogus\""
    );
    let r = s.curl(
        "POST",
        &format!("{CM}?fieldValidation=Warn"),
        Some(&unknown),
        "application/json",
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        r.headers
            .to_ascii_lowercase()
            .contains("warning: 299 - \"unknown field \\\"bogus\\\"\""),
        "{}",
        r.headers
    );
    let typed =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "t"}, "data": 5})
            .to_string();
    let r = s.curl("POST", CM, Some(&typed), "application/json");
    assert_eq!(status(&r), (400, "BadRequest".into()));
    let huge = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"big\"}},\"data\":{{\"a\":\"{}\"}}}}",
        "x".repeat(4 * 1024 * 1024)
    );
    let r = s.curl("POST", CM, Some(&huge), "application/json");
    assert_eq!(r.status, 413, "{}", r.body);
    let r = s.curl("GET", "/api/v1/namespaces/default/nosuchthings", None, "");
    assert_eq!(r.status, 404);
    // None of the rejected objects were stored.
    let names: Vec<String> = s.curl("GET", CM, None, "").json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(names, ["u"]);
}

#[test]
fn services_get_unique_cluster_ips_and_node_ports() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start_in(tmp.path(), &[]);
    let svc_path = "/api/v1/namespaces/default/services";
    let svc = |name: &str, ty: &str, ip: Option<&str>| {
        let mut v = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": ty, "selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}});
        if let Some(ip) = ip {
            v["spec"]["clusterIP"] = json!(ip);
        }
        v.to_string()
    };
    // The built-in `kubernetes` Service holds the first address.
    let k = s
        .curl("GET", &format!("{svc_path}/kubernetes"), None, "")
        .json();
    assert_eq!(k["spec"]["clusterIP"], "10.43.0.1");
    let a = s
        .curl(
            "POST",
            svc_path,
            Some(&svc("a", "ClusterIP", None)),
            "application/json",
        )
        .json();
    let b = s
        .curl(
            "POST",
            svc_path,
            Some(&svc("b", "NodePort", None)),
            "application/json",
        )
        .json();
    let ip_a = a["spec"]["clusterIP"].as_str().expect("ip").to_string();
    let ip_b = b["spec"]["clusterIP"].as_str().expect("ip").to_string();
    assert!(
        ip_a.starts_with("10.43.") && ip_b.starts_with("10.43.") && ip_a != ip_b,
        "{ip_a} {ip_b}"
    );
    let node_port = b["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .expect("nodePort");
    assert!((30000..=32767).contains(&node_port), "{node_port}");
    // A taken address is refused, and nothing is stored.
    let r = s.curl(
        "POST",
        svc_path,
        Some(&svc("c", "ClusterIP", Some(&ip_a))),
        "application/json",
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("provided IP is already allocated"),
        "{}",
        r.body
    );
    assert_eq!(
        s.curl("GET", &format!("{svc_path}/c"), None, "").status,
        404
    );
    // Addresses survive a restart: a new Service never gets a held one.
    s.kill();
    let s = Server::start_in(tmp.path(), &[]);
    let r = s.curl(
        "POST",
        svc_path,
        Some(&svc("d", "ClusterIP", Some(&ip_b))),
        "application/json",
    );
    assert_eq!(r.status, 422, "{}", r.body);
    // Deleting a Service frees its address.
    assert_eq!(
        s.curl("DELETE", &format!("{svc_path}/a"), None, "").status,
        200
    );
    let r = s.curl(
        "POST",
        svc_path,
        Some(&svc("e", "ClusterIP", Some(&ip_a))),
        "application/json",
    );
    assert_eq!(r.status, 201, "{}", r.body);
    // Re-sending the Service without its allocated values keeps them.
    let r = s
        .curl(
            "PUT",
            &format!("{svc_path}/b"),
            Some(&svc("b", "NodePort", None)),
            "application/json",
        )
        .json();
    assert_eq!(r["spec"]["clusterIP"], ip_b.as_str());
    assert_eq!(r["spec"]["ports"][0]["nodePort"], node_port);
}
