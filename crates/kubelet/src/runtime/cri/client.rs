//! The CRI `runtime.v1` connection to containerd over its unix socket, and the few calls
//! the runtime makes, with errors flattened to one line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    Container, ContainerFilter, ContainerStatus, ImageSpec, PodSandbox, PodSandboxFilter,
};
use tonic::transport::{Channel, Endpoint, Uri};

/// A label every sandbox and container of this agent carries, so several agents can share
/// one containerd (tests do) without touching each other's pods.
pub const AGENT_LABEL: &str = "rkube.io/agent";
pub const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
pub const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
pub const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";

#[derive(Clone)]
pub struct Cri {
    pub rt: RuntimeServiceClient<Channel>,
    pub img: ImageServiceClient<Channel>,
    pub agent_id: String,
}

/// `code: message` of a failed call (upstream kubelets quote `rpc error: code = … desc = …`).
pub fn describe(s: &tonic::Status) -> String {
    format!("rpc error: code = {:?} desc = {}", s.code(), s.message())
}

impl Cri {
    /// A lazy connection: the first call dials `socket`.
    pub fn connect(socket: &Path, agent_id: String) -> Result<Cri, String> {
        let path: PathBuf = socket.to_path_buf();
        let channel = Endpoint::try_from("http://[::1]:0")
            .map_err(|e| e.to_string())?
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }));
        Ok(Cri {
            rt: RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20),
            img: ImageServiceClient::new(channel).max_decoding_message_size(64 << 20),
            agent_id,
        })
    }

    fn labels(&self, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut l = HashMap::from([(AGENT_LABEL.to_string(), self.agent_id.clone())]);
        for (k, v) in extra {
            l.insert(k.to_string(), v.to_string());
        }
        l
    }

    /// This agent's sandboxes, of one pod or of all.
    pub async fn sandboxes(&self, uid: Option<&str>) -> Result<Vec<PodSandbox>, tonic::Status> {
        let sel = match uid {
            Some(u) => self.labels(&[(POD_UID_LABEL, u)]),
            None => self.labels(&[]),
        };
        let req = k8s_cri::v1::ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                label_selector: sel,
                ..Default::default()
            }),
        };
        Ok(self
            .rt
            .clone()
            .list_pod_sandbox(req)
            .await?
            .into_inner()
            .items)
    }

    /// This agent's containers, of one pod or of all.
    pub async fn containers(&self, uid: Option<&str>) -> Result<Vec<Container>, tonic::Status> {
        let sel = match uid {
            Some(u) => self.labels(&[(POD_UID_LABEL, u)]),
            None => self.labels(&[]),
        };
        let req = k8s_cri::v1::ListContainersRequest {
            filter: Some(ContainerFilter {
                label_selector: sel,
                ..Default::default()
            }),
        };
        Ok(self
            .rt
            .clone()
            .list_containers(req)
            .await?
            .into_inner()
            .containers)
    }

    pub async fn container_status(&self, id: &str) -> Result<ContainerStatus, tonic::Status> {
        let req = k8s_cri::v1::ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        };
        self.rt
            .clone()
            .container_status(req)
            .await?
            .into_inner()
            .status
            .ok_or_else(|| tonic::Status::not_found(format!("container {id} has no status")))
    }

    /// The image's id if the runtime has it.
    pub async fn image_present(
        &self,
        image: &str,
    ) -> Result<Option<k8s_cri::v1::Image>, tonic::Status> {
        let req = k8s_cri::v1::ImageStatusRequest {
            image: Some(ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            verbose: false,
        };
        Ok(self.img.clone().image_status(req).await?.into_inner().image)
    }

    pub async fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<(), tonic::Status> {
        let req = k8s_cri::v1::StopContainerRequest {
            container_id: id.to_string(),
            timeout: timeout_secs,
        };
        self.rt.clone().stop_container(req).await.map(drop)
    }

    pub async fn remove_container(&self, id: &str) -> Result<(), tonic::Status> {
        let req = k8s_cri::v1::RemoveContainerRequest {
            container_id: id.to_string(),
        };
        self.rt.clone().remove_container(req).await.map(drop)
    }

    pub async fn stop_sandbox(&self, id: &str) -> Result<(), tonic::Status> {
        let req = k8s_cri::v1::StopPodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.rt.clone().stop_pod_sandbox(req).await.map(drop)
    }

    pub async fn remove_sandbox(&self, id: &str) -> Result<(), tonic::Status> {
        let req = k8s_cri::v1::RemovePodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.rt.clone().remove_pod_sandbox(req).await.map(drop)
    }

    /// The sandbox's IPs (empty for host-network sandboxes).
    pub async fn sandbox_ips(&self, id: &str) -> Result<Vec<String>, tonic::Status> {
        let req = k8s_cri::v1::PodSandboxStatusRequest {
            pod_sandbox_id: id.to_string(),
            verbose: false,
        };
        let status = self.rt.clone().pod_sandbox_status(req).await?.into_inner();
        let Some(net) = status.status.and_then(|s| s.network) else {
            return Ok(Vec::new());
        };
        let mut ips: Vec<String> = Vec::new();
        if !net.ip.is_empty() {
            ips.push(net.ip);
        }
        ips.extend(net.additional_ips.into_iter().map(|i| i.ip));
        Ok(ips)
    }
}
