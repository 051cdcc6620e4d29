//! Deployment controller: rollouts, undo, scale, pause/resume, restart, Recreate and the
//! progress deadline, as kubectl sees them.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::thread::JoinHandle;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};

use super::common::{self, Server, apply, jsonpath};
use super::{DEADLINE, cluster, names, rollout_status, running, wait_count, wait_for};

fn web(name: &str, replicas: u32, image: &str, strategy: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  strategy: {strategy}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: web, image: "{image}"}}]}}
"#
    )
}

const ROLLING_1_1: &str = "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}";

/// What a pod watch saw while a rollout ran.
#[derive(Debug, Default)]
struct Seen {
    /// Fewest ready pods not being deleted.
    min_ready: usize,
    /// Most pods not being deleted.
    max_live: usize,
    /// Most pod templates (pod-template-hash values) present at once, deleting or not.
    max_templates: usize,
}

/// Watches the pods matching `selector` from another thread until `stop` is sent.
struct PodWatch {
    stop: mpsc::Sender<()>,
    done: JoinHandle<Seen>,
}

fn ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

impl PodWatch {
    fn start(s: &Server, selector: &str) -> PodWatch {
        let (stop, stop_rx) = mpsc::channel::<()>();
        let (synced_tx, synced_rx) = mpsc::channel::<()>();
        let kubeconfig = s.kubeconfig.clone();
        let selector = selector.to_string();
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let client = common::client_from(&kubeconfig).await;
                let api: kube::Api<Pod> = kube::Api::namespaced(client, "default");
                let cfg = watcher::Config::default().labels(&selector);
                let mut stream = std::pin::pin!(watcher::watcher(api, cfg));
                let mut pods: HashMap<String, Pod> = HashMap::new();
                let mut seen: Option<Seen> = None;
                let mut synced = Some(synced_tx);
                loop {
                    if stop_rx.try_recv().is_ok() {
                        return seen.unwrap_or_default();
                    }
                    let ev =
                        tokio::time::timeout(std::time::Duration::from_millis(100), stream.next())
                            .await;
                    let Ok(Some(ev)) = ev else { continue };
                    match ev.expect("pod watch") {
                        Event::Init => pods.clear(),
                        Event::InitApply(p) | Event::Apply(p) => {
                            pods.insert(p.metadata.name.clone().unwrap_or_default(), p);
                        }
                        Event::Delete(p) => {
                            pods.remove(p.metadata.name.as_deref().unwrap_or(""));
                        }
                        Event::InitDone => {
                            if let Some(tx) = synced.take() {
                                let _ = tx.send(());
                            }
                        }
                    }
                    if synced.is_some() {
                        continue;
                    }
                    let ready_now = pods.values().filter(|p| ready(p)).count();
                    let live = pods
                        .values()
                        .filter(|p| p.metadata.deletion_timestamp.is_none())
                        .count();
                    let templates: HashSet<&String> = pods
                        .values()
                        .filter_map(|p| p.metadata.labels.as_ref()?.get("pod-template-hash"))
                        .collect();
                    let s = seen.get_or_insert(Seen {
                        min_ready: ready_now,
                        ..Default::default()
                    });
                    s.min_ready = s.min_ready.min(ready_now);
                    s.max_live = s.max_live.max(live);
                    s.max_templates = s.max_templates.max(templates.len());
                }
            })
        });
        synced_rx.recv_timeout(DEADLINE).expect("pod watch listed");
        PodWatch { stop, done }
    }

    fn finish(self) -> Seen {
        let _ = self.stop.send(());
        self.done.join().expect("pod watch thread")
    }
}

fn image(s: &Server, name: &str) -> String {
    jsonpath(
        s,
        &["get", "deploy", name],
        "{.spec.template.spec.containers[0].image}",
    )
}

#[test]
fn a_rolling_update_respects_max_unavailable_and_undo_restores_the_template() {
    let (s, _sim) = cluster();
    apply(&s, &web("web", 4, "busybox:1", ROLLING_1_1));
    let out = rollout_status(&s, "deploy/web");
    assert!(out.contains("successfully rolled out"), "{out}");
    assert_eq!(running(&s, "app=web").len(), 4);

    let watch = PodWatch::start(&s, "app=web");
    s.ok(&["set", "image", "deploy/web", "web=busybox:2"]);
    rollout_status(&s, "deploy/web");
    let seen = watch.finish();
    // replicas 4, maxUnavailable 1, maxSurge 1.
    assert!(
        seen.min_ready >= 3,
        "fewer than 3 ready pods during the rollout: {seen:?}"
    );
    assert!(
        seen.max_live <= 5,
        "more than 5 pods during the rollout: {seen:?}"
    );
    assert_eq!(image(&s, "web"), "busybox:2");
    let ready = jsonpath(
        &s,
        &["get", "deploy", "web"],
        "{.status.updatedReplicas}/{.status.availableReplicas}",
    );
    assert_eq!(ready, "4/4");

    let history = s.ok(&["rollout", "history", "deploy/web"]);
    assert!(
        history.contains("1 ") && history.contains("2 "),
        "{history}"
    );
    s.ok(&["rollout", "undo", "deploy/web"]);
    rollout_status(&s, "deploy/web");
    assert_eq!(image(&s, "web"), "busybox:1");
    // The first ReplicaSet came back (as revision 3) instead of a new one.
    let sets = names(&s, &["rs", "-l", "app=web"]);
    assert_eq!(sets.len(), 2, "{sets:?}");
    let revisions = jsonpath(
        &s,
        &["get", "rs", "-l", "app=web"],
        r#"{range .items[*]}{.metadata.annotations.deployment\.kubernetes\.io/revision}{" "}{end}"#,
    );
    let mut revisions: Vec<&str> = revisions.split_whitespace().collect();
    revisions.sort();
    assert_eq!(revisions, ["2", "3"]);
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=Deployment",
    ]);
    assert!(events.contains("ScalingReplicaSet"), "{events}");
}

#[test]
fn scale_and_a_deleted_pod_is_replaced() {
    let (s, _sim) = cluster();
    s.ok(&[
        "create",
        "deployment",
        "app",
        "--image=busybox",
        "--replicas=2",
    ]);
    rollout_status(&s, "deploy/app");
    s.ok(&["scale", "deploy/app", "--replicas=3"]);
    let pods = wait_for(DEADLINE, "3 running pods", || {
        let r = running(&s, "app=app");
        (r.len() == 3).then_some(r)
    });
    s.ok(&["delete", "pod", &pods[0], "--wait=false"]);
    wait_for(DEADLINE, "a replacement pod", || {
        let r = running(&s, "app=app");
        (r.len() == 3 && !r.contains(&pods[0])).then_some(())
    });
    s.ok(&["scale", "deploy/app", "--replicas=1"]);
    wait_count(&s, &["pods", "-l", "app=app"], 1);
    rollout_status(&s, "deploy/app");
}

#[test]
fn paused_rollouts_wait_for_resume_and_restart_rolls_again() {
    let (s, _sim) = cluster();
    s.ok(&[
        "create",
        "deployment",
        "p",
        "--image=busybox:1",
        "--replicas=2",
    ]);
    rollout_status(&s, "deploy/p");
    s.ok(&["rollout", "pause", "deploy/p"]);
    s.ok(&["set", "image", "deploy/p", "busybox=busybox:2"]);
    wait_for(DEADLINE, "Progressing=DeploymentPaused", || {
        let reason = jsonpath(
            &s,
            &["get", "deploy", "p"],
            r#"{.status.conditions[?(@.type=="Progressing")].reason}"#,
        );
        (reason == "DeploymentPaused").then_some(())
    });
    assert_eq!(
        names(&s, &["rs", "-l", "app=p"]).len(),
        1,
        "a paused deployment rolled"
    );
    s.ok(&["rollout", "resume", "deploy/p"]);
    rollout_status(&s, "deploy/p");
    assert_eq!(names(&s, &["rs", "-l", "app=p"]).len(), 2);
    s.ok(&["rollout", "restart", "deploy/p"]);
    rollout_status(&s, "deploy/p");
    assert_eq!(names(&s, &["rs", "-l", "app=p"]).len(), 3);
    let history = s.ok(&["rollout", "history", "deploy/p"]);
    assert!(history.contains("3 "), "{history}");
}

#[test]
fn recreate_removes_every_old_pod_before_starting_new_ones() {
    let (s, _sim) = cluster();
    apply(&s, &web("rc", 3, "busybox:1", "{type: Recreate}"));
    rollout_status(&s, "deploy/rc");
    let watch = PodWatch::start(&s, "app=rc");
    s.ok(&["set", "image", "deploy/rc", "web=busybox:2"]);
    rollout_status(&s, "deploy/rc");
    let seen = watch.finish();
    assert_eq!(
        seen.max_templates, 1,
        "old and new pods overlapped: {seen:?}"
    );
    assert_eq!(running(&s, "app=rc").len(), 3);
}

#[test]
fn a_rollout_that_cannot_progress_exceeds_its_deadline() {
    let (s, _sim) = cluster();
    apply(
        &s,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: stuck}
spec:
  replicas: 1
  progressDeadlineSeconds: 2
  selector: {matchLabels: {app: stuck}}
  template:
    metadata: {labels: {app: stuck}}
    spec:
      nodeSelector: {disk: none-has-this}
      containers: [{name: c, image: busybox}]
"#,
    );
    let out = s.kubectl(&["rollout", "status", "deploy/stuck", "--timeout=60s"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exceeded its progress deadline"), "{err}");
    let cond = jsonpath(
        &s,
        &["get", "deploy", "stuck"],
        r#"{.status.conditions[?(@.type=="Progressing")].status}/{.status.conditions[?(@.type=="Progressing")].reason}"#,
    );
    assert_eq!(cond, "False/ProgressDeadlineExceeded");
}
