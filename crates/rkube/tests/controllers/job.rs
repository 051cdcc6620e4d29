//! Job controller: completions and parallelism, Indexed Jobs, the back-off limit, the
//! deadline, a FailJob rule, suspend and resume, a hundred completions, the seed Job.
//!
//! Failures come from the simulator's `sim.rkube.io/exit-code` pod annotation; pods run
//! for the `--pod-run-seconds` each test gives its simulator.

use super::common::{Server, Sim, apply, jsonpath, manifests_dir, ready_nodes};
use super::{DEADLINE, names, wait_for};

/// A server with three simulated nodes whose run-to-completion pods run `pod_secs`.
pub(super) fn cluster_with_pods_running(pod_secs: u32) -> (Server, Sim) {
    let s = Server::start(&[]);
    let secs = pod_secs.to_string();
    let sim = Sim::start(&s, &["--nodes", "3", "--pod-run-seconds", &secs]);
    ready_nodes(&s, 3);
    (s, sim)
}

/// A Job of busybox pods; `extra_spec` and `pod_annotations` are YAML flow fragments.
pub(super) fn job(name: &str, extra_spec: &str, pod_annotations: &str) -> String {
    format!(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {{name: {name}}}
spec:
  {extra_spec}
  template:
    metadata: {{annotations: {{{pod_annotations}}}}}
    spec:
      restartPolicy: Never
      containers: [{{name: c, image: busybox}}]
"#
    )
}

/// `kubectl wait --for=condition=<cond>`, which must succeed.
pub(super) fn wait_condition(s: &Server, what: &str, cond: &str) {
    s.ok(&[
        "wait",
        &format!("--for=condition={cond}"),
        what,
        "--timeout=60s",
    ]);
}

/// One cell of `kubectl get job <name>`, under its header.
fn column(s: &Server, name: &str, header: &str) -> String {
    let out = s.ok(&["get", "job", name]);
    let mut lines = out.lines();
    let head = lines.next().unwrap_or_default();
    let row = lines.next().unwrap_or_default();
    let start = head
        .find(header)
        .unwrap_or_else(|| panic!("no {header} in {head}"));
    let cell = row.get(start..).unwrap_or_default();
    cell.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `reason: message` lines of the Job's events.
fn events(s: &Server, name: &str) -> String {
    jsonpath(
        s,
        &[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.kind=Job,involvedObject.name={name}"),
        ],
        r#"{range .items[*]}{.reason}: {.message}{"\n"}{end}"#,
    )
}

fn wait_event(s: &Server, name: &str, line: &str) {
    wait_for(DEADLINE, &format!("event {line:?} on {name}"), || {
        events(s, name).lines().any(|l| l == line).then_some(())
    });
}

/// The condition of `type_` as `status/reason/message`.
fn condition(s: &Server, name: &str, type_: &str) -> String {
    jsonpath(
        s,
        &["get", "job", name],
        &format!(
            r#"{{.status.conditions[?(@.type=="{type_}")].status}}/{{.status.conditions[?(@.type=="{type_}")].reason}}/{{.status.conditions[?(@.type=="{type_}")].message}}"#
        ),
    )
}

/// Pods of the Job still holding the tracking finalizer.
fn tracked_pods(s: &Server, name: &str) -> Vec<String> {
    let out = jsonpath(
        s,
        &[
            "get",
            "pods",
            "-l",
            &format!("batch.kubernetes.io/job-name={name}"),
        ],
        r#"{range .items[*]}{.metadata.name} {.metadata.finalizers}{"\n"}{end}"#,
    );
    out.lines()
        .filter(|l| l.contains("batch.kubernetes.io/job-tracking"))
        .map(String::from)
        .collect()
}

#[test]
fn a_parallel_job_completes_and_an_indexed_job_reports_its_indexes() {
    let (s, _sim) = cluster_with_pods_running(1);
    apply(&s, &job("work", "completions: 3\n  parallelism: 2", ""));
    apply(
        &s,
        &job(
            "indexed",
            "completions: 3\n  parallelism: 3\n  completionMode: Indexed",
            "",
        ),
    );
    wait_condition(&s, "job/work", "complete");
    assert_eq!(column(&s, "work", "COMPLETIONS"), "3/3");
    assert_eq!(column(&s, "work", "STATUS"), "Complete");
    assert_eq!(
        jsonpath(
            &s,
            &["get", "job", "work"],
            "{.status.succeeded}/{.status.failed}/{.status.active}/{.status.ready}/{.status.terminating}/{.status.uncountedTerminatedPods}"
        ),
        "3///0/0/{}",
        "zero counters are left out, as upstream"
    );
    assert_eq!(
        condition(&s, "work", "Complete"),
        "True/CompletionsReached/Reached expected number of succeeded pods"
    );
    assert_eq!(
        condition(&s, "work", "SuccessCriteriaMet"),
        "True/CompletionsReached/Reached expected number of succeeded pods"
    );
    let times = jsonpath(
        &s,
        &["get", "job", "work"],
        "{.status.startTime} {.status.completionTime}",
    );
    assert_eq!(times.split_whitespace().count(), 2, "{times}");
    // Pods: named after the Job, labelled with both label generations, owned by it and
    // released from the tracking finalizer once counted.
    let pods = names(&s, &["pods", "-l", "job-name=work"]);
    assert_eq!(pods.len(), 3, "{pods:?}");
    assert!(pods.iter().all(|p| p.starts_with("work-")), "{pods:?}");
    let owners = jsonpath(
        &s,
        &["get", "pods", "-l", "batch.kubernetes.io/job-name=work"],
        r#"{range .items[*]}{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}/{.metadata.labels.controller-uid} {end}"#,
    );
    let uid = jsonpath(&s, &["get", "job", "work"], "{.metadata.uid}");
    assert_eq!(owners, format!("Job/work/true/{uid} ").repeat(3).trim_end());
    assert_eq!(tracked_pods(&s, "work"), Vec::<String>::new());
    wait_event(&s, "work", "Completed: Job completed");
    assert!(events(&s, "work").contains(&format!("SuccessfulCreate: Created pod: {}", pods[0])));

    wait_condition(&s, "job/indexed", "complete");
    assert_eq!(
        jsonpath(&s, &["get", "job", "indexed"], "{.status.completedIndexes}"),
        "0-2"
    );
    assert_eq!(column(&s, "indexed", "COMPLETIONS"), "3/3");
    let pods = jsonpath(
        &s,
        &["get", "pods", "-l", "job-name=indexed"],
        r#"{range .items[*]}{.metadata.name}|{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}|{.metadata.labels.batch\.kubernetes\.io/job-completion-index}|{.spec.hostname}|{.spec.containers[0].env[0].name}={.spec.containers[0].env[0].valueFrom.fieldRef.fieldPath}{"\n"}{end}"#,
    );
    let mut seen: Vec<String> = Vec::new();
    for line in pods.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let ix = f[1];
        assert!(f[0].starts_with(&format!("indexed-{ix}-")), "{line}");
        assert_eq!(f[2], ix, "{line}");
        assert_eq!(f[3], format!("indexed-{ix}"), "{line}");
        assert_eq!(
            f[4],
            "JOB_COMPLETION_INDEX=metadata.labels['batch.kubernetes.io/job-completion-index']"
        );
        seen.push(ix.to_string());
    }
    seen.sort();
    assert_eq!(seen, ["0", "1", "2"], "{pods}");
}

#[test]
fn failing_jobs_stop_at_the_backoff_limit_the_deadline_or_a_fail_job_rule() {
    let (s, _sim) = cluster_with_pods_running(1);
    apply(
        &s,
        &job(
            "flaky",
            "backoffLimit: 1",
            r#""sim.rkube.io/exit-code": "1""#,
        ),
    );
    apply(
        &s,
        &job(
            "slow",
            "activeDeadlineSeconds: 2",
            r#""sim.rkube.io/run-seconds": "600""#,
        ),
    );
    let rule =
        "podFailurePolicy: {rules: [{action: FailJob, onExitCodes: {operator: In, values: [42]}}]}";
    apply(
        &s,
        &job("doomed", rule, r#""sim.rkube.io/exit-code": "42""#),
    );

    wait_condition(&s, "job/doomed", "failed");
    let pod = names(&s, &["pods", "-l", "job-name=doomed"]);
    assert_eq!(pod.len(), 1, "no replacement after a FailJob rule: {pod:?}");
    let message = format!(
        "Container c for pod default/{} failed with exit code 42 matching FailJob rule at index 0",
        pod[0]
    );
    assert_eq!(
        condition(&s, "doomed", "Failed"),
        format!("True/PodFailurePolicy/{message}")
    );
    assert_eq!(
        condition(&s, "doomed", "FailureTarget"),
        format!("True/PodFailurePolicy/{message}")
    );
    wait_event(&s, "doomed", &format!("PodFailurePolicy: {message}"));

    wait_condition(&s, "job/slow", "failed");
    assert_eq!(
        condition(&s, "slow", "Failed"),
        "True/DeadlineExceeded/Job was active longer than specified deadline"
    );
    // Its pod was stopped, counted (the simulated container exits 0 on SIGTERM) and let go.
    assert_eq!(
        jsonpath(&s, &["get", "job", "slow"], "{.status.active}"),
        ""
    );
    wait_event(
        &s,
        "slow",
        "DeadlineExceeded: Job was active longer than specified deadline",
    );

    // One failure, a 10 s back-off, a second failure: past backoffLimit 1.
    wait_condition(&s, "job/flaky", "failed");
    assert_eq!(
        condition(&s, "flaky", "Failed"),
        "True/BackoffLimitExceeded/Job has reached the specified backoff limit"
    );
    assert_eq!(column(&s, "flaky", "STATUS"), "Failed");
    assert_eq!(
        jsonpath(
            &s,
            &["get", "job", "flaky"],
            "{.status.failed}/{.status.succeeded}"
        ),
        "2/"
    );
    assert_eq!(names(&s, &["pods", "-l", "job-name=flaky"]).len(), 2);
    assert_eq!(tracked_pods(&s, "flaky"), Vec::<String>::new());
    wait_event(
        &s,
        "flaky",
        "BackoffLimitExceeded: Job has reached the specified backoff limit",
    );
}

#[test]
fn a_suspended_job_runs_nothing_until_resumed() {
    let (s, _sim) = cluster_with_pods_running(1);
    apply(&s, &job("later", "suspend: true\n  completions: 2", ""));
    wait_condition(&s, "job/later", "suspended");
    assert_eq!(
        condition(&s, "later", "Suspended"),
        "True/JobSuspended/Job suspended"
    );
    assert_eq!(column(&s, "later", "STATUS"), "Suspended");
    assert!(names(&s, &["pods", "-l", "job-name=later"]).is_empty());
    assert_eq!(
        jsonpath(&s, &["get", "job", "later"], "{.status.startTime}"),
        ""
    );
    s.ok(&[
        "patch",
        "job",
        "later",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);
    wait_condition(&s, "job/later", "complete");
    assert_eq!(
        condition(&s, "later", "Suspended"),
        "False/JobResumed/Job resumed"
    );
    wait_event(&s, "later", "Suspended: Job suspended");
    wait_event(&s, "later", "Resumed: Job resumed");
}

#[test]
fn a_hundred_completions_ten_at_a_time() {
    let (s, _sim) = cluster_with_pods_running(1);
    apply(&s, &job("many", "completions: 100\n  parallelism: 10", ""));
    wait_condition(&s, "job/many", "complete");
    assert_eq!(column(&s, "many", "COMPLETIONS"), "100/100");
    assert_eq!(
        jsonpath(&s, &["get", "job", "many"], "{.status.succeeded}"),
        "100"
    );
    assert_eq!(names(&s, &["pods", "-l", "job-name=many"]).len(), 100);
    assert_eq!(tracked_pods(&s, "many"), Vec::<String>::new());
}

#[test]
fn the_seed_job_completes() {
    let (s, _sim) = cluster_with_pods_running(1);
    let seed = manifests_dir().join("seeds/005_001_Job.yaml");
    s.ok(&["apply", "-f", &seed.to_string_lossy()]);
    wait_condition(&s, "job/backup-job", "complete");
    assert_eq!(column(&s, "backup-job", "COMPLETIONS"), "1/1");
}
