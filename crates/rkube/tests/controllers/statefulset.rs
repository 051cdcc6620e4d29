//! StatefulSet controller: ordered creation, per-ordinal claims, scale down, partitioned
//! rolling updates, history and undo, and the claim retention policy, as kubectl sees them.

use std::collections::HashMap;
use std::sync::mpsc;
use std::thread::JoinHandle;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};

use super::common::{self, Server, apply, jsonpath};
use super::{DEADLINE, cluster, names, rollout_status, wait_count, wait_for};

/// One change a pod watch saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Seen {
    /// In the watch's initial list.
    Listed,
    Added,
    Modified,
    Deleted,
}

/// Records every pod change matching a selector, in the order the API server sent them,
/// from another thread until finished.
pub(super) struct PodLog {
    stop: mpsc::Sender<()>,
    done: JoinHandle<Vec<(Seen, Pod)>>,
}

pub(super) fn is_ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub(super) fn name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

impl PodLog {
    pub(super) fn start(s: &Server, selector: &str) -> PodLog {
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
                let mut known: HashMap<String, ()> = HashMap::new();
                let mut log = Vec::new();
                let mut synced = Some(synced_tx);
                loop {
                    if stop_rx.try_recv().is_ok() {
                        return log;
                    }
                    let ev =
                        tokio::time::timeout(std::time::Duration::from_millis(100), stream.next())
                            .await;
                    let Ok(Some(ev)) = ev else { continue };
                    match ev.expect("pod watch") {
                        Event::Init => {}
                        Event::InitApply(p) => {
                            known.insert(name(&p), ());
                            log.push((Seen::Listed, p));
                        }
                        Event::InitDone => {
                            if let Some(tx) = synced.take() {
                                let _ = tx.send(());
                            }
                        }
                        Event::Apply(p) => {
                            let seen = if known.insert(name(&p), ()).is_some() {
                                Seen::Modified
                            } else {
                                Seen::Added
                            };
                            log.push((seen, p));
                        }
                        Event::Delete(p) => {
                            known.remove(&name(&p));
                            log.push((Seen::Deleted, p));
                        }
                    }
                }
            })
        });
        synced_rx.recv_timeout(DEADLINE).expect("pod watch listed");
        PodLog { stop, done }
    }

    pub(super) fn finish(self) -> Vec<(Seen, Pod)> {
        let _ = self.stop.send(());
        self.done.join().expect("pod watch thread")
    }
}

/// Replays a log: calls `f` with each change and the pods present after it.
pub(super) fn replay(log: &[(Seen, Pod)], mut f: impl FnMut(Seen, &Pod, &HashMap<String, Pod>)) {
    let mut pods: HashMap<String, Pod> = HashMap::new();
    for (seen, p) in log {
        match seen {
            Seen::Deleted => {
                pods.remove(&name(p));
            }
            _ => {
                pods.insert(name(p), p.clone());
            }
        }
        f(*seen, p, &pods);
    }
}

fn web(name: &str, replicas: u32, image: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  serviceName: {name}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: c, image: "{image}"}}]}}
{extra}
"#
    )
}

const CLAIMS: &str = "  volumeClaimTemplates:
  - metadata: {name: www}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}";

/// The revision numbers `kubectl rollout history` lists.
pub(super) fn history(s: &Server, what: &str) -> Vec<String> {
    s.ok(&["rollout", "history", what])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .map(String::from)
        .collect()
}

fn images(s: &Server, selector: &str) -> String {
    jsonpath(
        s,
        &["get", "pods", "-l", selector, "--sort-by=.metadata.name"],
        r#"{range .items[*]}{.metadata.name}={.spec.containers[0].image} {end}"#,
    )
}

#[test]
fn ordered_creation_waits_for_readiness_and_scale_down_keeps_claims() {
    let (s, _sim) = cluster();
    let log = PodLog::start(&s, "app=web");
    apply(&s, &web("web", 3, "busybox", CLAIMS));
    let out = rollout_status(&s, "sts/web");
    assert!(out.contains("roll out complete"), "{out}");
    assert_eq!(
        jsonpath(&s, &["get", "sts", "web"], "{.status.readyReplicas}"),
        "3"
    );

    // Stable identity: hostname, subdomain, identity labels and the ordinal's claim.
    let identity = jsonpath(
        &s,
        &["get", "pod", "web-1"],
        r#"{.spec.hostname}/{.spec.subdomain}/{.metadata.labels.statefulset\.kubernetes\.io/pod-name}/{.metadata.labels.apps\.kubernetes\.io/pod-index}/{.spec.volumes[?(@.name=="www")].persistentVolumeClaim.claimName}"#,
    );
    assert_eq!(identity, "web-1/web/web-1/1/www-web-1");
    let mut claims = names(&s, &["pvc", "-l", "app=web"]);
    claims.sort();
    assert_eq!(claims, ["www-web-0", "www-web-1", "www-web-2"]);

    s.ok(&["scale", "sts/web", "--replicas=1"]);
    wait_count(&s, &["pods", "-l", "app=web"], 1);
    rollout_status(&s, "sts/web");
    let log = log.finish();

    // Each pod appeared only once the one before it was Ready.
    let mut created = Vec::new();
    replay(&log, |seen, p, pods| {
        if seen != Seen::Added {
            return;
        }
        let n: u32 = name(p)
            .rsplit('-')
            .next()
            .and_then(|o| o.parse().ok())
            .expect("ordinal");
        if n > 0 {
            let before = format!("web-{}", n - 1);
            assert!(
                pods.get(&before).is_some_and(is_ready),
                "{} was created before {before} was Ready",
                name(p)
            );
        }
        created.push(name(p));
    });
    assert_eq!(created, ["web-0", "web-1", "web-2"]);
    // Scale down: highest ordinal first, the next only once the previous one is gone.
    let mut deleting = Vec::new();
    replay(&log, |seen, p, pods| {
        let going = seen == Seen::Deleted || p.metadata.deletion_timestamp.is_some();
        if going && !deleting.contains(&name(p)) {
            let others: Vec<&String> = pods.keys().filter(|k| **k != name(p)).collect();
            if name(p) == "web-1" {
                assert!(
                    !others.contains(&&"web-2".to_string()),
                    "web-1 went while web-2 was still there"
                );
            }
            deleting.push(name(p));
        }
    });
    assert_eq!(deleting, ["web-2", "web-1"]);

    // The claims of the removed pods stay, and come back to the same ordinals.
    assert_eq!(names(&s, &["pvc", "-l", "app=web"]).len(), 3);
    s.ok(&["scale", "sts/web", "--replicas=3"]);
    rollout_status(&s, "sts/web");
    assert_eq!(names(&s, &["pvc", "-l", "app=web"]).len(), 3);
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=StatefulSet",
    ]);
    assert!(
        events.contains("create Pod web-0 in StatefulSet web successful"),
        "{events}"
    );
    assert!(
        events.contains("create Claim www-web-0 Pod web-0 in StatefulSet web success"),
        "{events}"
    );
}

#[test]
fn a_partitioned_rolling_update_then_history_and_undo() {
    let (s, _sim) = cluster();
    let partition = "  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}";
    apply(&s, &web("roll", 3, "busybox:1", partition));
    rollout_status(&s, "sts/roll");

    s.ok(&["set", "image", "sts/roll", "c=busybox:2"]);
    let out = rollout_status(&s, "sts/roll");
    assert!(
        out.contains("partitioned roll out complete: 1 new pods have been updated"),
        "{out}"
    );
    assert_eq!(
        images(&s, "app=roll"),
        "roll-0=busybox:1 roll-1=busybox:1 roll-2=busybox:2"
    );
    let revisions = jsonpath(
        &s,
        &["get", "sts", "roll"],
        "{.status.currentRevision} {.status.updateRevision} {.status.updatedReplicas}",
    );
    let parts: Vec<&str> = revisions.split(' ').collect();
    assert_ne!(parts[0], parts[1], "{revisions}");
    assert_eq!(parts[2], "1");
    // Pods name the revision they were made from.
    let pod_revision = jsonpath(
        &s,
        &["get", "pod", "roll-2"],
        r#"{.metadata.labels.controller-revision-hash}"#,
    );
    assert_eq!(pod_revision, parts[1]);

    s.ok(&[
        "patch",
        "sts/roll",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
    ]);
    let out = rollout_status(&s, "sts/roll");
    assert!(out.contains("3 new pods have been updated"), "{out}");
    assert_eq!(
        images(&s, "app=roll"),
        "roll-0=busybox:2 roll-1=busybox:2 roll-2=busybox:2"
    );
    wait_for(DEADLINE, "the update revision to become current", || {
        let r = jsonpath(
            &s,
            &["get", "sts", "roll"],
            "{.status.currentRevision}={.status.updateRevision}",
        );
        let (a, b) = r.split_once('=')?;
        (a == b && !a.is_empty()).then_some(())
    });

    assert_eq!(history(&s, "sts/roll"), ["1", "2"]);
    let first = s.ok(&["rollout", "history", "sts/roll", "--revision=1"]);
    assert!(first.contains("busybox:1"), "{first}");

    s.ok(&["rollout", "undo", "sts/roll"]);
    rollout_status(&s, "sts/roll");
    wait_for(DEADLINE, "every pod back on busybox:1", || {
        (images(&s, "app=roll") == "roll-0=busybox:1 roll-1=busybox:1 roll-2=busybox:1")
            .then_some(())
    });
    // The first revision came back as revision 3 instead of a new one.
    assert_eq!(history(&s, "sts/roll"), ["2", "3"]);
    assert_eq!(
        names(&s, &["controllerrevisions", "-l", "app=roll"]).len(),
        2
    );
}

#[test]
fn on_delete_updates_a_pod_only_when_it_is_deleted() {
    let (s, _sim) = cluster();
    apply(
        &s,
        &web("od", 2, "busybox:1", "  updateStrategy: {type: OnDelete}"),
    );
    let ready = || jsonpath(&s, &["get", "sts", "od"], "{.status.readyReplicas}");
    wait_for(DEADLINE, "2 ready replicas", || {
        (ready() == "2").then_some(())
    });
    s.ok(&["set", "image", "sts/od", "c=busybox:2"]);
    wait_for(DEADLINE, "a new update revision", || {
        let r = jsonpath(
            &s,
            &["get", "sts", "od"],
            "{.status.observedGeneration} {.status.currentRevision} {.status.updateRevision}",
        );
        let parts: Vec<&str> = r.split(' ').collect();
        (parts.len() == 3 && parts[0] == "2" && parts[1] != parts[2]).then_some(())
    });
    assert_eq!(images(&s, "app=od"), "od-0=busybox:1 od-1=busybox:1");
    s.ok(&["delete", "pod", "od-1", "--wait=false"]);
    wait_for(DEADLINE, "od-1 back at the update revision", || {
        let updated = jsonpath(&s, &["get", "sts", "od"], "{.status.updatedReplicas}");
        (images(&s, "app=od") == "od-0=busybox:1 od-1=busybox:2"
            && updated == "1"
            && ready() == "2")
            .then_some(())
    });
}

#[test]
fn parallel_creates_every_pod_at_once_while_ordered_ready_waits() {
    let (s, _sim) = cluster();
    // No node has this label: the pods stay Pending, never Ready.
    let unschedulable = |name: &str, policy: &str| {
        format!(
            r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: {name}}}
spec:
  replicas: 3
  podManagementPolicy: {policy}
  serviceName: {name}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      nodeSelector: {{disk: none-has-this}}
      containers: [{{name: c, image: busybox}}]
"#
        )
    };
    apply(&s, &unschedulable("ordered", "OrderedReady"));
    apply(&s, &unschedulable("par", "Parallel"));
    wait_count(&s, &["pods", "-l", "app=par"], 3);
    wait_for(DEADLINE, "the ordered set to report its first pod", || {
        (jsonpath(&s, &["get", "sts", "ordered"], "{.status.replicas}") == "1").then_some(())
    });
    assert_eq!(names(&s, &["pods", "-l", "app=ordered"]), ["ordered-0"]);
}

#[test]
fn claims_go_with_their_pods_and_the_set_when_the_policy_says_delete() {
    let (s, _sim) = cluster();
    let policy = format!(
        "  persistentVolumeClaimRetentionPolicy: {{whenScaled: Delete, whenDeleted: Delete}}\n{CLAIMS}"
    );
    apply(&s, &web("db", 3, "busybox", &policy));
    rollout_status(&s, "sts/db");
    let owner = jsonpath(
        &s,
        &["get", "pvc", "www-db-0"],
        "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}",
    );
    assert_eq!(owner, "StatefulSet/db");

    s.ok(&["scale", "sts/db", "--replicas=1"]);
    let left = wait_count(&s, &["pvc", "-l", "app=db"], 1);
    assert_eq!(left, ["www-db-0"]);
    s.ok(&["delete", "sts/db", "--wait=false"]);
    wait_count(&s, &["pvc", "-l", "app=db"], 0);
    wait_count(&s, &["pods", "-l", "app=db"], 0);
}

#[test]
fn the_seed_statefulset_becomes_ready() {
    let (s, _sim) = cluster();
    let seed = common::manifests_dir().join("seeds/003_001_StatefulSet.yaml");
    s.ok(&["apply", "-f", &seed.to_string_lossy()]);
    rollout_status(&s, "sts/postgres");
    let ready = jsonpath(
        &s,
        &["get", "sts", "postgres"],
        "{.status.readyReplicas}/{.status.replicas}",
    );
    assert_eq!(ready, "3/3");
    assert_eq!(names(&s, &["pvc", "-l", "app=postgres"]).len(), 3);
}
