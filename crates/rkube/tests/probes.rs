//! Container probes and lifecycle hooks on a real node (containerd on this machine, the
//! busybox image), seen through kubectl 1.33: a failing liveness probe restarts its
//! container, readiness decides the Ready condition and the Service's endpoints, and the
//! postStart and preStop hooks run.
//!
//! Where a probe's answer must change on cue, the pod mounts a host directory the test
//! writes to (a `hostPath` volume), so nothing depends on how fast the machine is.

mod common;

use std::path::Path;

use common::{MINUTE, Node, Server, apply, jsonpath, pod_field, wait_for, wait_running};

/// `reason|type|message` of each event about pod `pod`.
fn events_of(s: &Server, pod: &str) -> Vec<String> {
    jsonpath(
        s,
        &[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={pod}"),
        ],
        r#"{range .items[*]}{.reason}|{.type}|{.message}{"\n"}{end}"#,
    )
    .lines()
    .map(String::from)
    .collect()
}

/// Waits for an event about `pod` with `reason` and `type_` whose message starts with
/// `message`; returns its message.
fn wait_event(s: &Server, pod: &str, reason: &str, type_: &str, message: &str) -> String {
    wait_for(
        MINUTE,
        &format!("a {reason} event about {pod}: {message}"),
        || {
            events_of(s, pod).into_iter().find_map(|e| {
                let mut parts = e.splitn(3, '|');
                let (r, t, m) = (parts.next()?, parts.next()?, parts.next()?);
                (r == reason && t == type_ && m.starts_with(message)).then(|| m.to_string())
            })
        },
    )
}

fn condition(s: &Server, pod: &str, type_: &str) -> String {
    pod_field(
        s,
        pod,
        &format!(r#"{{.status.conditions[?(@.type=="{type_}")].status}}"#),
    )
}

fn wait_condition(s: &Server, pod: &str, type_: &str, want: &str) {
    wait_for(MINUTE, &format!("{pod} {type_}={want}"), || {
        (condition(s, pod, type_) == want).then_some(())
    });
}

/// A host directory for a pod's `hostPath` volume, removed with the test.
fn control_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn a_failing_liveness_probe_restarts_the_container() {
    let s = Node::start(&[]);
    apply(
        &s,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: localhost/busybox:latest
    command: ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 600"]
    livenessProbe:
      exec: {command: ["cat", "/tmp/healthy"]}
      periodSeconds: 1
      failureThreshold: 2
"#,
    );
    wait_for(MINUTE * 2, "the container restarted", || {
        let n: i64 = pod_field(&s, "live", "{.status.containerStatuses[0].restartCount}")
            .parse()
            .ok()?;
        (n >= 1).then_some(())
    });
    let unhealthy = wait_event(
        &s,
        "live",
        "Unhealthy",
        "Warning",
        "Liveness probe failed: ",
    );
    assert!(
        unhealthy.contains("can't open '/tmp/healthy': No such file or directory"),
        "{unhealthy}"
    );
    wait_event(
        &s,
        "live",
        "Killing",
        "Normal",
        "Container app failed liveness probe, will be restarted",
    );
    let last = pod_field(
        &s,
        "live",
        "{.status.containerStatuses[0].lastState.terminated.containerID}",
    );
    assert!(last.starts_with("containerd://"), "lastState: {last:?}");
    // The new instance runs again (and is probed afresh).
    wait_running(&s, "live");
}

#[test]
fn readiness_keeps_a_pod_out_of_its_service_until_the_probe_passes() {
    let s = Node::start(&[]);
    let ctl = control_dir();
    apply(
        &s,
        &format!(
            r#"
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec:
  containers:
  - name: app
    image: localhost/busybox:latest
    command: ["sleep", "600"]
    readinessProbe:
      exec: {{command: ["cat", "/ctl/ready"]}}
      periodSeconds: 1
    volumeMounts: [{{name: ctl, mountPath: /ctl}}]
  volumes:
  - name: ctl
    hostPath: {{path: {dir}, type: Directory}}
"#,
            dir = path_str(ctl.path())
        ),
    );
    wait_running(&s, "web");
    wait_event(
        &s,
        "web",
        "Unhealthy",
        "Warning",
        "Readiness probe failed: ",
    );
    let ip = pod_field(&s, "web", "{.status.podIP}");
    assert_eq!(condition(&s, "web", "Ready"), "False");
    assert_eq!(condition(&s, "web", "ContainersReady"), "False");
    assert_eq!(
        pod_field(&s, "web", "{.status.containerStatuses[0].ready}"),
        "false"
    );
    assert_eq!(
        pod_field(&s, "web", "{.status.containerStatuses[0].started}"),
        "true"
    );
    wait_for(
        MINUTE,
        "the pod listed as not ready in the endpoints",
        || {
            let not_ready = jsonpath(
                &s,
                &["get", "endpoints", "web"],
                "{.subsets[*].notReadyAddresses[*].ip}",
            );
            (not_ready == ip).then_some(())
        },
    );
    assert_eq!(
        jsonpath(
            &s,
            &["get", "endpoints", "web"],
            "{.subsets[*].addresses[*].ip}"
        ),
        ""
    );
    let table = s.ok(&["get", "pod", "web"]);
    assert!(table.contains("0/1"), "{table}");

    std::fs::write(ctl.path().join("ready"), "yes").expect("write ready");
    wait_condition(&s, "web", "Ready", "True");
    wait_for(MINUTE, "the pod listed as ready in the endpoints", || {
        let ready = jsonpath(
            &s,
            &["get", "endpoints", "web"],
            "{.subsets[*].addresses[*].ip}",
        );
        (ready == ip).then_some(())
    });
    let slice = wait_for(MINUTE, "a ready endpoint in the slice", || {
        let out = jsonpath(
            &s,
            &[
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=web",
            ],
            "{.items[*].endpoints[*].addresses[*]}={.items[*].endpoints[*].conditions.ready}",
        );
        (out == format!("{ip}=true")).then_some(out)
    });
    assert_eq!(slice, format!("{ip}=true"));

    // Failing again takes it back out.
    std::fs::remove_file(ctl.path().join("ready")).expect("remove ready");
    wait_condition(&s, "web", "Ready", "False");
    wait_for(MINUTE, "the pod out of the ready endpoints", || {
        let ready = jsonpath(
            &s,
            &["get", "endpoints", "web"],
            "{.subsets[*].addresses[*].ip}",
        );
        ready.is_empty().then_some(())
    });
    assert_eq!(
        pod_field(&s, "web", "{.status.containerStatuses[0].restartCount}"),
        "0",
        "readiness never restarts a container"
    );
}

#[test]
fn http_and_tcp_probes_reach_httpd_by_port_name_and_number() {
    let s = Node::start(&[]);
    let ctl = control_dir();
    apply(
        &s,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: httpd}}
spec:
  containers:
  - name: web
    image: localhost/busybox:latest
    command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
    ports: [{{name: http, containerPort: 8080}}]
    readinessProbe:
      httpGet: {{path: /index.html, port: http, httpHeaders: [{{name: X-Probe, value: "yes"}}]}}
      periodSeconds: 1
    livenessProbe:
      tcpSocket: {{port: 8080}}
      periodSeconds: 1
  - name: late
    image: localhost/busybox:latest
    command: ["sh", "-c", "until [ -f /ctl/go ]; do sleep 1; done; exec httpd -f -p 9000 -h /var/www"]
    readinessProbe:
      tcpSocket: {{port: 9000}}
      periodSeconds: 1
    volumeMounts: [{{name: ctl, mountPath: /ctl}}]
  volumes:
  - name: ctl
    hostPath: {{path: {dir}, type: Directory}}
"#,
            dir = path_str(ctl.path())
        ),
    );
    wait_running(&s, "httpd");
    let ip = pod_field(&s, "httpd", "{.status.podIP}");
    let refused = format!("Readiness probe failed: dial tcp {ip}:9000: ");
    let refused = wait_event(&s, "httpd", "Unhealthy", "Warning", &refused);
    assert!(
        refused.ends_with(":9000: connect: connection refused"),
        "{refused}"
    );
    wait_for(MINUTE, "httpd ready by its httpGet probe", || {
        (pod_field(
            &s,
            "httpd",
            r#"{.status.containerStatuses[?(@.name=="web")].ready}"#,
        ) == "true")
            .then_some(())
    });
    assert_eq!(
        condition(&s, "httpd", "Ready"),
        "False",
        "late is not ready"
    );

    std::fs::write(ctl.path().join("go"), "").expect("write go");
    wait_condition(&s, "httpd", "Ready", "True");
    let restarts = pod_field(&s, "httpd", "{.status.containerStatuses[*].restartCount}");
    assert_eq!(restarts, "0 0", "the tcp liveness probe passes");
    assert!(
        !events_of(&s, "httpd")
            .iter()
            .any(|e| e.starts_with("Unhealthy|Warning|Liveness")),
        "{:?}",
        events_of(&s, "httpd")
    );
}

#[test]
fn a_post_start_hook_runs_before_the_container_is_reported_running() {
    let s = Node::start(&[]);
    apply(
        &s,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: hooked}
spec:
  containers:
  - name: app
    image: localhost/busybox:latest
    command: ["sh", "-c", "until [ -f /tmp/hook ]; do sleep 0.2; done; cat /tmp/hook; sleep 600"]
    lifecycle:
      postStart:
        exec: {command: ["sh", "-c", "echo written by postStart > /tmp/hook"]}
"#,
    );
    wait_running(&s, "hooked");
    let logs = wait_for(MINUTE, "the container to print the hook's file", || {
        let out = s.ok(&["logs", "hooked"]);
        out.contains("written by postStart").then_some(out)
    });
    assert_eq!(logs, "written by postStart\n");
}

#[test]
fn a_failing_post_start_hook_kills_and_restarts_the_container() {
    let s = Node::start(&[]);
    apply(
        &s,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: badhook}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: localhost/busybox:latest
    command: ["sleep", "600"]
    lifecycle:
      postStart:
        exec: {command: ["sh", "-c", "printf nope >&2; exit 3"]}
"#,
    );
    let uid = wait_for(MINUTE, "the pod's uid", || {
        let u = pod_field(&s, "badhook", "{.metadata.uid}");
        (!u.is_empty()).then_some(u)
    });
    let msg = wait_event(&s, "badhook", "FailedPostStartHook", "Warning", "");
    assert_eq!(
        msg,
        format!(
            "Exec lifecycle hook ([sh -c printf nope >&2; exit 3]) for Container \"app\" in Pod \"badhook_default({uid})\" failed - error: command 'sh -c printf nope >&2; exit 3' exited with 3: nope, message: \"nope\""
        )
    );
    wait_event(&s, "badhook", "Killing", "Normal", "FailedPostStartHook");
    wait_for(MINUTE * 2, "the container restarted", || {
        let n: i64 = pod_field(&s, "badhook", "{.status.containerStatuses[0].restartCount}")
            .parse()
            .ok()?;
        (n >= 1).then_some(())
    });
}

#[test]
fn a_pre_stop_hook_runs_when_the_pod_is_deleted() {
    let s = Node::start(&[]);
    let ctl = control_dir();
    apply(
        &s,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: stopper}}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: app
    image: localhost/busybox:latest
    command: ["sleep", "600"]
    lifecycle:
      preStop:
        exec: {{command: ["sh", "-c", "echo stopping $(hostname) > /ctl/pre-stop"]}}
    volumeMounts: [{{name: ctl, mountPath: /ctl}}]
  volumes:
  - name: ctl
    hostPath: {{path: {dir}, type: Directory}}
"#,
            dir = path_str(ctl.path())
        ),
    );
    wait_running(&s, "stopper");
    assert!(!ctl.path().join("pre-stop").exists());
    s.ok(&["delete", "pod", "stopper", "--wait=true", "--timeout=120s"]);
    let written = std::fs::read_to_string(ctl.path().join("pre-stop")).expect("preStop wrote");
    assert_eq!(written, "stopping stopper\n");
}
