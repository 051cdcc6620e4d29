//! Ephemeral containers: `kubectl debug` on a real node (the debugger runs in the pod,
//! in its target's process namespace, and its logs are readable), and the rules of the
//! `pods/ephemeralcontainers` subresource on the wire.

mod common;

use common::{MINUTE, Node, Server, containers_of, jsonpath, pod_field, wait_for, wait_running};
use serde_json::{Value, json};

const PODS: &str = "/api/v1/namespaces/default/pods";
const SMP: &str = "application/strategic-merge-patch+json";

fn create_app_pod(s: &Server, name: &str) {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "localhost/busybox:latest",
            "command": ["sleep", "3600"]}]}});
    let r = s.curl("POST", PODS, Some(&pod.to_string()), "application/json");
    assert_eq!(r.status, 201, "{}", r.body);
}

/// The state (`running`, `terminated`, `waiting`) of ephemeral container `name`.
fn ephemeral_state(s: &Server, pod: &str, name: &str) -> String {
    pod_field(
        s,
        pod,
        &format!("{{.status.ephemeralContainerStatuses[?(@.name==\"{name}\")].state}}"),
    )
}

#[test]
fn kubectl_debug_runs_a_debugger_in_the_targets_process_namespace() {
    let s = Node::start(&[]);
    create_app_pod(&s, "web");
    wait_running(&s, "web");

    let out = s.kubectl(&[
        "debug",
        "web",
        "--image=localhost/busybox:latest",
        "--target=app",
        "-c",
        "debugger",
        "--",
        "sh",
        "-c",
        "ps; echo from-debug",
    ]);
    assert!(
        out.status.success(),
        "kubectl debug failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        pod_field(
            &s,
            "web",
            "{.spec.ephemeralContainers[0].targetContainerName}"
        ),
        "app"
    );
    wait_for(MINUTE, "the debugger to run", || {
        let st = ephemeral_state(&s, "web", "debugger");
        (st.contains("running") || st.contains("terminated")).then_some(())
    });

    // Its output is in `kubectl logs -c`, and `ps` there sees the target's `sleep`.
    let logs = wait_for(MINUTE, "the debugger's logs", || {
        let out = s.kubectl(&["logs", "web", "-c", "debugger"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.contains("from-debug").then_some(text)
    });
    assert!(logs.contains("sleep 3600"), "ps without the target: {logs}");

    // It finished and is never restarted; the pod stays Running and Ready without it.
    let done = wait_for(MINUTE, "the debugger terminated", || {
        let code = pod_field(
            &s,
            "web",
            "{.status.ephemeralContainerStatuses[0].state.terminated.exitCode}",
        );
        (!code.is_empty()).then_some(code)
    });
    assert_eq!(done, "0");
    let summary = pod_field(
        &s,
        "web",
        "{.status.phase} {.status.ephemeralContainerStatuses[0].restartCount} \
         {.status.ephemeralContainerStatuses[0].ready} \
         {.status.conditions[?(@.type==\"Ready\")].status}",
    );
    assert_eq!(summary, "Running 0 false True");
    let id = pod_field(
        &s,
        "web",
        "{.status.ephemeralContainerStatuses[0].containerID}",
    );
    assert!(id.starts_with("containerd://"), "{id}");
    wait_for(MINUTE, "the debugger's Started event", || {
        let events = jsonpath(
            &s,
            &[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=web",
            ],
            r#"{range .items[*]}{.involvedObject.fieldPath} {.message}{"\n"}{end}"#,
        );
        events
            .lines()
            .any(|l| l == "spec.ephemeralContainers{debugger} Started container debugger")
            .then_some(())
    });

    // A second one that keeps running is killed with the pod.
    s.ok(&[
        "debug",
        "web",
        "--image=localhost/busybox:latest",
        "-c",
        "sleeper",
        "--",
        "sleep",
        "3600",
    ]);
    wait_for(MINUTE, "the second debugger running", || {
        ephemeral_state(&s, "web", "sleeper")
            .contains("running")
            .then_some(())
    });
    let names = pod_field(
        &s,
        "web",
        "{.status.ephemeralContainerStatuses[*].name} \
         {.status.conditions[?(@.type==\"Ready\")].status}",
    );
    assert_eq!(names, "debugger sleeper True");
    let uid = pod_field(&s, "web", "{.metadata.uid}");
    s.ok(&["delete", "pod", "web", "--grace-period=1"]);
    wait_for(MINUTE, "the pod's containers gone", || {
        containers_of(&uid).is_empty().then_some(())
    });
}

fn patch_ephemeral(s: &Server, pod: &str, content_type: &str, patch: &Value) -> (u16, Value) {
    let r = s.curl(
        "PATCH",
        &format!("{PODS}/{pod}/ephemeralcontainers"),
        Some(&patch.to_string()),
        content_type,
    );
    (r.status, r.json())
}

fn debugger(name: &str, extra: Value) -> Value {
    let mut c = json!({"name": name, "image": "busybox", "targetContainerName": "app",
        "command": ["sh"]});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    c
}

fn add(s: &Server, container: Value) -> (u16, Value) {
    let patch = json!({"spec": {"ephemeralContainers": [container]}});
    patch_ephemeral(s, "p", SMP, &patch)
}

fn assert_invalid(reply: (u16, Value), message: &str) {
    let (status, body) = reply;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["reason"], "Invalid", "{body}");
    assert_eq!(body["message"], message, "{body}");
}

#[test]
fn the_ephemeralcontainers_subresource_only_adds_containers() {
    // Validation needs no node; the pod just waits unscheduled.
    let s = Server::start(&[]);
    create_app_pod(&s, "p");

    // Served as upstream serves it: discovery and OpenAPI list it, GET returns the Pod.
    let api = s.curl("GET", "/api/v1", None, "").json();
    let listed = api["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == "pods/ephemeralcontainers")
        .cloned()
        .expect("pods/ephemeralcontainers in discovery");
    assert_eq!(listed["kind"], "Pod");
    assert_eq!(listed["verbs"], json!(["get", "patch", "update"]));
    let openapi = s.curl("GET", "/openapi/v3/api/v1", None, "").json();
    let path = &openapi["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/ephemeralcontainers"];
    assert_eq!(
        path["patch"]["operationId"],
        "patchCoreV1NamespacedPodEphemeralcontainers"
    );
    let got = s
        .curl("GET", &format!("{PODS}/p/ephemeralcontainers"), None, "")
        .json();
    assert_eq!(
        (got["kind"].as_str(), got["metadata"]["name"].as_str()),
        (Some("Pod"), Some("p"))
    );

    // Adding one works, and only `spec.ephemeralContainers` changes through it.
    let patch = json!({"metadata": {"labels": {"sneaky": "yes"}},
        "spec": {"ephemeralContainers": [debugger("debugger", json!({}))],
            "containers": [{"name": "app", "image": "other"}]}});
    let (status, pod) = patch_ephemeral(&s, "p", SMP, &patch);
    assert_eq!(status, 200, "{pod}");
    assert_eq!(pod["spec"]["ephemeralContainers"][0]["name"], "debugger");
    assert_eq!(
        pod["spec"]["ephemeralContainers"][0]["terminationMessagePolicy"],
        "File"
    );
    assert_eq!(
        pod["spec"]["containers"][0]["image"],
        "localhost/busybox:latest"
    );
    assert!(pod["metadata"]["labels"].get("sneaky").is_none(), "{pod}");

    // Existing ones may be neither changed nor removed.
    assert_invalid(
        add(&s, debugger("debugger", json!({"image": "busybox:1.36"}))),
        "Pod \"p\" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debugger\" may not be changed",
    );
    let remove = json!([{"op": "remove", "path": "/spec/ephemeralContainers/0"}]);
    assert_invalid(
        patch_ephemeral(&s, "p", "application/json-patch+json", &remove),
        "Pod \"p\" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debugger\" may not be removed\n",
    );

    // Names are unique across all containers; targets must exist; workload fields are
    // not for ephemeral containers. (A strategic merge patch without `$setElementOrder`
    // puts new list items first, as upstream's does.)
    assert_invalid(
        add(&s, debugger("app", json!({}))),
        "Pod \"p\" is invalid: spec.ephemeralContainers[0].name: Duplicate value: \"app\"",
    );
    assert_invalid(
        add(&s, debugger("d2", json!({"targetContainerName": "nope"}))),
        "Pod \"p\" is invalid: spec.ephemeralContainers[0].targetContainerName: Not found: \"nope\"",
    );
    assert_invalid(
        add(
            &s,
            debugger(
                "d2",
                json!({"ports": [{"containerPort": 80}],
                    "readinessProbe": {"tcpSocket": {"port": 80}}}),
            ),
        ),
        "Pod \"p\" is invalid: [spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container, spec.ephemeralContainers[0].readinessProbe: Forbidden: cannot be set for an Ephemeral Container]",
    );

    // A plain pod update may not touch them, neither adding nor leaving them out.
    let forbidden = "Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";
    let plain = json!({"spec": {"ephemeralContainers": [debugger("d3", json!({}))]}});
    let r = s.curl("PATCH", &format!("{PODS}/p"), Some(&plain.to_string()), SMP);
    assert_invalid((r.status, r.json()), forbidden);
    let mut current = s.curl("GET", &format!("{PODS}/p"), None, "").json();
    if let Some(spec) = current["spec"].as_object_mut() {
        spec.remove("ephemeralContainers");
    }
    let r = s.curl(
        "PUT",
        &format!("{PODS}/p"),
        Some(&current.to_string()),
        "application/json",
    );
    assert_invalid((r.status, r.json()), forbidden);

    // kubectl reports the API's answer.
    let err = s.fails(&[
        "debug",
        "p",
        "--image=localhost/busybox:latest",
        "-c",
        "app",
    ]);
    assert!(
        err.contains(
            r#"The Pod "p" is invalid: spec.ephemeralContainers[1].name: Duplicate value: "app""#
        ),
        "{err}"
    );

    // A PUT of the whole Pod to the subresource adds one too.
    let url = format!("{PODS}/p/ephemeralcontainers");
    let mut pod = s.curl("GET", &url, None, "").json();
    if let Some(list) = pod["spec"]["ephemeralContainers"].as_array_mut() {
        list.push(debugger("viaput", json!({})));
    }
    let r = s.curl("PUT", &url, Some(&pod.to_string()), "application/json");
    assert_eq!(r.status, 200, "{}", r.body);
    let names = jsonpath(
        &s,
        &["get", "pod", "p"],
        "{.spec.ephemeralContainers[*].name}",
    );
    assert_eq!(names, "debugger viaput");
}
