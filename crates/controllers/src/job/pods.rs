//! The pods a Job creates and the order it deletes them in.

use std::cmp::Ordering;
use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::indexes::{self, COMPLETION_INDEX, INDEX_FAILURE_COUNT, INDEX_IGNORED_FAILURE_COUNT};
use super::{TRACKING_FINALIZER, is_indexed};
use crate::{controller_ref, podutil};

const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// Upstream `names.MaxGeneratedNameLength`: 63 less the 5 random characters.
const MAX_GENERATE_NAME: usize = 58;

/// The Job's template as every pod gets it: the tracking finalizer and, for an Indexed
/// Job, `JOB_COMPLETION_INDEX` in every container (read from the index label through the
/// downward API, as 1.33 does with PodIndexLabel on).
pub fn base_template(job: &Job) -> PodTemplateSpec {
    let mut t = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let meta = t.metadata.get_or_insert_with(Default::default);
    let finalizers = meta.finalizers.get_or_insert_with(Vec::new);
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.into());
    }
    if is_indexed(job)
        && let Some(spec) = t.spec.as_mut()
    {
        for c in spec
            .init_containers
            .iter_mut()
            .flatten()
            .chain(spec.containers.iter_mut())
        {
            add_index_env(c);
        }
    }
    t
}

fn add_index_env(c: &mut Container) {
    let env = c.env.get_or_insert_with(Vec::new);
    if env.iter().any(|e| e.name == COMPLETION_INDEX_ENV) {
        return;
    }
    env.push(EnvVar {
        name: COMPLETION_INDEX_ENV.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
            }),
            ..Default::default()
        }),
    });
}

/// Upstream `podGenerateNameWithIndex`: `<job>-<index>-`, the job name cut to fit.
fn generate_name_with_index(job: &str, index: i32) -> String {
    let suffix = format!("-{index}-");
    let mut prefix = job.to_string();
    let room = MAX_GENERATE_NAME.saturating_sub(suffix.len());
    if prefix.len() > room {
        let mut end = room;
        while !prefix.is_char_boundary(end) {
            end -= 1;
        }
        prefix.truncate(end);
    }
    prefix + &suffix
}

/// One pod from `template` for `job`. An Indexed Job's pod carries its index (annotation,
/// label, hostname `<job>-<index>`, name `<job>-<index>-xxxxx`); with
/// `backoffLimitPerIndex` it also carries the index's failure counts so far.
pub fn pod_for(
    job: &Job,
    template: &PodTemplateSpec,
    index: Option<i32>,
    failure_counts: Option<(i32, i32)>,
) -> Pod {
    let name = job.name_any();
    let meta = template.metadata.clone().unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    let mut spec = template.spec.clone();
    let generate_name = match index {
        Some(ix) => {
            annotations.insert(COMPLETION_INDEX.into(), ix.to_string());
            labels.insert(COMPLETION_INDEX.into(), ix.to_string());
            if let Some(s) = spec.as_mut() {
                s.hostname = Some(format!("{name}-{ix}"));
            }
            if let Some((failed, ignored)) = failure_counts {
                annotations.insert(INDEX_FAILURE_COUNT.into(), failed.to_string());
                if ignored > 0 {
                    annotations.insert(INDEX_IGNORED_FAILURE_COUNT.into(), ignored.to_string());
                }
            }
            generate_name_with_index(&name, ix)
        }
        None => format!("{name}-"),
    };
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            labels: (!labels.is_empty()).then_some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            finalizers: meta.finalizers,
            owner_references: Some(vec![controller_ref::reference(job)]),
            ..Default::default()
        },
        spec,
        status: None,
    }
}

fn phase_rank(pod: &Pod) -> u8 {
    match podutil::phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

/// Upstream `controller.ActivePods` order, least valuable first: unscheduled, then
/// pending < unknown < running, not ready, ready for less time, more restarts, newer.
pub fn delete_first(a: &Pod, b: &Pod) -> Ordering {
    let assigned = |p: &Pod| !podutil::node_name(p).is_empty();
    assigned(a)
        .cmp(&assigned(b))
        .then(phase_rank(a).cmp(&phase_rank(b)))
        .then(podutil::is_ready(a).cmp(&podutil::is_ready(b)))
        .then_with(
            || match (podutil::ready_since(a), podutil::ready_since(b)) {
                (Some(x), Some(y)) => y.cmp(&x),
                _ => Ordering::Equal,
            },
        )
        .then(podutil::restarts(b).cmp(&podutil::restarts(a)))
        .then_with(|| {
            let t = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            t(b).cmp(&t(a))
        })
}

/// Upstream `activePodsForRemoval`: at least `rm_at_least` active pods, and for an Indexed
/// Job also every pod with a repeated or invalid index.
pub fn for_removal(job: &Job, active: &[Arc<Pod>], rm_at_least: usize) -> Vec<Arc<Pod>> {
    let (mut rm, mut left) = if is_indexed(job) {
        let completions = job.spec.as_ref().and_then(|s| s.completions).unwrap_or(0);
        indexes::duplicates(active, completions, delete_first)
    } else {
        (Vec::new(), active.to_vec())
    };
    if rm.len() < rm_at_least {
        left.sort_by(|a, b| delete_first(a, b));
        let more = (rm_at_least - rm.len()).min(left.len());
        rm.extend(left.drain(..more));
    }
    rm
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::JobSpec;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};

    fn job(mode: &str) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("work".into()),
                namespace: Some("ns".into()),
                uid: Some("uid-1".into()),
                ..Default::default()
            },
            spec: Some(JobSpec {
                completion_mode: Some(mode.into()),
                completions: Some(3),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(
                            [(
                                "batch.kubernetes.io/job-name".to_string(),
                                "work".to_string(),
                            )]
                            .into(),
                        ),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "c".into(),
                            ..Default::default()
                        }],
                        init_containers: Some(vec![Container {
                            name: "i".into(),
                            ..Default::default()
                        }]),
                        restart_policy: Some("Never".into()),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn an_indexed_pod_carries_its_index_everywhere() {
        let j = job("Indexed");
        let t = base_template(&j);
        let p = pod_for(&j, &t, Some(2), None);
        let meta = &p.metadata;
        assert_eq!(meta.generate_name.as_deref(), Some("work-2-"));
        assert_eq!(
            meta.annotations
                .as_ref()
                .and_then(|a| a.get(COMPLETION_INDEX))
                .map(String::as_str),
            Some("2")
        );
        assert_eq!(
            meta.labels
                .as_ref()
                .and_then(|a| a.get(COMPLETION_INDEX))
                .map(String::as_str),
            Some("2")
        );
        assert_eq!(
            meta.finalizers.as_deref(),
            Some(&[TRACKING_FINALIZER.to_string()][..])
        );
        let r = &meta.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (r.kind.as_str(), r.uid.as_str(), r.controller),
            ("Job", "uid-1", Some(true))
        );
        let spec = p.spec.as_ref().expect("spec");
        assert_eq!(spec.hostname.as_deref(), Some("work-2"));
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            let env = c.env.as_ref().expect("env");
            let v = env
                .iter()
                .find(|e| e.name == COMPLETION_INDEX_ENV)
                .expect("index env");
            let path = v
                .value_from
                .as_ref()
                .and_then(|f| f.field_ref.as_ref())
                .map(|f| f.field_path.as_str());
            assert_eq!(
                path,
                Some("metadata.labels['batch.kubernetes.io/job-completion-index']")
            );
        }
        // Adding the env again is a no-op.
        let again = base_template(&Job {
            spec: Some(JobSpec {
                template: t.clone(),
                ..j.spec.clone().expect("spec")
            }),
            ..j.clone()
        });
        assert_eq!(
            again
                .spec
                .as_ref()
                .map(|s| s.containers[0].env.as_ref().map(Vec::len)),
            Some(Some(1))
        );
    }

    #[test]
    fn a_non_indexed_pod_is_named_after_the_job() {
        let j = job("NonIndexed");
        let p = pod_for(&j, &base_template(&j), None, None);
        assert_eq!(p.metadata.generate_name.as_deref(), Some("work-"));
        assert!(p.metadata.annotations.is_none());
        assert!(p.spec.as_ref().and_then(|s| s.hostname.as_ref()).is_none());
        assert!(
            p.spec
                .as_ref()
                .is_some_and(|s| s.containers[0].env.is_none())
        );
    }

    #[test]
    fn long_job_names_are_cut_to_leave_room_for_the_index() {
        let name = "x".repeat(70);
        let g = generate_name_with_index(&name, 12);
        assert_eq!(g.len(), MAX_GENERATE_NAME);
        assert!(g.ends_with("-12-"));
    }

    fn pod(name: &str, node: &str, phase: &str, ready: bool, index: Option<i32>) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                annotations: index.map(|i| [(COMPLETION_INDEX.to_string(), i.to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.to_string()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn removal_prefers_unscheduled_pending_and_unready_pods() {
        let j = job("NonIndexed");
        let pods = vec![
            pod("ready", "n", "Running", true, None),
            pod("unready", "n", "Running", false, None),
            pod("pending", "n", "Pending", false, None),
            pod("unscheduled", "", "Pending", false, None),
        ];
        let names: Vec<String> = for_removal(&j, &pods, 3)
            .iter()
            .map(|p| p.name_any())
            .collect();
        assert_eq!(names, ["unscheduled", "pending", "unready"]);
    }

    #[test]
    fn indexed_removal_takes_repeated_and_invalid_indexes_first() {
        let j = job("Indexed");
        let pods = vec![
            pod("a0", "n", "Running", true, Some(0)),
            pod("b0", "n", "Pending", false, Some(0)),
            pod("none", "n", "Running", true, None),
            pod("big", "n", "Running", true, Some(7)),
            pod("c1", "n", "Running", true, Some(1)),
        ];
        let mut names: Vec<String> = for_removal(&j, &pods, 0)
            .iter()
            .map(|p| p.name_any())
            .collect();
        names.sort();
        assert_eq!(names, ["b0", "big", "none"]);
    }
}
