//! Every seed manifest at once, as a user would apply them: the workloads converge.

use super::common::{jsonpath, manifests_dir};
use super::{DEADLINE, cluster, rollout_status, sorted_values, wait_for};

#[test]
fn the_seed_workloads_reach_their_ready_state_together() {
    let (s, _sim) = cluster();
    // The ResourceQuota seed lives in team-a, which a user creates first.
    s.ok(&["create", "namespace", "team-a"]);
    let dir = manifests_dir().join("seeds");
    s.ok(&["apply", "-f", dir.to_str().expect("utf-8 path")]);
    for what in [
        "deploy/nginx-deployment",
        "deploy/my-app-deployment",
        "statefulset/postgres",
        "daemonset/fluentd",
    ] {
        let out = rollout_status(&s, what);
        assert!(
            out.contains("successfully rolled out") || out.contains("roll out complete"),
            "{what}: {out}"
        );
    }
    s.ok(&[
        "wait",
        "--for=condition=complete",
        "job/backup-job",
        "--timeout=60s",
    ]);
    assert_eq!(
        jsonpath(
            &s,
            &["get", "deploy", "nginx-deployment"],
            "{.status.availableReplicas}"
        ),
        "3"
    );
    // The Service in front of nginx lists every pod it selects (the Deployment's and the
    // seed pods labelled app=nginx).
    wait_for(DEADLINE, "nginx-service endpoints", || {
        let eps = sorted_values(
            &s,
            &["get", "endpoints", "nginx-service"],
            "{.subsets[*].addresses[*].ip}",
        );
        let pods = sorted_values(
            &s,
            &["get", "pods", "-l", "app=nginx"],
            "{.items[*].status.podIP}",
        );
        (eps.len() >= 3 && eps == pods).then_some(())
    });
    // The CronJob is accepted and scheduled for its next 02:00.
    assert_eq!(
        jsonpath(&s, &["get", "cronjob", "daily-backup"], "{.spec.schedule}"),
        "0 2 * * *"
    );
}
