//! `rkube server --datastore etcd` against a real etcd: kubectl works, and state outlives
//! the server (it lives in etcd).

mod common;

use common::Server;

#[test]
fn server_on_etcd_serves_kubectl_and_keeps_state_across_restarts() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let etcd = rt.block_on(store::conformance::TestEtcd::start());
    let args = [
        "--datastore",
        "etcd",
        "--datastore-endpoint",
        etcd.endpoint.as_str(),
    ];
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start_in(tmp.path(), &args);
    let cm = common::manifests_dir().join("seeds/001_001_ConfigMap.yaml");
    s.ok(&["create", "-f", cm.to_str().expect("path")]);
    let deploy = common::manifests_dir().join("seeds/057_001_Deployment.yaml");
    s.ok(&["create", "-f", deploy.to_str().expect("path")]);
    let rv1: u64 = s
        .ok(&[
            "get",
            "cm",
            "app-config",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .parse()
        .expect("rv");
    s.ok(&[
        "patch",
        "cm",
        "app-config",
        "--type",
        "merge",
        "-p",
        "{\"data\":{\"x\":\"y\"}}",
    ]);
    s.kill();
    // A second data dir: nothing local carries over, the state is etcd's.
    let tmp2 = tempfile::tempdir().expect("tempdir");
    let s = Server::start_in(tmp2.path(), &args);
    assert_eq!(
        s.ok(&["get", "cm", "app-config", "-o", "jsonpath={.data.x}"]),
        "y"
    );
    let rv2: u64 = s
        .ok(&[
            "get",
            "cm",
            "app-config",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .parse()
        .expect("rv");
    assert!(rv2 > rv1, "{rv2} <= {rv1}");
    assert_eq!(
        s.ok(&["get", "deploy", "-o", "name"]).trim(),
        "deployment.apps/nginx-deployment"
    );
    s.ok(&["delete", "deploy", "nginx-deployment"]);
    assert_eq!(s.ok(&["get", "deploy", "-o", "name"]).trim(), "");
}
