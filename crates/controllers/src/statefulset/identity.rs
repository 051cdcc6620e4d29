//! What a StatefulSet pod is (upstream `stateful_set_utils.go`): its name and ordinal, its
//! identity labels and hostname, the claims its volume templates give it, the revision it
//! was made from, and the owner references the PVC retention policy asks of its claims.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;

use crate::controller_ref;
use crate::history::REVISION_LABEL;

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Upstream's `PodIndexLabel` (feature PodIndexLabel, on since 1.28).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// Upstream `getParentNameAndOrdinal` (`(.*)-([0-9]+)$`): the parent's name, and the
/// ordinal when it fits an int32.
pub fn parent_and_ordinal(name: &str) -> Option<(&str, Option<i32>)> {
    let (parent, digits) = name.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, digits.parse().ok()))
}

/// The pod's ordinal, if its name has one.
pub fn ordinal(pod: &Pod) -> Option<i32> {
    parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or("")).and_then(|(_, o)| o)
}

/// Upstream `isMemberOf`: named `<set>-<digits>`.
pub fn is_member(set: &StatefulSet, pod: &Pod) -> bool {
    parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or(""))
        .is_some_and(|(p, _)| Some(p) == set.metadata.name.as_deref())
}

pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
        .max(0)
}

/// `spec.ordinals.start`, or 0.
pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0)
}

/// Upstream `podInOrdinalRange`.
pub fn in_range(pod: &Pod, set: &StatefulSet) -> bool {
    ordinal(pod).is_some_and(|o| o >= start_ordinal(set) && o < start_ordinal(set) + replicas(set))
}

pub fn pod_name(set: &StatefulSet, ordinal: i32) -> String {
    format!("{}-{ordinal}", set.name_any())
}

/// Upstream `getPersistentVolumeClaimName`: `<template>-<set>-<ordinal>`.
pub fn claim_name(set: &StatefulSet, template: &PersistentVolumeClaim, ordinal: i32) -> String {
    format!("{}-{}-{ordinal}", template.name_any(), set.name_any())
}

fn claim_templates(set: &StatefulSet) -> &[PersistentVolumeClaim] {
    set.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_deref())
        .unwrap_or(&[])
}

/// Upstream `getPersistentVolumeClaims`: the claims of the pod at `ordinal`, by template
/// name, labelled with the template's labels and the set's `matchLabels`.
pub fn claims(set: &StatefulSet, ordinal: i32) -> Vec<(String, PersistentVolumeClaim)> {
    let match_labels = set
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    claim_templates(set)
        .iter()
        .map(|t| {
            let mut labels = t.metadata.labels.clone().unwrap_or_default();
            labels.extend(match_labels.clone());
            let claim = PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(set, t, ordinal)),
                    namespace: set.namespace(),
                    labels: Some(labels),
                    annotations: t.metadata.annotations.clone(),
                    finalizers: t.metadata.finalizers.clone(),
                    ..Default::default()
                },
                spec: t.spec.clone(),
                status: None,
            };
            (t.name_any(), claim)
        })
        .collect()
}

/// Upstream `identityMatches`.
pub fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let name = pod.name_any();
    let Some((parent, Some(ord))) = parent_and_ordinal(&name) else {
        return false;
    };
    let labels = pod.labels();
    ord >= 0
        && Some(parent) == set.metadata.name.as_deref()
        && name == pod_name(set, ord)
        && pod.namespace() == set.namespace()
        && labels.get(POD_NAME_LABEL) == Some(&name)
        && labels.get(POD_INDEX_LABEL) == Some(&ord.to_string())
}

/// The identity labels a pod at `ordinal` carries.
pub fn identity_labels(set: &StatefulSet, ordinal: i32) -> BTreeMap<String, String> {
    BTreeMap::from([
        (POD_NAME_LABEL.to_string(), pod_name(set, ordinal)),
        (POD_INDEX_LABEL.to_string(), ordinal.to_string()),
    ])
}

/// Upstream `storageMatches`: a volume per claim template naming this pod's claim.
pub fn storage_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let Some(ord) = ordinal(pod) else {
        return false;
    };
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or(&[]);
    claim_templates(set).iter().all(|t| {
        volumes.iter().any(|v| {
            v.name == t.name_any()
                && v.persistent_volume_claim
                    .as_ref()
                    .map(|c| c.claim_name.as_str())
                    == Some(claim_name(set, t, ord).as_str())
        })
    })
}

/// The pod at `ordinal` for `set`'s template (upstream `newStatefulSetPod`), marked as made
/// from `revision`: identity labels, hostname and subdomain, and a volume per claim template
/// in place of any template volume of the same name.
pub fn new_pod(set: &StatefulSet, ordinal: i32, revision: &str) -> Pod {
    let spec = set.spec.clone().unwrap_or_default();
    let meta = spec.template.metadata.clone().unwrap_or_default();
    let name = pod_name(set, ordinal);
    let mut labels = meta.labels.unwrap_or_default();
    labels.extend(identity_labels(set, ordinal));
    labels.insert(REVISION_LABEL.into(), revision.into());
    let mut pod_spec = spec.template.spec.clone().unwrap_or_default();
    pod_spec.hostname = Some(name.clone());
    pod_spec.subdomain = spec.service_name.clone().filter(|s| !s.is_empty());
    let claims = claims(set, ordinal);
    let mut volumes: Vec<Volume> = claims
        .iter()
        .map(|(template, claim)| Volume {
            name: template.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.name_any(),
                read_only: None,
            }),
            ..Default::default()
        })
        .collect();
    for v in pod_spec.volumes.take().unwrap_or_default() {
        if !claims.iter().any(|(t, _)| *t == v.name) {
            volumes.push(v);
        }
    }
    pod_spec.volumes = (!volumes.is_empty()).then_some(volumes);
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            generate_name: Some(format!("{}-", set.name_any())),
            namespace: set.namespace(),
            labels: Some(labels),
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![controller_ref::reference(set)]),
            ..Default::default()
        },
        spec: Some(pod_spec),
        status: None,
    }
}

/// The revision a pod was made from (upstream `getPodRevision`).
pub fn revision(pod: &Pod) -> &str {
    pod.labels()
        .get(REVISION_LABEL)
        .map(String::as_str)
        .unwrap_or("")
}

/// `persistentVolumeClaimRetentionPolicy`: (delete when scaled down, delete with the set).
/// Anything but `Delete` retains, as upstream treats unknown policies.
pub fn retention(set: &StatefulSet) -> (bool, bool) {
    let p = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let delete = |v: Option<&String>| v.map(String::as_str) == Some("Delete");
    (
        delete(p.and_then(|p| p.when_scaled.as_ref())),
        delete(p.and_then(|p| p.when_deleted.as_ref())),
    )
}

/// An owner as the retention rules see it.
struct Who<'a> {
    api_version: &'a str,
    kind: &'a str,
    name: String,
    uid: Option<String>,
}

impl Who<'_> {
    fn set(set: &StatefulSet) -> Who<'static> {
        Who {
            api_version: "apps/v1",
            kind: "StatefulSet",
            name: set.name_any(),
            uid: set.uid(),
        }
    }

    fn pod(pod: &Pod) -> Who<'static> {
        Who {
            api_version: "v1",
            kind: "Pod",
            name: pod.name_any(),
            uid: pod.uid(),
        }
    }

    /// Upstream `matchesRef`: same kind and name, whatever the UID.
    fn matches(&self, r: &OwnerReference) -> bool {
        r.api_version == self.api_version && r.kind == self.kind && r.name == self.name
    }

    fn is(&self, r: &OwnerReference) -> bool {
        self.uid.as_deref().is_some_and(|u| u == r.uid)
    }
}

fn refs(claim: &PersistentVolumeClaim) -> &[OwnerReference] {
    claim.metadata.owner_references.as_deref().unwrap_or(&[])
}

fn has_ref(claim: &PersistentVolumeClaim, who: &Who<'_>) -> bool {
    refs(claim).iter().any(|r| who.is(r))
}

/// Upstream `hasStaleOwnerRef`: the first reference to this name and kind has another UID.
fn has_stale_ref(claim: &PersistentVolumeClaim, who: &Who<'_>) -> bool {
    refs(claim)
        .iter()
        .find(|r| who.matches(r))
        .is_some_and(|r| !who.is(r))
}

/// Upstream `hasUnexpectedController`: with a deleting policy, a controller of the claim
/// other than this set or pod (or a reference to them with the wrong UID).
pub fn has_unexpected_controller(
    claim: &PersistentVolumeClaim,
    set: &StatefulSet,
    pod: &Pod,
) -> bool {
    if retention(set) == (false, false) {
        return false;
    }
    let (s, p) = (Who::set(set), Who::pod(pod));
    refs(claim).iter().any(|r| {
        if s.matches(r) {
            !s.is(r)
        } else if p.matches(r) {
            !p.is(r)
        } else {
            r.controller == Some(true)
        }
    })
}

/// Upstream `hasNonControllerOwner`.
fn has_non_controller_owner(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    let (s, p) = (Who::set(set), Who::pod(pod));
    refs(claim)
        .iter()
        .any(|r| (s.is(r) || p.is(r)) && r.controller != Some(true))
}

/// Upstream `isClaimOwnerUpToDate`: does the claim carry the owner references the policy
/// asks for? Retain/Retain: none; Retain/Delete: the set; Delete/Retain: the pod once scaled
/// down; Delete/Delete: the set while in range, the pod once scaled down. Claims with stale
/// references or another controller are left alone.
pub fn claim_owner_up_to_date(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    let (s, p) = (Who::set(set), Who::pod(pod));
    if has_stale_ref(claim, &s) || has_stale_ref(claim, &p) {
        return true;
    }
    if has_unexpected_controller(claim, set, pod) {
        return !(has_ref(claim, &s) || has_ref(claim, &p));
    }
    if has_non_controller_owner(claim, set, pod) {
        return false;
    }
    let scaled_down = !in_range(pod, set);
    let (set_ref, pod_ref) = (has_ref(claim, &s), has_ref(claim, &p));
    match retention(set) {
        (false, false) => !set_ref && !pod_ref,
        (false, true) => set_ref && !pod_ref,
        (true, false) => !set_ref && scaled_down == pod_ref,
        (true, true) => scaled_down != set_ref && scaled_down == pod_ref,
    }
}

/// Upstream `updateClaimOwnerRefForSetAndPod`: the claim's owner references with this set's
/// and pod's replaced by what the policy asks for (controller references).
pub fn claim_owner_refs(
    claim: &PersistentVolumeClaim,
    set: &StatefulSet,
    pod: &Pod,
) -> Vec<OwnerReference> {
    let (s, p) = (Who::set(set), Who::pod(pod));
    let unexpected = has_unexpected_controller(claim, set, pod);
    let mut out: Vec<OwnerReference> = refs(claim)
        .iter()
        .filter(|r| !s.matches(r) && !p.matches(r))
        .cloned()
        .collect();
    if unexpected {
        return out;
    }
    let scaled_down = !in_range(pod, set);
    let (want_set, want_pod) = match retention(set) {
        (false, false) => (false, false),
        (false, true) => (true, false),
        (true, false) => (false, scaled_down),
        (true, true) => (!scaled_down, scaled_down),
    };
    if want_set {
        out.push(controller_ref::reference(set));
    }
    if want_pod && pod.uid().is_some() {
        out.push(controller_ref::reference(pod));
    }
    out
}

/// Does `pod` (about to be created) find a claim still owned by an earlier pod of its name?
/// Upstream `PodClaimIsStale`: only with a delete-on-scale-down policy, where that claim is
/// about to be collected.
pub fn claim_is_stale(claim: &PersistentVolumeClaim, pod: &Pod) -> bool {
    has_stale_ref(claim, &Who::pod(pod))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(replicas: i32, scaled: &str, deleted: &str) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid"},
            "spec": {
                "replicas": replicas,
                "serviceName": "svc",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}],
                             "volumes": [{"name": "www", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]}
                },
                "volumeClaimTemplates": [{"metadata": {"name": "www", "labels": {"tier": "db"}},
                                          "spec": {"accessModes": ["ReadWriteOnce"]}}],
                "persistentVolumeClaimRetentionPolicy": {"whenScaled": scaled, "whenDeleted": deleted}
            }
        }))
        .expect("set")
    }

    fn live(set: &StatefulSet, ordinal: i32) -> Pod {
        let mut p = new_pod(set, ordinal, "web-1");
        p.metadata.uid = Some(format!("pod-{ordinal}"));
        p
    }

    fn claim_with(refs: Vec<OwnerReference>) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("www-web-1".into()),
                owner_references: Some(refs),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn ordinals_come_from_the_last_dash_and_digits() {
        assert_eq!(parent_and_ordinal("web-12"), Some(("web", Some(12))));
        assert_eq!(parent_and_ordinal("my-web-0"), Some(("my-web", Some(0))));
        assert_eq!(parent_and_ordinal("web-x"), None);
        assert_eq!(parent_and_ordinal("web"), None);
        assert_eq!(
            parent_and_ordinal("web-99999999999"),
            Some(("web", None)),
            "too big for int32: a member without an ordinal"
        );
    }

    #[test]
    fn a_new_pod_has_its_identity_claims_and_revision() {
        let s = set(3, "Retain", "Retain");
        let p = new_pod(&s, 2, "web-abc");
        assert_eq!(p.name_any(), "web-2");
        assert_eq!(p.labels()[POD_NAME_LABEL], "web-2");
        assert_eq!(p.labels()[POD_INDEX_LABEL], "2");
        assert_eq!(p.labels()[REVISION_LABEL], "web-abc");
        let spec = p.spec.as_ref().expect("spec");
        assert_eq!(spec.hostname.as_deref(), Some("web-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("svc"));
        let vols = spec.volumes.as_ref().expect("volumes");
        // The claim replaces the template's volume of the same name; others stay.
        assert_eq!(vols.len(), 2);
        assert_eq!(
            vols[0]
                .persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.as_str()),
            Some("www-web-2")
        );
        assert_eq!(vols[1].name, "tmp");
        assert!(identity_matches(&s, &p));
        assert!(storage_matches(&s, &p));
        let claims = claims(&s, 2);
        assert_eq!(claims[0].1.name_any(), "www-web-2");
        let labels = claims[0].1.labels();
        assert_eq!(
            (labels["app"].as_str(), labels["tier"].as_str()),
            ("web", "db")
        );
    }

    #[test]
    fn retain_retain_wants_no_references_to_the_set_or_pod() {
        let s = set(3, "Retain", "Retain");
        let p = live(&s, 1);
        assert!(claim_owner_up_to_date(&claim_with(vec![]), &s, &p));
        let owned = claim_with(vec![controller_ref::reference(&s)]);
        assert!(!claim_owner_up_to_date(&owned, &s, &p));
        assert!(claim_owner_refs(&owned, &s, &p).is_empty());
    }

    #[test]
    fn delete_when_deleted_puts_the_set_on_every_claim() {
        let s = set(3, "Retain", "Delete");
        let p = live(&s, 1);
        let c = claim_with(vec![]);
        assert!(!claim_owner_up_to_date(&c, &s, &p));
        let refs = claim_owner_refs(&c, &s, &p);
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].uid, "set-uid");
        assert_eq!(refs[0].controller, Some(true));
        assert!(claim_owner_up_to_date(&claim_with(refs), &s, &p));
    }

    #[test]
    fn delete_when_scaled_hands_a_condemned_pods_claim_to_the_pod() {
        let s = set(1, "Delete", "Delete");
        // Ordinal 1 is out of range with one replica.
        let p = live(&s, 1);
        let c = claim_with(vec![controller_ref::reference(&s)]);
        assert!(!claim_owner_up_to_date(&c, &s, &p));
        let refs = claim_owner_refs(&c, &s, &p);
        assert_eq!(refs.len(), 1);
        assert_eq!(
            (refs[0].kind.as_str(), refs[0].uid.as_str()),
            ("Pod", "pod-1")
        );
        assert!(claim_owner_up_to_date(&claim_with(refs), &s, &p));
        // In range again: back to the set.
        let s3 = set(3, "Delete", "Delete");
        let refs = claim_owner_refs(&claim_with(vec![controller_ref::reference(&p)]), &s3, &p);
        assert_eq!(refs[0].kind, "StatefulSet");
    }

    #[test]
    fn a_claim_left_by_an_earlier_pod_of_the_same_name_is_stale() {
        let s = set(3, "Delete", "Retain");
        let old = live(&s, 1);
        let c = claim_with(vec![controller_ref::reference(&old)]);
        let fresh = new_pod(&s, 1, "web-1");
        assert!(claim_is_stale(&c, &fresh));
        assert!(!claim_is_stale(&c, &old));
        // Stale claims are not touched.
        assert!(claim_owner_up_to_date(&c, &s, &fresh));
    }

    #[test]
    fn another_controller_of_the_claim_keeps_the_policy_off_it() {
        let s = set(3, "Retain", "Delete");
        let p = live(&s, 1);
        let other = OwnerReference {
            api_version: "example.com/v1".into(),
            kind: "Thing".into(),
            name: "t".into(),
            uid: "t-uid".into(),
            controller: Some(true),
            block_owner_deletion: None,
        };
        let c = claim_with(vec![other.clone()]);
        assert!(claim_owner_up_to_date(&c, &s, &p));
        let both = claim_with(vec![other.clone(), controller_ref::reference(&s)]);
        assert!(!claim_owner_up_to_date(&both, &s, &p));
        assert_eq!(claim_owner_refs(&both, &s, &p), vec![other]);
    }
}
