//! Writes racing each other and the watch cache: updates start from the cache's copy, so
//! these check that a copy trailing the store never loses a write, never turns a correct
//! resourceVersion into a 409, and never hides a real conflict.

mod common;

use std::collections::BTreeMap;

use common::Server;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

async fn client(s: &Server) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(&s.kubeconfig).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("client config");
    kube::Client::try_from(cfg).expect("client")
}

fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::new()),
        ..Default::default()
    }
}

async fn racing_writes(s: &Server) {
    let api: Api<ConfigMap> = Api::namespaced(client(s).await, "default");
    api.create(&PostParams::default(), &cm("shared"))
        .await
        .expect("create shared");

    let mut tasks = Vec::new();
    for t in 0..8 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            // Concurrent merge patches of one object: every key must land.
            for i in 0..25 {
                let patch = json!({"data": {format!("k{t}-{i}"): "v"}});
                api.patch("shared", &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .expect("patch shared");
            }
            // Back-to-back updates pinned to the previous write's resourceVersion: each
            // is current, so none may be refused.
            let own = format!("own-{t}");
            let mut obj = api
                .create(&PostParams::default(), &cm(&own))
                .await
                .expect("create own");
            for i in 0..25 {
                obj.data
                    .get_or_insert_with(BTreeMap::new)
                    .insert("n".into(), i.to_string());
                obj = api
                    .replace(&own, &PostParams::default(), &obj)
                    .await
                    .expect("pinned update of the latest version");
            }
            // An update pinned to an old version is a conflict.
            let mut old = obj.clone();
            old.metadata.resource_version = Some("1".into());
            let err = api
                .replace(&own, &PostParams::default(), &old)
                .await
                .expect_err("stale update must fail");
            match err {
                kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict")),
                other => panic!("unexpected error {other}"),
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let shared = api.get("shared").await.expect("get shared");
    assert_eq!(
        shared.data.unwrap_or_default().len(),
        200,
        "no concurrent patch may be lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_updates_lose_nothing_on_sqlite() {
    let s = Server::start(&[]);
    racing_writes(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_updates_lose_nothing_on_memory() {
    let s = Server::start(&["--datastore", "memory"]);
    racing_writes(&s).await;
}
