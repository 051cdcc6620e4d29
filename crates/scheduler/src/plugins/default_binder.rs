//! DefaultBinder: binds through the `pods/binding` subresource, as upstream `defaultbinder`
//! (a `Binding` naming the pod's UID, so a recreated pod of the same name is never bound).

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use crate::framework::{Handle, Plugin, PodInfo, Points, Status};

pub const NAME: &str = "DefaultBinder";

pub fn new(_args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(DefaultBinder))
}

struct DefaultBinder;

/// The body POSTed to `/api/v1/namespaces/{ns}/pods/{name}/binding`.
pub fn binding(pod: &PodInfo, node: &str) -> Binding {
    Binding {
        metadata: ObjectMeta {
            name: Some(pod.name().to_string()),
            namespace: Some(pod.namespace().to_string()),
            uid: Some(pod.uid.clone()),
            ..Default::default()
        },
        target: ObjectReference {
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..Default::default()
        },
    }
}

impl Plugin for DefaultBinder {
    fn name(&self) -> &'static str {
        NAME
    }

    fn points(&self) -> Points {
        Points::BIND
    }

    fn bind(
        &self,
        client: kube::Client,
        pod: Arc<PodInfo>,
        node: String,
    ) -> BoxFuture<'static, Status> {
        Box::pin(async move {
            let api: Api<Pod> = Api::namespaced(client, pod.namespace());
            let body = binding(&pod, &node);
            match api
                .create_subresource::<_, serde_json::Value>(
                    "binding",
                    pod.name(),
                    &PostParams::default(),
                    &body,
                )
                .await
            {
                Ok(_) => Status::success(),
                Err(e) => Status::error(bind_error(&e)),
            }
        })
    }
}

/// The API's message when there is one (`pods "x" not found`), else the client error.
pub fn bind_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::helper::testing::pod;
    use serde_json::json;

    #[test]
    fn binding_body_names_pod_uid_and_node() {
        let p = pod(json!({"metadata": {"name": "web", "namespace": "shop", "uid": "u-1"}}));
        let b = serde_json::to_value(binding(&p, "node-3")).expect("json");
        assert_eq!(
            b,
            json!({"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
                   "target": {"kind": "Node", "name": "node-3"}})
        );
    }
}
