//! Leader election: two API servers on one etcd, one runs the controllers; when it stops
//! it hands the Lease over and the other takes on the work.

use super::common::{Server, jsonpath};
use super::{DEADLINE, wait_for};

fn holder(s: &Server) -> String {
    jsonpath(
        s,
        &[
            "-n",
            "kube-system",
            "get",
            "lease",
            "kube-controller-manager",
        ],
        "{.spec.holderIdentity}",
    )
}

#[test]
fn controllers_run_on_one_server_and_move_when_it_stops() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let etcd = rt.block_on(store::conformance::TestEtcd::start());
    let args = [
        "--datastore",
        "etcd",
        "--datastore-endpoint",
        etcd.endpoint.as_str(),
    ];
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let mut a = Server::start_in(dir_a.path(), &args);
    let b = Server::start_in(dir_b.path(), &args);
    let first = wait_for(DEADLINE, "a leader", || {
        let h = holder(&a);
        (!h.is_empty()).then_some(h)
    });
    // Both servers see one holder.
    assert_eq!(holder(&b), first);

    // The first server stops cleanly (SIGTERM) and gives the lease back.
    let pid = a.child.id().to_string();
    let out = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .output()
        .expect("kill");
    assert!(out.status.success());
    let _ = a.child.wait();
    // The other server now leads (the same identity if it already did) and works.
    wait_for(DEADLINE, "the second server leading", || {
        let h = holder(&b);
        (!h.is_empty()).then_some(())
    });
    b.ok(&[
        "create",
        "deployment",
        "after",
        "--image=busybox",
        "--replicas=2",
    ]);
    wait_for(
        DEADLINE,
        "a ReplicaSet made by the remaining server",
        || {
            let n = jsonpath(
                &b,
                &["get", "rs", "-l", "app=after"],
                "{.items[0].spec.replicas}",
            );
            (n == "2").then_some(())
        },
    );
    a.kill();
}
