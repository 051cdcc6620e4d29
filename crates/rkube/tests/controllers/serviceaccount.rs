//! ServiceAccounts controller: every namespace has `default`, even after it is deleted.

use super::{DEADLINE, cluster, names, wait_for};

#[test]
fn every_namespace_has_a_default_service_account() {
    let (s, _sim) = cluster();
    s.ok(&["create", "namespace", "fresh"]);
    wait_for(DEADLINE, "default in fresh", || {
        names(&s, &["-n", "fresh", "serviceaccounts"])
            .contains(&"default".to_string())
            .then_some(())
    });
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            names(&s, &["-n", ns, "serviceaccounts"]).contains(&"default".to_string()),
            "{ns}"
        );
    }
    let uid = |s: &super::common::Server| {
        super::common::jsonpath(
            s,
            &["-n", "fresh", "get", "sa", "default"],
            "{.metadata.uid}",
        )
    };
    let before = uid(&s);
    s.ok(&["-n", "fresh", "delete", "serviceaccount", "default"]);
    wait_for(DEADLINE, "default re-created", || {
        let now = uid(&s);
        (!now.is_empty() && now != before).then_some(())
    });
}
