//! The Job's rules for judging its pods: `podFailurePolicy` (upstream
//! `pod_failure_policy.go`) and `successPolicy` (`success_policy.go`).

use k8s_openapi::api::batch::v1::{
    PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, SuccessPolicy,
};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition};

use super::indexes::Intervals;

/// A `podFailurePolicy` rule's action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    FailJob,
    FailIndex,
    Ignore,
    Count,
}

/// What the policy says about one failed pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The Job fails with this message (a `FailJob` rule matched).
    pub fail_job: Option<String>,
    /// The failure counts toward `backoffLimit` / `backoffLimitPerIndex` (not `Ignore`d).
    pub counts: bool,
    pub action: Option<Action>,
}

impl Verdict {
    const NO_MATCH: Verdict = Verdict {
        fail_job: None,
        counts: true,
        action: None,
    };

    fn of(action: Action, fail_job: Option<String>) -> Verdict {
        Verdict {
            fail_job,
            counts: action != Action::Ignore,
            action: Some(action),
        }
    }
}

/// Upstream `matchPodFailurePolicy`: the first rule that matches the failed pod decides.
/// A rule with an action this controller does not know matches nothing (a newer server may
/// have added one), as upstream's switch falls through.
pub fn judge(policy: Option<&PodFailurePolicy>, pod: &Pod) -> Verdict {
    let Some(policy) = policy else {
        return Verdict::NO_MATCH;
    };
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let status = pod.status.as_ref();
    for (index, rule) in policy.rules.iter().enumerate() {
        let action = match rule.action.as_str() {
            "FailJob" => Action::FailJob,
            "FailIndex" => Action::FailIndex,
            "Ignore" => Action::Ignore,
            "Count" => Action::Count,
            _ => continue,
        };
        if let Some(req) = &rule.on_exit_codes {
            let Some(c) = status.and_then(|s| {
                matching_container(s.container_statuses.as_deref(), req)
                    .or_else(|| matching_container(s.init_container_statuses.as_deref(), req))
            }) else {
                continue;
            };
            let message = (action == Action::FailJob).then(|| {
                let code = exit_code(c).unwrap_or(0);
                format!(
                    "Container {} for pod {ns}/{name} failed with exit code {code} matching FailJob rule at index {index}",
                    c.name
                )
            });
            return Verdict::of(action, message);
        }
        if let Some(patterns) = &rule.on_pod_conditions {
            let Some(cond) =
                status.and_then(|s| matching_condition(s.conditions.as_deref(), patterns))
            else {
                continue;
            };
            let message = (action == Action::FailJob).then(|| {
                format!(
                    "Pod {ns}/{name} has condition {} matching FailJob rule at index {index}",
                    cond.type_
                )
            });
            return Verdict::of(action, message);
        }
    }
    Verdict::NO_MATCH
}

fn exit_code(c: &ContainerStatus) -> Option<i32> {
    c.state.as_ref()?.terminated.as_ref().map(|t| t.exit_code)
}

/// The first terminated container with a non-zero exit code the requirement matches.
fn matching_container<'a>(
    statuses: Option<&'a [ContainerStatus]>,
    req: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<&'a ContainerStatus> {
    statuses?.iter().find(|c| {
        let Some(code) = exit_code(c) else {
            return false;
        };
        if code == 0 || req.container_name.as_ref().is_some_and(|n| *n != c.name) {
            return false;
        }
        match req.operator.as_str() {
            "In" => req.values.contains(&code),
            "NotIn" => !req.values.contains(&code),
            _ => false,
        }
    })
}

/// The first pod condition a pattern matches (type and status; the API server defaults an
/// omitted status to `True`).
fn matching_condition<'a>(
    conditions: Option<&'a [PodCondition]>,
    patterns: &[PodFailurePolicyOnPodConditionsPattern],
) -> Option<&'a PodCondition> {
    conditions?.iter().find(|c| {
        patterns
            .iter()
            .any(|p| p.type_ == c.type_ && p.status == c.status)
    })
}

/// Upstream `matchSuccessPolicy`: the message of the `SuccessCriteriaMet` condition once a
/// rule is met by the succeeded indexes.
pub fn success(
    policy: Option<&SuccessPolicy>,
    completions: i32,
    succeeded: &Intervals,
) -> Option<String> {
    let policy = policy?;
    if succeeded.is_empty() {
        return None;
    }
    policy.rules.iter().enumerate().find_map(|(index, rule)| {
        let met = match &rule.succeeded_indexes {
            Some(s) => {
                let required = Intervals::parse(s, completions);
                !required.is_empty() && required.covered_by(succeeded, rule.succeeded_count)
            }
            None => rule.succeeded_count.is_some_and(|c| succeeded.total() >= c),
        };
        met.then(|| format!("Matched rules at index {index}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{PodFailurePolicyRule, SuccessPolicyRule};
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn failed_pod(codes: &[(&str, i32)], conditions: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Failed".into()),
                container_statuses: Some(
                    codes
                        .iter()
                        .map(|(name, code)| ContainerStatus {
                            name: name.to_string(),
                            state: Some(ContainerState {
                                terminated: Some(ContainerStateTerminated {
                                    exit_code: *code,
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }),
                            ..Default::default()
                        })
                        .collect(),
                ),
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, s)| PodCondition {
                            type_: t.to_string(),
                            status: s.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
        }
    }

    fn exit_rule(
        action: &str,
        op: &str,
        values: &[i32],
        container: Option<&str>,
    ) -> PodFailurePolicyRule {
        PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: container.map(String::from),
                operator: op.into(),
                values: values.to_vec(),
            }),
            on_pod_conditions: None,
        }
    }

    fn condition_rule(action: &str, type_: &str) -> PodFailurePolicyRule {
        PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: None,
            on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                type_: type_.into(),
                status: "True".into(),
            }]),
        }
    }

    fn policy(rules: Vec<PodFailurePolicyRule>) -> PodFailurePolicy {
        PodFailurePolicy { rules }
    }

    #[test]
    fn without_a_policy_every_failure_counts() {
        let pod = failed_pod(&[("main", 1)], &[]);
        assert_eq!(judge(None, &pod), Verdict::NO_MATCH);
    }

    #[test]
    fn fail_job_on_exit_code_names_the_container_and_rule() {
        let p = policy(vec![
            exit_rule("Ignore", "In", &[7], None),
            exit_rule("FailJob", "In", &[42], None),
        ]);
        let pod = failed_pod(&[("side", 0), ("main", 42)], &[]);
        let v = judge(Some(&p), &pod);
        assert_eq!(v.action, Some(Action::FailJob));
        assert!(v.counts);
        assert_eq!(
            v.fail_job.as_deref(),
            Some(
                "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"
            )
        );
    }

    #[test]
    fn not_in_never_matches_exit_code_zero_and_respects_the_container_name() {
        let p = policy(vec![exit_rule("Count", "NotIn", &[1], Some("main"))]);
        // Exit code 0 never matches, and "other" is not the named container.
        let pod = failed_pod(&[("main", 0), ("other", 5)], &[]);
        assert_eq!(judge(Some(&p), &pod).action, None);
        let pod = failed_pod(&[("main", 5)], &[]);
        assert_eq!(judge(Some(&p), &pod).action, Some(Action::Count));
        let pod = failed_pod(&[("main", 1)], &[]);
        assert_eq!(judge(Some(&p), &pod).action, None);
    }

    #[test]
    fn a_disruption_is_ignored_by_an_on_pod_conditions_rule() {
        let p = policy(vec![
            condition_rule("Ignore", "DisruptionTarget"),
            exit_rule("FailJob", "NotIn", &[0], None),
        ]);
        let pod = failed_pod(&[("main", 137)], &[("DisruptionTarget", "True")]);
        let v = judge(Some(&p), &pod);
        assert_eq!(v.action, Some(Action::Ignore));
        assert!(!v.counts);
        // A False condition does not match the (defaulted True) pattern.
        let pod = failed_pod(&[("main", 137)], &[("DisruptionTarget", "False")]);
        assert_eq!(judge(Some(&p), &pod).action, Some(Action::FailJob));
    }

    #[test]
    fn fail_job_on_a_condition_and_fail_index() {
        let p = policy(vec![condition_rule("FailJob", "ConfigIssue")]);
        let pod = failed_pod(&[], &[("ConfigIssue", "True")]);
        assert_eq!(
            judge(Some(&p), &pod).fail_job.as_deref(),
            Some("Pod ns/p has condition ConfigIssue matching FailJob rule at index 0")
        );
        let p = policy(vec![
            exit_rule("Bogus", "In", &[3], None),
            exit_rule("FailIndex", "In", &[3], None),
        ]);
        let v = judge(Some(&p), &failed_pod(&[("main", 3)], &[]));
        assert_eq!(v.action, Some(Action::FailIndex));
        assert!(v.counts && v.fail_job.is_none());
    }

    #[test]
    fn success_policy_rules_match_indexes_or_counts() {
        let rules = |indexes: Option<&str>, count: Option<i32>| SuccessPolicy {
            rules: vec![
                SuccessPolicyRule {
                    succeeded_indexes: Some("9".into()),
                    succeeded_count: None,
                },
                SuccessPolicyRule {
                    succeeded_indexes: indexes.map(String::from),
                    succeeded_count: count,
                },
            ],
        };
        let done = Intervals::parse("0-2", 10);
        assert_eq!(
            success(Some(&rules(Some("0,1"), None)), 10, &done).as_deref(),
            Some("Matched rules at index 1")
        );
        assert!(success(Some(&rules(Some("2-5"), None)), 10, &done).is_none());
        assert!(success(Some(&rules(Some("2-5"), Some(1))), 10, &done).is_some());
        assert!(success(Some(&rules(None, Some(3))), 10, &done).is_some());
        assert!(success(Some(&rules(None, Some(4))), 10, &done).is_none());
        assert!(success(Some(&rules(None, Some(1))), 10, &Intervals::default()).is_none());
    }
}
