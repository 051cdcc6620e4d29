//! ReplicaSet controller: replicas kept, orphans adopted, relabelled pods released.

use super::common::{apply, jsonpath};
use super::{DEADLINE, cluster, running, wait_for};

const RS: &str = r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: front}
spec:
  replicas: 2
  selector: {matchLabels: {app: front}}
  template:
    metadata: {labels: {app: front}}
    spec: {containers: [{name: c, image: busybox}]}
"#;

#[test]
fn a_replicaset_adopts_a_matching_orphan_and_releases_a_relabelled_pod() {
    let (s, _sim) = cluster();
    s.ok(&["run", "stray", "--image=busybox", "--labels=app=front"]);
    wait_for(DEADLINE, "stray running", || {
        running(&s, "app=front")
            .contains(&"stray".to_string())
            .then_some(())
    });
    apply(&s, RS);
    let pods = wait_for(DEADLINE, "2 running pods", || {
        let r = running(&s, "app=front");
        (r.len() == 2).then_some(r)
    });
    // One pod was created; the stray one was adopted rather than a second created.
    assert!(pods.contains(&"stray".to_string()), "{pods:?}");
    let owner = jsonpath(
        &s,
        &["get", "pod", "stray"],
        "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}",
    );
    assert_eq!(owner, "ReplicaSet/front");
    let status = jsonpath(
        &s,
        &["get", "rs", "front"],
        "{.status.replicas}/{.status.fullyLabeledReplicas}/{.status.readyReplicas}/{.status.availableReplicas}",
    );
    assert_eq!(status, "2/2/2/2");

    s.ok(&["label", "pod", "stray", "app=elsewhere", "--overwrite"]);
    wait_for(DEADLINE, "stray released", || {
        let refs = jsonpath(&s, &["get", "pod", "stray"], "{.metadata.ownerReferences}");
        refs.is_empty().then_some(())
    });
    wait_for(DEADLINE, "a replacement for the released pod", || {
        let r = running(&s, "app=front");
        (r.len() == 2 && !r.contains(&"stray".to_string())).then_some(())
    });
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=front",
    ]);
    assert!(events.contains("SuccessfulCreate"), "{events}");
}
