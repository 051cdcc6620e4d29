//! Jobs and CronJobs: upstream's `pkg/apis/batch/validation` (`ValidateJob`,
//! `validateJobSpec`, `ValidateJobSpecUpdate`, `ValidateCronJobCreate`, `validateCronJobSpec`,
//! `ValidateJobTemplateSpec`).
//!
//! Upstream's Job strategy generates the selector and the controller labels inside `Validate`
//! (`generateSelector`) unless `manualSelector` is true; [`generate_job_selector`] is that
//! step, and validation applies it to a copy so an ungenerated Job validates like upstream.

use serde_json::{Map, Value};

use crate::field::{BadValue, FieldError};

use super::cron::parse_standard;
use super::gofmt::string_map;
use super::json::{bool_of, get, int_of, opt_str, semantic_eq, str_of, str_or, subset_eq};
use super::labels::{as_selector, selector_value, validate_label_selector};
use super::meta::{prepare_update, validate_object_meta, validate_object_meta_update};
use super::name::{is_dns1123_label, is_dns1123_subdomain, max_len_error, name_is_dns_subdomain};
use super::path::{
    FIELD_IMMUTABLE, Path, invalid, invalid_int, invalid_raw, invalid_str, nonnegative,
    not_supported, not_supported_str, required, too_long,
};
use super::pod::{restart_policy, validate_pod_template_spec};

const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const LEGACY_JOB_NAME: &str = "job-name";
const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
const JOB_NAME: &str = "batch.kubernetes.io/job-name";

/// Stand-in uid when validation runs before the apiserver assigned one (upstream always has
/// one by then).
const PENDING_UID: &str = "00000000-0000-0000-0000-000000000000";

/// Upstream's `generateSelector`: adds the job-name and controller-uid labels to the pod
/// template (unless the user set them) and selects on `batch.kubernetes.io/controller-uid`.
/// Call it on create for Jobs whose `spec.manualSelector` is not true; idempotent.
pub fn generate_job_selector(job: &mut Value) {
    let name = str_of(get(job, "metadata"), "name").to_string();
    let uid = match str_of(get(job, "metadata"), "uid") {
        "" => PENDING_UID.to_string(),
        u => u.to_string(),
    };
    let Some(spec) = job.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    with_object(spec, "template", |template| {
        with_object(template, "metadata", |meta| {
            with_object(meta, "labels", |labels| {
                for key in [LEGACY_JOB_NAME, JOB_NAME] {
                    labels
                        .entry(key)
                        .or_insert_with(|| Value::from(name.clone()));
                }
                for key in [LEGACY_CONTROLLER_UID, CONTROLLER_UID] {
                    labels
                        .entry(key)
                        .or_insert_with(|| Value::from(uid.clone()));
                }
            })
        })
    });
    with_object(spec, "selector", |selector| {
        with_object(selector, "matchLabels", |match_labels| {
            match_labels
                .entry(CONTROLLER_UID)
                .or_insert_with(|| Value::from(uid.clone()));
        })
    });
}

/// Applies `f` to the object at `m[key]`, creating it (or replacing a non-object) first.
fn with_object(m: &mut Map<String, Value>, key: &str, f: impl FnOnce(&mut Map<String, Value>)) {
    let mut inner = match m.remove(key) {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    };
    f(&mut inner);
    m.insert(key.to_string(), Value::Object(inner));
}

fn manual_selector(job: &Value) -> bool {
    bool_of(get(job, "spec"), "manualSelector") == Some(true)
}

/// `ValidateJob`.
pub(crate) fn validate_job(obj: &Value) -> Vec<FieldError> {
    let mut job = obj.clone();
    if !manual_selector(obj) {
        generate_job_selector(&mut job);
    }
    let mut errs = validate_object_meta(&job, true, name_is_dns_subdomain);
    errs.extend(validate_generated_selector(&job));
    errs.extend(validate_job_spec(get(&job, "spec"), &Path::new("spec")));
    let spec = get(&job, "spec");
    let completions = int_of(spec, "completions").unwrap_or(0);
    if str_of(spec, "completionMode") == "Indexed" && completions > 0 {
        let name = str_of(get(&job, "metadata"), "name");
        let hostname = format!("{name}-{}", completions - 1);
        if !is_dns1123_label(&hostname).is_empty() {
            errs.push(invalid_str(
                &Path::new("metadata").child("name"),
                name,
                &format!("will not able to create pod with invalid DNS label: {hostname}"),
            ));
        }
    }
    errs
}

/// `validateGeneratedSelector` (with `RequirePrefixedLabels`, the default for new Jobs).
fn validate_generated_selector(job: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = get(job, "spec");
    if manual_selector(job) || get(spec, "selector").is_null() {
        return errs;
    }
    // Upstream also requires metadata.uid here, but BeforeCreate has always assigned one by
    // then; a missing uid only means the caller validates before assigning it.
    let meta = get(job, "metadata");
    let uid = match str_of(meta, "uid") {
        "" => PENDING_UID,
        u => u,
    };
    let name = str_of(meta, "name");
    let tmeta = get(get(spec, "template"), "metadata");
    let path = Path::new("spec").child("template").child("metadata");
    let expected = [
        (LEGACY_CONTROLLER_UID, uid),
        (LEGACY_JOB_NAME, name),
        (CONTROLLER_UID, uid),
        (JOB_NAME, name),
    ];
    for (key, want) in expected {
        let p = path.child("labels").key(key);
        match opt_str(get(tmeta, "labels"), key) {
            None => errs.push(required(&p, &format!("must be '{want}'"))),
            Some(v) if v != want => errs.push(invalid_raw(
                &p,
                string_map(get(tmeta, "labels")),
                &format!("must be '{want}'"),
            )),
            Some(_) => {}
        }
    }
    let expected_labels: Map<String, Value> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    let selector = get(spec, "selector");
    if as_selector(selector).is_some_and(|s| !s.matches(&Value::Object(expected_labels))) {
        errs.push(invalid(
            &Path::new("spec").child("selector"),
            selector_value(selector),
            "`selector` not auto-generated",
        ));
    }
    errs
}

/// `ValidateJobSpec`: `validateJobSpec` plus the selector.
fn validate_job_spec(spec: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = validate_job_spec_common(spec, path);
    let selector = get(spec, "selector");
    if selector.is_null() {
        errs.push(required(&path.child("selector"), ""));
    } else {
        errs.extend(validate_label_selector(
            selector,
            false,
            &path.child("selector"),
        ));
    }
    let labels = get(get(get(spec, "template"), "metadata"), "labels");
    if as_selector(selector).is_some_and(|s| !s.matches(labels)) {
        errs.push(invalid_raw(
            &path.child("template").child("metadata").child("labels"),
            string_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
    errs
}

/// `validateJobSpec`, shared by Jobs and CronJob job templates.
fn validate_job_spec_common(spec: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for field in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
    ] {
        if let Some(v) = int_of(spec, field) {
            errs.extend(nonnegative(v, &path.child(field)));
        }
    }
    let per_index = int_of(spec, "backoffLimitPerIndex");
    let max_failed = int_of(spec, "maxFailedIndexes");
    if let Some(m) = max_failed {
        errs.extend(nonnegative(m, &path.child("maxFailedIndexes")));
        if per_index.is_none() {
            errs.push(required(
                &path.child("backoffLimitPerIndex"),
                "when maxFailedIndexes is specified",
            ));
        }
    }
    if let Some(managed_by) = opt_str(spec, "managedBy") {
        errs.extend(validate_domain_prefixed_path(
            managed_by,
            &path.child("managedBy"),
        ));
        if managed_by.len() > 63 {
            errs.push(too_long(&path.child("managedBy"), 63));
        }
    }
    let mode = opt_str(spec, "completionMode");
    let (completions, parallelism) = (int_of(spec, "completions"), int_of(spec, "parallelism"));
    if let Some(mode) = mode {
        if !matches!(mode, "NonIndexed" | "Indexed") {
            errs.push(not_supported_str(
                &path.child("completionMode"),
                mode,
                &["NonIndexed", "Indexed"],
            ));
        }
        if mode == "Indexed" {
            if completions.is_none() {
                errs.push(required(
                    &path.child("completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(p) = parallelism.filter(|p| *p > 100_000) {
                errs.push(invalid_int(
                    &path.child("parallelism"),
                    p,
                    "must be less than or equal to 100000 when completion mode is Indexed",
                ));
            }
            if let (Some(c), Some(m)) = (completions, max_failed)
                && m > c
            {
                errs.push(invalid_int(
                    &path.child("maxFailedIndexes"),
                    m,
                    "must be less than or equal to completions",
                ));
            }
            if let Some(m) = max_failed.filter(|m| *m > 100_000) {
                errs.push(invalid_int(
                    &path.child("maxFailedIndexes"),
                    m,
                    "must be less than or equal to 100000",
                ));
            }
        }
    }
    if mode.is_none_or(|m| m == "NonIndexed") {
        if let Some(b) = per_index {
            errs.push(invalid_int(
                &path.child("backoffLimitPerIndex"),
                b,
                "requires indexed completion mode",
            ));
        }
        if let Some(m) = max_failed {
            errs.push(invalid_int(
                &path.child("maxFailedIndexes"),
                m,
                "requires indexed completion mode",
            ));
        }
    }
    let failure_policy = !get(spec, "podFailurePolicy").is_null();
    if !get(spec, "successPolicy").is_null() && mode != Some("Indexed") {
        errs.push(invalid_raw(
            &path.child("successPolicy"),
            "batch.SuccessPolicy{...}".into(),
            "requires indexed completion mode",
        ));
    }
    if let Some(policy) = opt_str(spec, "podReplacementPolicy") {
        let p = path.child("podReplacementPolicy");
        if failure_policy {
            if policy != "Failed" {
                errs.push(not_supported_str(&p, policy, &["Failed"]));
            }
        } else if !matches!(policy, "Failed" | "TerminatingOrFailed") {
            errs.push(not_supported_str(
                &p,
                policy,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let template = get(spec, "template");
    errs.extend(validate_pod_template_spec(
        template,
        &path.child("template"),
    ));
    // The template's restartPolicy defaults to Always, which Jobs reject as "required".
    let rp = path.child("template").child("spec").child("restartPolicy");
    match restart_policy(get(template, "spec")) {
        "Always" => errs.push(required(&rp, "valid values: \"OnFailure\", \"Never\"")),
        "OnFailure" if failure_policy => errs.push(invalid_str(
            &rp,
            "OnFailure",
            "only \"Never\" is supported when podFailurePolicy is specified",
        )),
        "OnFailure" | "Never" => {}
        other => errs.push(not_supported_str(&rp, other, &["OnFailure", "Never"])),
    }
    errs
}

/// `IsDomainPrefixedPath`.
fn validate_domain_prefixed_path(value: &str, path: &Path) -> Vec<FieldError> {
    if value.is_empty() {
        return vec![required(path, "")];
    }
    let Some((host, rest)) = value
        .split_once('/')
        .filter(|(h, r)| !h.is_empty() && !r.is_empty())
    else {
        return vec![invalid_str(
            path,
            value,
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        )];
    };
    let mut errs: Vec<FieldError> = is_dns1123_subdomain(host)
        .iter()
        .map(|m| invalid_str(path, host, m))
        .collect();
    let ok = rest
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&c));
    if !ok {
        errs.push(invalid_str(
            path,
            rest,
            "Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')",
        ));
    }
    errs
}

fn int_or_null(v: &Value) -> String {
    v.as_i64().map_or("\"null\"".to_string(), |n| n.to_string())
}

/// `ValidateJobUpdate`: metadata, the new spec, and the fields that never change.
pub(crate) fn validate_job_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let path = Path::new("spec");
    let (ns, os) = (get(&new, "spec"), get(old, "spec"));
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_job_spec(ns, &path));
    let (nc, oc) = (get(ns, "completions"), get(os, "completions"));
    if !semantic_eq(nc, oc) {
        if str_of(ns, "completionMode") != "Indexed" {
            errs.push(invalid_raw(
                &path.child("completions"),
                int_or_null(nc),
                FIELD_IMMUTABLE,
            ));
        } else if let Some(c) = nc.as_i64()
            && Some(c) != int_of(ns, "parallelism")
        {
            errs.push(invalid_int(
                &path.child("completions"),
                c,
                "can only be modified in tandem with spec.parallelism",
            ));
        }
    }
    let (nsel, osel) = (get(ns, "selector"), get(os, "selector"));
    if !semantic_eq(nsel, osel) {
        let v = if nsel.is_null() {
            BadValue::Str("null".into())
        } else {
            selector_value(nsel)
        };
        errs.push(invalid(&path.child("selector"), v, FIELD_IMMUTABLE));
    }
    let suspended = bool_of(os, "suspend") == Some(true);
    if !suspended && !subset_eq(get(ns, "template"), get(os, "template")) {
        errs.push(invalid_raw(
            &path.child("template"),
            "core.PodTemplateSpec{...}".into(),
            FIELD_IMMUTABLE,
        ));
    }
    for field in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        let (n, o) = (get(ns, field), get(os, field));
        if !semantic_eq(n, o) {
            let v = match n {
                Value::Null => BadValue::Str("null".into()),
                Value::String(s) => BadValue::Str(s.clone()),
                Value::Number(num) => BadValue::Raw(num.to_string()),
                _ => BadValue::Raw(format!("batch.{}{{...}}", upper_first(field))),
            };
            errs.push(invalid(&path.child(field), v, FIELD_IMMUTABLE));
        }
    }
    errs
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// `ValidateCronJobCreate`.
pub(crate) fn validate_cron_job(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, true, name_is_dns_subdomain);
    errs.extend(validate_cron_job_spec(get(obj, "spec"), None));
    // The controller appends an 11-character suffix to job names, which are DNS labels.
    let name = str_of(get(obj, "metadata"), "name");
    if name.len() > 52 {
        errs.push(invalid_str(
            &Path::new("metadata").child("name"),
            name,
            &max_len_error(52),
        ));
    }
    errs
}

/// `ValidateCronJobUpdate` (the 52-character name limit is not re-checked).
pub(crate) fn validate_cron_job_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_cron_job_spec(
        get(&new, "spec"),
        Some(get(old, "spec")),
    ));
    errs
}

/// `validateCronJobSpec`.
fn validate_cron_job_spec(spec: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let path = Path::new("spec");
    let mut errs = Vec::new();
    let schedule = str_of(spec, "schedule");
    let sp = path.child("schedule");
    if schedule.is_empty() {
        errs.push(required(&sp, ""));
    } else {
        if let Err(msg) = parse_standard(schedule) {
            errs.push(invalid_str(&sp, schedule, &msg));
        }
        let allow_tz = old.is_some_and(|o| str_of(o, "schedule").contains("TZ"));
        if allow_tz && schedule.contains("TZ") && !get(spec, "timeZone").is_null() {
            errs.push(invalid_str(
                &sp,
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && schedule.contains("TZ") {
            errs.push(invalid_str(
                &sp,
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    if let Some(v) = int_of(spec, "startingDeadlineSeconds") {
        errs.extend(nonnegative(v, &path.child("startingDeadlineSeconds")));
    }
    if old.is_none_or(|o| get(o, "timeZone") != get(spec, "timeZone"))
        && let Some(tz) = opt_str(spec, "timeZone")
    {
        errs.extend(validate_time_zone(tz, &path.child("timeZone")));
    }
    let policy = str_or(spec, "concurrencyPolicy", "Allow");
    if !matches!(policy, "Allow" | "Forbid" | "Replace") {
        errs.push(not_supported_str(
            &path.child("concurrencyPolicy"),
            policy,
            &["Allow", "Forbid", "Replace"],
        ));
    }
    let jt = get(spec, "jobTemplate");
    let jp = path.child("jobTemplate");
    let jspec = get(jt, "spec");
    errs.extend(validate_job_spec_common(jspec, &jp.child("spec")));
    let selector = get(jspec, "selector");
    if !selector.is_null() {
        errs.push(invalid(
            &jp.child("spec").child("selector"),
            selector_value(selector),
            "`selector` will be auto-generated",
        ));
    }
    if bool_of(jspec, "manualSelector") == Some(true) {
        errs.push(not_supported(
            &jp.child("spec").child("manualSelector"),
            BadValue::Raw("true".into()),
            &["nil", "false"],
        ));
    }
    for field in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        if let Some(v) = int_of(spec, field) {
            errs.extend(nonnegative(v, &path.child(field)));
        }
    }
    errs
}

/// `validateTimeZone`. The zone database itself is consulted where the host has one.
fn validate_time_zone(tz: &str, path: &Path) -> Vec<FieldError> {
    let value = BadValue::Str(tz.to_string());
    if tz.is_empty() {
        return vec![invalid(
            path,
            value,
            "timeZone must be nil or non-empty string",
        )];
    }
    let part_ok = |p: &str| {
        p != "."
            && p != ".."
            && !p.starts_with('-')
            && (1..=14).contains(&p.len())
            && p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-_+".contains(&c))
    };
    if !tz.split('/').all(part_ok) {
        return vec![invalid(path, value, &format!("unknown time zone {tz}"))];
    }
    let mut errs = Vec::new();
    if tz.eq_ignore_ascii_case("Local") {
        errs.push(invalid(
            path,
            value.clone(),
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    let zoneinfo = std::path::Path::new("/usr/share/zoneinfo");
    if tz != "UTC" && zoneinfo.is_dir() && !zoneinfo.join(tz).is_file() {
        errs.push(invalid(path, value, &format!("unknown time zone {tz}")));
    }
    errs
}
