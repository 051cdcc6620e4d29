//! The agent's SPDY/3.1 client against the machine's containerd streaming server: exec with
//! stdin/stdout/stderr and the exit code, exec with a tty and resize, port-forward to an
//! httpd in a pod. Each test runs its own pod sandbox (without the agent label, so running
//! agents leave it alone) and removes it at the end, also when it fails.

use std::path::Path;
use std::time::Duration;

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, CreateContainerRequest, ExecRequest, ExecSyncRequest,
    ImageSpec, LinuxPodSandboxConfig, PodSandboxConfig, PodSandboxMetadata, PortForwardRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StopPodSandboxRequest,
};
use kubelet::runtime::cri::client::Cri;
use kubelet::stream::cri::{
    self, PROTOCOL_PORT_FORWARD, RemoteCommand, RemoteCommandOptions, exec_status, resize_message,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;

const SOCKET: &str = "/run/containerd/containerd.sock";
const IMAGE: &str = "localhost/busybox:latest";
const DEADLINE: Duration = Duration::from_secs(60);

fn runtime() -> RuntimeServiceClient<Channel> {
    // The agent id only labels what `Cri` itself creates; these tests create through `rt`.
    Cri::connect(Path::new(SOCKET), "cri-stream-test".into())
        .expect("CRI client")
        .rt
}

async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {DEADLINE:?}"))
}

/// A running pod sandbox with one busybox container; stopped and removed on drop.
struct Pod {
    rt: RuntimeServiceClient<Channel>,
    sandbox: String,
    container: String,
    _logs: tempfile::TempDir,
}

impl Pod {
    async fn start(name: &str, command: &[&str]) -> Pod {
        let mut rt = runtime();
        let logs = tempfile::tempdir().expect("tempdir");
        let uid = format!("{name}-{}", std::process::id());
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.to_string(),
                uid: uid.clone(),
                namespace: "cri-stream-test".into(),
                attempt: 0,
            }),
            hostname: name.to_string(),
            log_directory: logs.path().to_string_lossy().into_owned(),
            linux: Some(LinuxPodSandboxConfig::default()),
            ..Default::default()
        };
        let sandbox = rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .expect("RunPodSandbox")
            .into_inner()
            .pod_sandbox_id;
        // From here on the guard removes the sandbox (and its container) whatever happens.
        let mut pod = Pod {
            rt,
            sandbox,
            container: String::new(),
            _logs: logs,
        };
        let container = pod
            .rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod.sandbox.clone(),
                config: Some(ContainerConfig {
                    metadata: Some(ContainerMetadata {
                        name: "main".into(),
                        attempt: 0,
                    }),
                    image: Some(ImageSpec {
                        image: IMAGE.into(),
                        ..Default::default()
                    }),
                    command: command.iter().map(|s| s.to_string()).collect(),
                    log_path: "main.log".into(),
                    ..Default::default()
                }),
                sandbox_config: Some(config),
            })
            .await
            .expect("CreateContainer")
            .into_inner()
            .container_id;
        pod.container = container;
        pod.rt
            .start_container(StartContainerRequest {
                container_id: pod.container.clone(),
            })
            .await
            .expect("StartContainer");
        pod
    }

    async fn exec_url(&self, cmd: &[&str], opts: RemoteCommandOptions) -> String {
        self.rt
            .clone()
            .exec(ExecRequest {
                container_id: self.container.clone(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                tty: opts.tty,
                stdin: opts.stdin,
                stdout: opts.stdout,
                stderr: opts.stderr,
            })
            .await
            .expect("Exec")
            .into_inner()
            .url
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let sandbox = self.sandbox.clone();
        // Drop cannot await: clean up on a thread with its own runtime and connection.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut rt = runtime();
                let stop = rt.stop_pod_sandbox(StopPodSandboxRequest {
                    pod_sandbox_id: sandbox.clone(),
                });
                if let Err(e) = stop.await {
                    eprintln!("StopPodSandbox {sandbox}: {e}");
                }
                let remove = rt.remove_pod_sandbox(RemovePodSandboxRequest {
                    pod_sandbox_id: sandbox.clone(),
                });
                if let Err(e) = remove.await {
                    eprintln!("RemovePodSandbox {sandbox}: {e}");
                }
            });
        });
        let _ = cleanup.join();
    }
}

async fn read_all(stream: Option<&mut kubelet::stream::spdy::Stream>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(s) = stream {
        s.read_to_end(&mut out).await.expect("read stream");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_with_stdin_returns_stdout_stderr_and_the_exit_code() {
    let pod = Pod::start("exec-stdin", &["sleep", "3600"]).await;
    let opts = RemoteCommandOptions {
        stdin: true,
        stdout: true,
        stderr: true,
        tty: false,
    };
    let url = pod
        .exec_url(&["sh", "-c", "cat; echo err >&2; exit 3"], opts)
        .await;
    let mut rc = within("connect", RemoteCommand::connect(&url, opts))
        .await
        .expect("exec streams");
    let mut stdin = rc.stdin.take().expect("stdin stream");
    stdin.write_all(b"hello").await.expect("write stdin");
    stdin.shutdown().await.expect("close stdin");
    let (stdout, stderr, status) = within("exec output", async {
        tokio::join!(
            read_all(rc.stdout.as_mut()),
            read_all(rc.stderr.as_mut()),
            read_all(Some(&mut rc.error)),
        )
    })
    .await;
    assert_eq!(String::from_utf8_lossy(&stdout), "hello");
    assert_eq!(String::from_utf8_lossy(&stderr), "err\n");
    let status = exec_status(&status);
    assert_eq!(status.exit_code, Some(3), "{status:?}");
    assert!(
        status
            .message
            .as_deref()
            .is_some_and(|m| m.contains("non-zero exit code")),
        "{status:?}"
    );

    // Several MiB each way through a Go SPDY peer (no flow control windows to stall on).
    let echo = RemoteCommandOptions {
        stdin: true,
        stdout: true,
        stderr: false,
        tty: false,
    };
    let url = pod.exec_url(&["cat"], echo).await;
    let mut rc = within("connect", RemoteCommand::connect(&url, echo))
        .await
        .expect("exec streams");
    let data: Vec<u8> = (0..6u32 << 20).map(|i| (i % 253) as u8).collect();
    let mut stdin = rc.stdin.take().expect("stdin stream");
    let send = async {
        stdin.write_all(&data).await.expect("write stdin");
        stdin.shutdown().await.expect("close stdin");
    };
    let ((), echoed, status) = within("6 MiB through cat", async {
        tokio::join!(
            send,
            read_all(rc.stdout.as_mut()),
            read_all(Some(&mut rc.error))
        )
    })
    .await;
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "cat echoed different bytes");
    assert_eq!(exec_status(&status).exit_code, Some(0));

    // A command that succeeds reports exit code 0.
    let quiet = RemoteCommandOptions {
        stdin: false,
        stdout: true,
        stderr: true,
        tty: false,
    };
    let url = pod.exec_url(&["true"], quiet).await;
    let mut rc = within("connect", RemoteCommand::connect(&url, quiet))
        .await
        .expect("exec streams");
    let status = within("exec status", read_all(Some(&mut rc.error))).await;
    assert_eq!(exec_status(&status).exit_code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_with_a_tty_resizes_and_returns_the_exit_code() {
    let pod = Pod::start("exec-tty", &["sleep", "3600"]).await;
    // CRI refuses tty together with stderr: a terminal has one output.
    let opts = RemoteCommandOptions {
        stdin: true,
        stdout: true,
        stderr: false,
        tty: true,
    };
    let url = pod.exec_url(&["sh"], opts).await;
    let mut rc = within("connect", RemoteCommand::connect(&url, opts))
        .await
        .expect("exec streams");
    assert!(rc.stderr.is_none(), "a tty has no stderr stream");
    let mut resize = rc.resize.take().expect("resize stream");
    let mut stdin = rc.stdin.take().expect("stdin stream");
    let mut stdout = rc.stdout.take().expect("stdout stream");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            match stdout.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let _ = tx.send(buf[..n].to_vec());
                }
            }
        }
    });
    resize
        .write_all(&resize_message(100, 40))
        .await
        .expect("resize");
    // The resize reaches the terminal asynchronously: ask until the shell sees it.
    let mut output = Vec::new();
    within("the terminal size", async {
        loop {
            stdin.write_all(b"stty size\n").await.expect("write stdin");
            let wait = tokio::time::sleep(Duration::from_millis(200));
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    chunk = rx.recv() => output.extend(chunk.expect("stdout open")),
                    _ = &mut wait => break,
                }
            }
            if String::from_utf8_lossy(&output).contains("40 100") {
                break;
            }
        }
    })
    .await;
    // A terminal turns "\n" into "\r\n".
    assert!(
        String::from_utf8_lossy(&output).contains("40 100\r\n"),
        "{}",
        String::from_utf8_lossy(&output)
    );
    stdin.write_all(b"exit 4\n").await.expect("write stdin");
    let status = within("exec status", read_all(Some(&mut rc.error))).await;
    assert_eq!(exec_status(&status).exit_code, Some(4));
    within("stdout end", reader).await.expect("reader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_reaches_httpd_in_the_pod() {
    let pod = Pod::start("port-forward", &["sleep", "3600"]).await;
    let setup = "mkdir -p /tmp/www && echo hello from the pod > /tmp/www/index.html && httpd -p 8080 -h /tmp/www";
    let started = pod
        .rt
        .clone()
        .exec_sync(ExecSyncRequest {
            container_id: pod.container.clone(),
            cmd: vec!["sh".into(), "-c".into(), setup.into()],
            timeout: 30,
        })
        .await
        .expect("ExecSync")
        .into_inner();
    assert_eq!(
        started.exit_code,
        0,
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let url = pod
        .rt
        .clone()
        .port_forward(PortForwardRequest {
            pod_sandbox_id: pod.sandbox.clone(),
            port: vec![8080],
        })
        .await
        .expect("PortForward")
        .into_inner()
        .url;
    let session = within("connect", cri::connect(&url, PROTOCOL_PORT_FORWARD))
        .await
        .expect("port-forward session");

    // httpd may still be starting: the first connection is retried until it is served.
    let mut request_id = 0;
    let first = within("httpd to serve", async {
        loop {
            let (response, errors) = get(&session, request_id).await;
            request_id += 1;
            if !response.is_empty() || !errors.contains("connection refused") {
                break (response, errors);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    // A second connection over the same session gets its own stream pair.
    let second = within("the second response", get(&session, request_id)).await;
    for (response, errors) in [first, second] {
        assert!(errors.is_empty(), "error stream: {errors}");
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.ends_with("hello from the pod\n"), "{response}");
    }

    // A port nothing listens on: the server says so on the error stream.
    let mut streams = within(
        "port-forward streams",
        cri::open_port_forward(&session, 9, 100),
    )
    .await
    .expect("streams");
    let (data, errors) = within("the refusal", async {
        tokio::join!(
            read_all(Some(&mut streams.data)),
            read_all(Some(&mut streams.error))
        )
    })
    .await;
    assert!(data.is_empty());
    let errors = String::from_utf8_lossy(&errors);
    assert!(
        errors.contains("error forwarding port 9"),
        "error stream: {errors}"
    );
}

/// One HTTP GET through a new port-forward connection: the response and the error stream.
async fn get(session: &kubelet::stream::spdy::Session, request_id: u32) -> (String, String) {
    let mut streams = cri::open_port_forward(session, 8080, request_id)
        .await
        .expect("port-forward streams");
    streams
        .data
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .expect("request");
    let (response, errors) = tokio::join!(
        read_all(Some(&mut streams.data)),
        read_all(Some(&mut streams.error))
    );
    (
        String::from_utf8_lossy(&response).into_owned(),
        String::from_utf8_lossy(&errors).into_owned(),
    )
}
