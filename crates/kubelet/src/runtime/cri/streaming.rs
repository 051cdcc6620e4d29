//! Where containerd serves a pod's exec, attach and port-forward streams: the CRI `Exec`,
//! `Attach` and `PortForward` calls, which answer with a URL on containerd's streaming
//! server (upstream's `GetExec`, `GetAttach`, `GetPortForward`).

use k8s_cri::v1::ContainerState as CriState;

use super::CriRuntime;
use super::client::{CONTAINER_NAME_LABEL, describe};
use crate::stream::{StreamError, StreamRequest, StreamSource};

#[async_trait::async_trait]
impl StreamSource for CriRuntime {
    async fn url(&self, req: &StreamRequest) -> Result<String, StreamError> {
        let inner = &self.inner;
        let failed = |s: tonic::Status| StreamError::Runtime(describe(&s));
        let (namespace, pod) = (req.namespace(), req.pod());
        let sandbox = inner
            .pod_sandbox(namespace, pod)
            .await
            .map_err(failed)?
            .filter(|sb| sb.state == k8s_cri::v1::PodSandboxState::SandboxReady as i32)
            .ok_or_else(|| {
                StreamError::NotFound(format!("pod not found (\"{pod}_{namespace}\")"))
            })?;
        let container_id = |name: &str| {
            let name = name.to_string();
            let uid = sandbox.metadata.as_ref().map(|m| m.uid.clone());
            async move {
                let containers = inner.cri.containers(uid.as_deref()).await.map_err(failed)?;
                containers
                    .into_iter()
                    .filter(|c| {
                        c.state == CriState::ContainerRunning as i32
                            && c.labels.get(CONTAINER_NAME_LABEL) == Some(&name)
                    })
                    .max_by_key(|c| c.created_at)
                    .map(|c| c.id)
                    .ok_or_else(|| StreamError::NotFound(format!("container not found ({name:?})")))
            }
        };
        let mut rt = inner.cri.rt.clone();
        let url = match req {
            StreamRequest::Exec {
                container,
                command,
                io,
                ..
            } => {
                let container_id = container_id(container).await?;
                rt.exec(k8s_cri::v1::ExecRequest {
                    container_id,
                    cmd: command.clone(),
                    tty: io.tty,
                    stdin: io.stdin,
                    stdout: io.stdout,
                    stderr: io.stderr,
                })
                .await
                .map_err(failed)?
                .into_inner()
                .url
            }
            StreamRequest::Attach { container, io, .. } => {
                let container_id = container_id(container).await?;
                rt.attach(k8s_cri::v1::AttachRequest {
                    container_id,
                    stdin: io.stdin,
                    tty: io.tty,
                    stdout: io.stdout,
                    stderr: io.stderr,
                })
                .await
                .map_err(failed)?
                .into_inner()
                .url
            }
            StreamRequest::PortForward { ports, .. } => {
                rt.port_forward(k8s_cri::v1::PortForwardRequest {
                    pod_sandbox_id: sandbox.id.clone(),
                    port: ports.iter().map(|p| i32::from(*p)).collect(),
                })
                .await
                .map_err(failed)?
                .into_inner()
                .url
            }
        };
        Ok(url)
    }
}
