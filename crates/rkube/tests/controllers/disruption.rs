//! Disruption controller: PodDisruptionBudget status as `kubectl get pdb` shows it.

use super::common::{apply, jsonpath};
use super::{DEADLINE, cluster, rollout_status, wait_for};

const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: db}
spec:
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: min2}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: db}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: max50}
spec:
  maxUnavailable: 50%
  selector: {matchLabels: {app: db}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: loose}
spec:
  minAvailable: 50%
  selector: {matchLabels: {app: loose}}
"#;

fn status(s: &super::common::Server, name: &str) -> String {
    jsonpath(
        s,
        &["get", "pdb", name],
        "{.status.expectedPods}/{.status.desiredHealthy}/{.status.currentHealthy}/{.status.disruptionsAllowed}",
    )
}

#[test]
fn budgets_report_how_many_disruptions_are_allowed() {
    let (s, _sim) = cluster();
    apply(&s, APP);
    rollout_status(&s, "deploy/db");
    wait_for(DEADLINE, "min2 status", || {
        (status(&s, "min2") == "3/2/3/1").then_some(())
    });
    // 50% of 3 unavailable rounds up to 2: one must stay healthy.
    wait_for(DEADLINE, "max50 status", || {
        (status(&s, "max50") == "3/1/3/2").then_some(())
    });
    let shown = s.ok(&["get", "pdb", "min2"]);
    let row = shown.lines().nth(1).unwrap_or_default();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols.get(3), Some(&"1"), "ALLOWED DISRUPTIONS: {shown}");
    let cond = jsonpath(
        &s,
        &["get", "pdb", "min2"],
        r#"{.status.conditions[?(@.type=="DisruptionAllowed")].reason}"#,
    );
    assert_eq!(cond, "SufficientPods");
    // A pod without a controller cannot be scaled against a percentage.
    s.ok(&["run", "lonely", "--image=busybox", "--labels=app=loose"]);
    wait_for(DEADLINE, "loose SyncFailed", || {
        let c = jsonpath(
            &s,
            &["get", "pdb", "loose"],
            r#"{.status.conditions[?(@.type=="DisruptionAllowed")].reason}"#,
        );
        (c == "SyncFailed").then_some(())
    });
    s.ok(&["scale", "deploy/db", "--replicas=2"]);
    wait_for(DEADLINE, "min2 at its floor", || {
        (status(&s, "min2") == "2/2/2/0").then_some(())
    });
    let cond = jsonpath(
        &s,
        &["get", "pdb", "min2"],
        r#"{.status.conditions[?(@.type=="DisruptionAllowed")].reason}"#,
    );
    assert_eq!(cond, "InsufficientPods");
}
