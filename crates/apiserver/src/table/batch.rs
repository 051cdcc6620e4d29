//! `batch/v1`: jobs (with the `STATUS` column of 1.33) and cron jobs.

use serde_json::Value;

use super::Kind;
use super::cells::{
    AGE, CONTAINERS, Col, Ctx, IMAGES, NAME, arr_at, bool_ptr, containers, format_label_selector,
    human_duration, int_at, name, nanos_between, opt_int, opt_str, parse_time, str_at,
};

/// The printer of a `batch` kind.
pub fn printer(kind: &str) -> Option<Kind> {
    match kind {
        "Job" => Some(Kind::new(JOB, job)),
        "CronJob" => Some(Kind::new(CRON_JOB, cron_job)),
        _ => None,
    }
}

const JOB: &[Col] = &[
    NAME,
    Col::new("Status", "string", "Status of the job."),
    Col::new(
        "Completions",
        "string",
        "The number of pods which reached phase Succeeded.",
    ),
    Col::new("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    Col::new(
        "Selector",
        "string",
        "A label query over pods that should match the pod count.",
    )
    .wide(),
];

/// Whether the job has a condition of `ty` and that (first) condition is `True`.
fn has_condition(job: &Value, ty: &str) -> bool {
    arr_at(job, "/status/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == ty)
        .is_some_and(|c| str_at(c, "/status") == "True")
}

fn job(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let succeeded = int_at(obj, "/status/succeeded");
    let completions = match opt_int(obj, "/spec/completions") {
        Some(c) => format!("{succeeded}/{c}"),
        None => match opt_int(obj, "/spec/parallelism").unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = opt_str(obj, "/status/startTime").and_then(parse_time);
    let completion = opt_str(obj, "/status/completionTime").and_then(parse_time);
    let duration = match (start, completion) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration(nanos_between(s, ctx.now)),
        (Some(s), Some(c)) => human_duration(nanos_between(s, c)),
    };
    let deleting = obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    let status = if has_condition(obj, "Complete") {
        "Complete"
    } else if has_condition(obj, "Failed") {
        "Failed"
    } else if deleting {
        "Terminating"
    } else if has_condition(obj, "Suspended") {
        "Suspended"
    } else if has_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = containers(obj, "/spec/template/spec/containers");
    vec![
        name(obj).into(),
        status.into(),
        completions.into(),
        duration.into(),
        ctx.age(obj).into(),
        names.into(),
        images.into(),
        format_label_selector(obj, "/spec/selector").into(),
    ]
}

const CRON_JOB: &[Col] = &[
    NAME,
    Col::new(
        "Schedule",
        "string",
        "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
    ),
    Col::new(
        "Timezone",
        "string",
        "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones.",
    ),
    Col::new(
        "Suspend",
        "boolean",
        "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.",
    ),
    Col::new(
        "Active",
        "integer",
        "A list of pointers to currently running jobs.",
    ),
    Col::new(
        "Last Schedule",
        "string",
        "Information when was the last time the job was successfully scheduled.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    Col::new(
        "Selector",
        "string",
        "A label query over pods that should match the pod count.",
    )
    .wide(),
];

fn cron_job(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let last_schedule = match opt_str(obj, "/status/lastScheduleTime") {
        Some(t) => ctx.since(Some(t)),
        None => "<none>".to_string(),
    };
    let template = "/spec/jobTemplate/spec";
    let (names, images) = containers(obj, &format!("{template}/template/spec/containers"));
    vec![
        name(obj).into(),
        str_at(obj, "/spec/schedule").into(),
        opt_str(obj, "/spec/timeZone").unwrap_or("<none>").into(),
        bool_ptr(obj, "/spec/suspend").into(),
        (arr_at(obj, "/status/active").len() as i64).into(),
        last_schedule.into(),
        ctx.age(obj).into(),
        names.into(),
        images.into(),
        format_label_selector(obj, &format!("{template}/selector")).into(),
    ]
}
