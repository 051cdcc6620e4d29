//! The official Kubernetes Python client works against rkube (installed by
//! `scripts/setup.sh` from PyPI).

mod common;

use std::process::Command;

use common::Server;

#[test]
fn python_client_strategic_merge_of_service_ports_yields_two_ports() {
    let s = Server::start(&[]);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python_smp.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&s.kubeconfig)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
}
