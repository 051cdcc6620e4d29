//! CronJob controller: Jobs started on schedule (in a time zone), Forbid / Allow / Replace,
//! suspend and resume, too many missed start times, history limits, the seed CronJob.
//!
//! Only one test waits for the clock (up to ~70 s, for a start time computed to be the next
//! minute boundary). The others make a start time due at once the way a controller restart
//! would find it: `status.lastScheduleTime` set back with `kubectl patch --subresource=status`,
//! and a schedule whose latest start time lies in the recent past.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::common::{Server, Sim, apply, jsonpath, manifests_dir, ready_nodes};
use super::{DEADLINE, names, wait_for, wait_gone};

/// A server with one simulated node whose run-to-completion pods run `pod_secs`.
fn cluster_with_pods_running(pod_secs: u32) -> (Server, Sim) {
    let s = Server::start(&[]);
    let secs = pod_secs.to_string();
    let sim = Sim::start(&s, &["--nodes", "1", "--pod-run-seconds", &secs]);
    ready_nodes(&s, 1);
    (s, sim)
}

fn now_secs() -> i64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(d.as_secs()).expect("seconds fit")
}

/// `secs` since the epoch as RFC 3339 at a fixed `offset` (seconds east), with `suffix`
/// (`Z`, `+05:30`) naming it.
fn rfc3339(secs: i64, offset: i64, suffix: &str) -> String {
    let t = secs + offset;
    let (days, rem) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{suffix}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A daily schedule (in UTC) whose start time is the minute of `at`.
fn daily_at(at: i64) -> String {
    format!("{} {} * * *", at / 60 % 60, at / 3600 % 24)
}

fn cron_job(name: &str, schedule: &str, extra_spec: &str, pod_annotations: &str) -> String {
    format!(
        r#"
apiVersion: batch/v1
kind: CronJob
metadata: {{name: {name}}}
spec:
  schedule: "{schedule}"
  {extra_spec}
  jobTemplate:
    metadata:
      labels: {{cron: {name}}}
      annotations: {{note: "from {name}"}}
    spec:
      backoffLimit: 0
      template:
        metadata: {{annotations: {{{pod_annotations}}}}}
        spec:
          restartPolicy: Never
          containers: [{{name: c, image: busybox}}]
"#
    )
}

/// One cell of `kubectl get cronjob <name>`, found under its header (values may contain
/// spaces, like SCHEDULE).
fn column(s: &Server, name: &str, header: &str) -> String {
    let out = s.ok(&["get", "cronjob", name]);
    let mut lines = out.lines();
    let head = lines.next().unwrap_or_default();
    let row = lines.next().unwrap_or_default();
    let start = head
        .find(header)
        .unwrap_or_else(|| panic!("no {header} in {head:?}"));
    let after = start + header.len();
    let end = head[after..]
        .find(|c: char| c != ' ')
        .map_or(row.len(), |i| after + i);
    row.get(start..end.min(row.len()))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn wait_column(s: &Server, name: &str, header: &str, want: impl Fn(&str) -> bool) -> String {
    wait_for(DEADLINE, &format!("{header} of cronjob {name}"), || {
        let v = column(s, name, header);
        want(&v).then_some(v)
    })
}

/// `reason: message` of every event about `name`.
fn events(s: &Server, name: &str) -> String {
    jsonpath(
        s,
        &[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={name}"),
        ],
        r#"{range .items[*]}{.reason}: {.message}{"\n"}{end}"#,
    )
}

fn wait_event(s: &Server, name: &str, line: &str) {
    wait_for(DEADLINE, &format!("event {line:?} about {name}"), || {
        events(s, name).lines().any(|l| l == line).then_some(())
    });
}

/// Jobs labelled by the template of CronJob `name`, by name.
fn jobs_of(s: &Server, name: &str) -> Vec<String> {
    let mut v = names(s, &["jobs", "-l", &format!("cron={name}")]);
    v.sort();
    v
}

/// Sets `status.lastScheduleTime` (and optionally `status.active`) as a controller that
/// last ran long ago would find them.
fn set_status(s: &Server, name: &str, last_schedule: i64, active_job: Option<&str>) {
    let last = rfc3339(last_schedule, 0, "Z");
    let active = match active_job {
        Some(job) => {
            let uid = jsonpath(s, &["get", "job", job], "{.metadata.uid}");
            format!(
                r#","active":[{{"apiVersion":"batch/v1","kind":"Job","namespace":"default","name":"{job}","uid":"{uid}"}}]"#
            )
        }
        None => String::new(),
    };
    let patch = format!(r#"{{"status":{{"lastScheduleTime":"{last}"{active}}}}}"#);
    s.ok(&[
        "patch",
        "cronjob",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch,
    ]);
}

#[test]
fn a_cronjob_starts_a_job_at_its_next_start_time_in_its_time_zone() {
    let (s, _sim) = cluster_with_pods_running(15);
    // The next minute boundary far enough ahead for the CronJob to exist before it.
    let now = now_secs();
    let mut at = (now / 60 + 1) * 60;
    if at - now < 10 {
        at += 60;
    }
    // Asia/Kolkata is UTC+05:30 all year.
    let kolkata = at + 19_800;
    let schedule = daily_at(kolkata);
    apply(
        &s,
        &cron_job("tick", &schedule, "timeZone: Asia/Kolkata", ""),
    );
    assert_eq!(column(&s, "tick", "SCHEDULE"), schedule);
    assert_eq!(column(&s, "tick", "TIMEZONE"), "Asia/Kolkata");
    assert_eq!(column(&s, "tick", "SUSPEND"), "False");
    assert_eq!(column(&s, "tick", "LAST SCHEDULE"), "<none>");

    // Named after the start time in minutes since the epoch.
    let job = format!("tick-{}", at / 60);
    wait_for(Duration::from_secs(90), "the scheduled job", || {
        s.kubectl(&["get", "job", &job])
            .status
            .success()
            .then_some(())
    });
    let meta = jsonpath(
        &s,
        &["get", "job", &job],
        r#"{.metadata.annotations.batch\.kubernetes\.io/cronjob-scheduled-timestamp} {.metadata.annotations.note} {.metadata.labels.cron} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}"#,
    );
    assert_eq!(
        meta,
        format!(
            "{} from tick tick CronJob/tick/true",
            rfc3339(at, 19_800, "+05:30")
        )
    );
    assert_eq!(wait_column(&s, "tick", "ACTIVE", |v| v == "1"), "1");
    wait_column(&s, "tick", "LAST SCHEDULE", |v| v != "<none>");
    let active = jsonpath(&s, &["get", "cronjob", "tick"], "{.status.active[0].name}");
    assert_eq!(active, job);
    wait_event(&s, "tick", &format!("SuccessfulCreate: Created job {job}"));

    // Once the Job controller finishes it, the CronJob notices.
    wait_column(&s, "tick", "ACTIVE", |v| v == "0");
    wait_event(
        &s,
        "tick",
        &format!("SawCompletedJob: Saw completed job: {job}, condition: Complete"),
    );
    let succeeded = jsonpath(
        &s,
        &["get", "cronjob", "tick"],
        "{.status.lastSuccessfulTime}",
    );
    assert!(!succeeded.is_empty(), "no lastSuccessfulTime");
}

#[test]
fn concurrency_policies_suspend_and_missed_start_times_as_kubectl_sees_them() {
    // Pods that outlive the test keep every Job running.
    let (s, _sim) = cluster_with_pods_running(3600);
    let now = now_secs();
    // The latest start time was an hour ago; the next one is a day later.
    let due = (now - 3600) / 60 * 60;
    let schedule = daily_at(due);
    let utc = "timeZone: Etc/UTC";
    for (name, extra) in [
        ("forbid", format!("{utc}\n  concurrencyPolicy: Forbid")),
        ("allow", utc.to_string()),
        ("replace", format!("{utc}\n  concurrencyPolicy: Replace")),
        ("paused", format!("{utc}\n  suspend: true")),
    ] {
        apply(&s, &cron_job(name, &schedule, &extra, ""));
    }
    // A Job started by hand from each CronJob the policies decide about.
    for name in ["forbid", "allow", "replace"] {
        s.ok(&[
            "create",
            "job",
            &format!("{name}-manual"),
            &format!("--from=cronjob/{name}"),
        ]);
    }
    assert_eq!(column(&s, "paused", "SUSPEND"), "True");
    // Suspended first, so its (idle) sync is queued before the others act.
    set_status(&s, "paused", now - 7200, None);
    for name in ["forbid", "allow", "replace"] {
        set_status(&s, name, now - 7200, Some(&format!("{name}-manual")));
    }
    let scheduled = |name: &str| format!("{name}-{}", due / 60);

    // Allow: a second Job runs beside the first.
    wait_for(DEADLINE, "allow's scheduled job", || {
        (jobs_of(&s, "allow") == [scheduled("allow"), "allow-manual".to_string()]).then_some(())
    });
    wait_column(&s, "allow", "ACTIVE", |v| v == "2");
    assert_ne!(column(&s, "allow", "LAST SCHEDULE"), "<none>");

    // Forbid: skipped while the first runs.
    wait_event(
        &s,
        "forbid",
        "JobAlreadyActive: Not starting job because prior execution is running and concurrency policy is Forbid",
    );
    assert_eq!(jobs_of(&s, "forbid"), ["forbid-manual"]);
    assert_eq!(column(&s, "forbid", "ACTIVE"), "1");

    // Replace: the running Job is deleted and the new one started.
    wait_event(
        &s,
        "replace",
        "SuccessfulDelete: Deleted job replace-manual",
    );
    wait_gone(&s, &["get", "job", "replace-manual"]);
    wait_for(DEADLINE, "replace's scheduled job", || {
        (jobs_of(&s, "replace") == [scheduled("replace")]).then_some(())
    });
    let active = jsonpath(
        &s,
        &["get", "cronjob", "replace"],
        "{.status.active[*].name}",
    );
    assert_eq!(active, scheduled("replace"));

    // Suspended: nothing started; resumed: the missed start time runs.
    assert!(jobs_of(&s, "paused").is_empty());
    s.ok(&[
        "patch",
        "cronjob",
        "paused",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);
    assert_eq!(column(&s, "paused", "SUSPEND"), "False");
    wait_for(DEADLINE, "the resumed job", || {
        (jobs_of(&s, "paused") == [scheduled("paused")]).then_some(())
    });
    wait_column(&s, "paused", "ACTIVE", |v| v == "1");

    // More than 100 missed hourly start times: reported, and the latest still runs.
    let minute = (now - 120) / 60 * 60;
    apply(
        &s,
        &cron_job("lagging", &format!("{} * * * *", minute / 60 % 60), utc, ""),
    );
    set_status(&s, "lagging", now - 200 * 3600, None);
    wait_event(
        &s,
        "lagging",
        "TooManyMissedTimes: too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
    );
    wait_for(DEADLINE, "lagging's latest job", || {
        (jobs_of(&s, "lagging") == [format!("lagging-{}", minute / 60)]).then_some(())
    });
}

#[test]
fn the_seed_cronjob_is_accepted_and_scheduled_and_tz_in_a_schedule_is_rejected() {
    let (s, _sim) = cluster_with_pods_running(3600);
    let seed = manifests_dir().join("seeds/006_001_CronJob.yaml");
    s.ok(&["apply", "-f", &seed.to_string_lossy()]);
    assert_eq!(column(&s, "daily-backup", "SCHEDULE"), "0 2 * * *");
    assert_eq!(column(&s, "daily-backup", "TIMEZONE"), "<none>");
    assert_eq!(column(&s, "daily-backup", "SUSPEND"), "False");
    assert_eq!(column(&s, "daily-backup", "ACTIVE"), "0");
    assert_eq!(column(&s, "daily-backup", "LAST SCHEDULE"), "<none>");

    // Last run two days ago: the latest 02:00 start is due now.
    let now = now_secs();
    set_status(&s, "daily-backup", now - 50 * 3600, None);
    let job = wait_for(DEADLINE, "the daily backup job", || {
        names(&s, &["jobs"]).into_iter().next()
    });
    let minutes: i64 = job
        .strip_prefix("daily-backup-")
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("job name {job}"));
    let started = minutes * 60;
    assert!(
        started <= now && now - started < 24 * 3600,
        "scheduled at {started}, now {now}"
    );
    let stamp = jsonpath(
        &s,
        &["get", "job", &job],
        r#"{.metadata.annotations.batch\.kubernetes\.io/cronjob-scheduled-timestamp}"#,
    );
    assert_eq!(stamp, rfc3339(started, 0, "Z"));
    wait_column(&s, "daily-backup", "ACTIVE", |v| v == "1");
    assert_ne!(column(&s, "daily-backup", "LAST SCHEDULE"), "<none>");

    // A time zone in the schedule is refused on create, as upstream: use spec.timeZone.
    let out = s.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(&cron_job("zoned", "TZ=UTC 0 * * * *", "", "")),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "TZ= schedule accepted");
    assert!(
        err.contains("cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
        "{err}"
    );
}

#[test]
fn history_limits_keep_the_newest_finished_jobs() {
    let (s, _sim) = cluster_with_pods_running(1);
    // Start times that will not come during the test.
    let later = daily_at(now_secs() + 6 * 3600);
    let limits = "timeZone: Etc/UTC\n  successfulJobsHistoryLimit: 2\n  failedJobsHistoryLimit: 1";
    apply(&s, &cron_job("hist", &later, limits, ""));
    apply(
        &s,
        &cron_job("flaky", &later, limits, r#""sim.rkube.io/exit-code": "1""#),
    );
    for name in ["hist", "flaky"] {
        for n in ["a", "b", "c"] {
            s.ok(&[
                "create",
                "job",
                &format!("{name}-{n}"),
                &format!("--from=cronjob/{name}"),
            ]);
        }
    }
    // Started in name order (ties broken by name): the oldest go.
    wait_for(DEADLINE, "two complete jobs kept", || {
        (jobs_of(&s, "hist") == ["hist-b", "hist-c"]).then_some(())
    });
    wait_event(&s, "hist", "SuccessfulDelete: Deleted job hist-a");
    wait_for(DEADLINE, "one failed job kept", || {
        (jobs_of(&s, "flaky") == ["flaky-c"]).then_some(())
    });
    wait_event(&s, "flaky", "SuccessfulDelete: Deleted job flaky-b");
    let status = jsonpath(
        &s,
        &["get", "job", "flaky-c"],
        "{.status.conditions[?(@.type==\"Failed\")].status}",
    );
    assert_eq!(status, "True");
    // Jobs started by hand count for lastSuccessfulTime too, as upstream.
    let succeeded = jsonpath(
        &s,
        &["get", "cronjob", "hist"],
        "{.status.lastSuccessfulTime}",
    );
    assert!(!succeeded.is_empty(), "no lastSuccessfulTime");
    let failed = jsonpath(
        &s,
        &["get", "cronjob", "flaky"],
        "{.status.lastSuccessfulTime}",
    );
    assert!(failed.is_empty(), "{failed}");
    // Neither is active: they were started by hand.
    assert_eq!(column(&s, "hist", "ACTIVE"), "0");
    assert!(
        events(&s, "hist").contains(
            "UnexpectedJob: Saw a job that the controller did not create or forgot: hist-"
        )
    );
}
