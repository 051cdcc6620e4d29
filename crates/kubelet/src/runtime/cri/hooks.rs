//! Lifecycle hooks and stopping one container, as upstream's `pkg/kubelet/lifecycle`
//! handlers and the kuberuntime's `killContainer`: `postStart` runs right after a container
//! started (its failure kills the container, which then restarts as its policy says);
//! `preStop` runs before a running container is stopped, inside the grace period, and the
//! stop gets what the hook left of it (at least [`MIN_GRACE`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod, Probe};

use super::handlers::{self, Exec, HttpGet, join_host_port};
use super::{Inner, spec};

/// Upstream's `minimumGracePeriodInSeconds`: a container is always given this long to stop.
pub const MIN_GRACE: i64 = 2;

/// The grace period of a kill, upstream's `setTerminationGracePeriod`: the deletion's,
/// else (for a probe kill) the failed probe's own `terminationGracePeriodSeconds`, else
/// the pod's, else [`MIN_GRACE`].
pub fn grace_period(pod: &Pod, probe: Option<&Probe>) -> i64 {
    if let Some(g) = pod.metadata.deletion_grace_period_seconds {
        return g;
    }
    let pod_grace = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds);
    match pod_grace {
        Some(g) => probe
            .and_then(|p| p.termination_grace_period_seconds)
            .unwrap_or(g),
        None => MIN_GRACE,
    }
}

/// The container named `name` in the pod's spec (regular or init).
fn container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

/// Go's `%v` of a string slice: `[a b]`.
fn go_list(list: &[String]) -> String {
    format!("[{}]", list.join(" "))
}

impl Inner {
    /// Runs one hook of container `c` (instance `id`; HTTP hooks default to `pod_ip`).
    /// `Err` holds upstream's message for the failure.
    async fn run_hook(
        &self,
        pod: &Pod,
        c: &Container,
        id: &str,
        handler: &LifecycleHandler,
        pod_ip: &str,
    ) -> Result<(), String> {
        let who = format!("for Container {:?} in Pod {:?}", c.name, spec::pod_ref(pod));
        if let Some(e) = &handler.exec {
            let cmd = e.command.clone().unwrap_or_default();
            let failed = |error: String, output: &[u8]| {
                format!(
                    "Exec lifecycle hook ({}) {who} failed - error: {error}, message: {:?}",
                    go_list(&cmd),
                    String::from_utf8_lossy(output)
                )
            };
            return match handlers::exec(&self.cri, id, &cmd, None).await {
                Exec::Exited { code: 0, .. } => Ok(()),
                Exec::Exited {
                    code,
                    mut stdout,
                    stderr,
                } => {
                    let error = format!(
                        "command '{}' exited with {code}: {}",
                        cmd.join(" "),
                        String::from_utf8_lossy(&stderr)
                    );
                    stdout.extend_from_slice(&stderr);
                    Err(failed(error, &stdout))
                }
                Exec::TimedOut => Err(failed(
                    format!("command {:?} timed out", cmd.join(" ")),
                    b"",
                )),
                Exec::Failed(e) => Err(failed(e, b"")),
            };
        }
        if let Some(h) = &handler.http_get {
            let path = h.path.clone().unwrap_or_default();
            let failed =
                |e: String| format!("HTTP lifecycle hook ({path}) {who} failed - error: {e}");
            let get = HttpGet::new(h, c, pod_ip).map_err(failed)?;
            let fell_back = handlers::http_hook(&get).await.map_err(failed)?;
            if fell_back {
                self.event(
                    pod,
                    None,
                    true,
                    "LifecycleHTTPFallback",
                    format!(
                        "request to HTTPS lifecycle hook {} got HTTP response, retry with HTTP succeeded",
                        join_host_port(&get.host, get.port)
                    ),
                );
            }
            return Ok(());
        }
        if let Some(s) = &handler.sleep {
            tokio::time::sleep(Duration::from_secs(u64::try_from(s.seconds).unwrap_or(0))).await;
            return Ok(());
        }
        Err("Cannot run handler: invalid handler: no exec, httpGet or sleep action".into())
    }

    /// Runs `c`'s postStart hook, if any, on instance `id` that just started. A failure is
    /// a `FailedPostStartHook` event and the container is killed; the sync then restarts
    /// it as its restart policy says, with the crash-loop back-off.
    pub(super) async fn post_start(
        self: &Arc<Self>,
        pod: &Pod,
        c: &Container,
        id: &str,
        pod_ip: &str,
    ) {
        let Some(h) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) else {
            return;
        };
        let Err(msg) = self.run_hook(pod, c, id, h, pod_ip).await else {
            return;
        };
        tracing::warn!(pod = %spec::pod_ref(pod), container = %c.name, "postStart hook failed: {msg}");
        self.event(pod, Some(&c.name), true, "FailedPostStartHook", msg);
        let grace = grace_period(pod, None);
        let killed = self
            .kill_container(
                pod,
                &c.name,
                id,
                "FailedPostStartHook".into(),
                grace,
                Some(pod_ip),
            )
            .await;
        if let Err(s) = killed {
            tracing::warn!(pod = %spec::pod_ref(pod), container = %c.name, error = %super::describe(&s), "killing a container whose postStart hook failed");
        }
    }

    /// Stops container instance `id` (spec name `name`) as upstream's `killContainer`: a
    /// `Killing` event with `message`; with `hook_ip` (a running container: the pod IP its
    /// HTTP hook defaults to) and a positive `grace`, the preStop hook, given at most
    /// `grace` seconds; then `StopContainer` with the seconds left, at least [`MIN_GRACE`].
    pub(super) async fn kill_container(
        &self,
        pod: &Pod,
        name: &str,
        id: &str,
        message: String,
        grace: i64,
        hook_ip: Option<&str>,
    ) -> Result<(), tonic::Status> {
        self.event(pod, Some(name), false, "Killing", message);
        let mut grace = grace;
        let c = container(pod, name);
        let pre_stop = c.and_then(|c| c.lifecycle.as_ref()?.pre_stop.as_ref().map(|h| (c, h)));
        if let (Some((c, h)), Some(ip), Ok(secs @ 1..)) = (pre_stop, hook_ip, u64::try_from(grace))
        {
            let started = Instant::now();
            match tokio::time::timeout(Duration::from_secs(secs), self.run_hook(pod, c, id, h, ip))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(msg)) => {
                    tracing::warn!(pod = %spec::pod_ref(pod), container = %name, "preStop hook failed: {msg}");
                    // Upstream leaves the message out of the event: it may hold secrets.
                    self.event(
                        pod,
                        Some(name),
                        true,
                        "FailedPreStopHook",
                        "PreStopHook failed".into(),
                    );
                }
                Err(_) => {
                    tracing::debug!(pod = %spec::pod_ref(pod), container = %name, "preStop hook not completed in the grace period");
                }
            }
            grace -= i64::try_from(started.elapsed().as_secs()).unwrap_or(i64::MAX);
        }
        self.cri.stop_container(id, grace.max(MIN_GRACE)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    fn probe(v: serde_json::Value) -> Probe {
        serde_json::from_value(v).expect("probe")
    }

    #[test]
    fn a_kill_takes_the_deletion_grace_then_the_probes_then_the_pods() {
        let with_pod_grace = pod(json!({
            "metadata": {"name": "p"},
            "spec": {"terminationGracePeriodSeconds": 30, "containers": []}
        }));
        let own = probe(json!({"terminationGracePeriodSeconds": 5}));
        let plain = probe(json!({}));
        assert_eq!(grace_period(&with_pod_grace, None), 30);
        assert_eq!(grace_period(&with_pod_grace, Some(&plain)), 30);
        assert_eq!(grace_period(&with_pod_grace, Some(&own)), 5);

        let deleting = pod(json!({
            "metadata": {"name": "p", "deletionGracePeriodSeconds": 7},
            "spec": {"terminationGracePeriodSeconds": 30, "containers": []}
        }));
        assert_eq!(grace_period(&deleting, Some(&own)), 7);

        let bare = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": []}}));
        assert_eq!(grace_period(&bare, Some(&own)), MIN_GRACE);
    }
}
