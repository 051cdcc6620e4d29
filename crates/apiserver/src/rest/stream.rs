//! `pods/exec`, `pods/attach` and `pods/portforward` (upstream's `ExecREST`, `AttachREST`,
//! `PortForwardREST` with the upgrade-aware proxy).
//!
//! The request's options are checked here and the container picked from the pod; then the
//! client's upgrade request (WebSocket — `v5.channel.k8s.io` and older, or SPDY tunnelled
//! over WebSocket for port-forward — or a plain `SPDY/3.1` upgrade) goes on to the pod's
//! node agent at upstream's kubelet paths:
//!
//! - `/exec/{ns}/{pod}/{container}?command=…&input=1&output=1&error=1&tty=1`
//! - `/attach/{ns}/{pod}/{container}?input=1&output=1&error=1&tty=1`
//! - `/portForward/{ns}/{pod}?port=…`
//!
//! The agent speaks the protocol; once it answers `101 Switching Protocols`, the two
//! upgraded connections are spliced byte for byte until either side ends. An agent that
//! refuses answers the client as it answered (status and text), as upstream's proxy does.

use apimachinery::status::ApiError;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::log::{agent_location, pick_container, read_error_body};
use super::{Ctx, write};
use crate::codec::{self, Body};
use crate::kubelet_client;
use crate::request::query_values;

/// Request headers that belong to the upgrade and go on to the agent.
const UPGRADE_REQUEST_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "x-stream-protocol-version",
];

/// Response headers of the agent's `101` that go back to the client.
const UPGRADE_RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "x-stream-protocol-version",
];

/// Serves one connect request; `req` still holds the client's pending upgrade.
pub async fn connect(
    ctx: &Ctx,
    raw_query: Option<&str>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let sub = ctx.info.subresource.as_deref().unwrap_or("");
    let Some((pod, _)) = write::read(ctx, &ctx.key()).await? else {
        return Err(ctx.not_found());
    };
    let namespace = ctx.namespace().unwrap_or("");
    let name = ctx.name();
    let path = match sub {
        "exec" | "attach" => {
            let opts = StreamOptions::from_query(raw_query);
            let container = pick_container(&pod, opts.container.as_deref())?;
            opts.validate(sub)?;
            let path = format!(
                "/{sub}/{}/{}/{}",
                escape(namespace),
                escape(name),
                escape(&container)
            );
            format!("{path}?{}", opts.agent_query(sub))
        }
        _ => {
            let ports = query_values(raw_query, "ports");
            let mut params = Vec::new();
            for p in ports.iter().flat_map(|p| p.split(',')) {
                match p.trim().parse::<u16>() {
                    Ok(n) if n > 0 => params.push(format!("port={n}")),
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "invalid port {p:?}: port must be > 0 and < 65536"
                        )));
                    }
                }
            }
            let path = format!("/portForward/{}/{}", escape(namespace), escape(name));
            if params.is_empty() {
                path
            } else {
                format!("{path}?{}", params.join("&"))
            }
        }
    };
    let node_name = pod["spec"]["nodeName"].as_str().unwrap_or("");
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    if !is_upgrade(req.headers()) {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    let at = agent_location(ctx, node_name).await?;
    let forwarded: Vec<(HeaderName, HeaderValue)> = req
        .headers()
        .iter()
        .filter(|(k, _)| UPGRADE_REQUEST_HEADERS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tracing::debug!(ns = namespace, pod = name, node = node_name, %path, "proxying upgrade to the node agent");
    let mut agent = kubelet_client::upgrade(&at, &path, &ctx.state.token, &forwarded).await?;
    if agent.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(refusal(agent).await);
    }
    let mut resp = Response::new(codec::full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for (k, v) in agent.headers() {
        if UPGRADE_RESPONSE_HEADERS.contains(&k.as_str()) {
            resp.headers_mut().append(k.clone(), v.clone());
        }
    }
    let client_side = hyper::upgrade::on(&mut req);
    let agent_side = hyper::upgrade::on(&mut agent);
    tokio::spawn(async move {
        let (client, agent) = match tokio::try_join!(client_side, agent_side) {
            Ok(both) => both,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade did not complete");
                return;
            }
        };
        let (mut client, mut agent) = (TokioIo::new(client), TokioIo::new(agent));
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut agent).await {
            tracing::debug!(error = %e, "streaming connection ended with an error");
        }
    });
    Ok(resp)
}

fn is_upgrade(headers: &http::HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade && headers.contains_key(header::UPGRADE)
}

/// The agent's refusal, passed on with its status and text.
async fn refusal(agent: Response<Incoming>) -> Response<Body> {
    let status = agent.status();
    let content_type = agent.headers().get(header::CONTENT_TYPE).cloned();
    let body = read_error_body(agent.into_body()).await;
    let mut resp = Response::new(codec::full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        content_type.unwrap_or(HeaderValue::from_static("text/plain; charset=utf-8")),
    );
    resp
}

/// `PodExecOptions` / `PodAttachOptions` as the query gives them.
#[derive(Debug, Default, PartialEq)]
struct StreamOptions {
    container: Option<String>,
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

impl StreamOptions {
    fn from_query(raw: Option<&str>) -> StreamOptions {
        let last = |k: &str| query_values(raw, k).pop();
        let flag = |k: &str| {
            last(k)
                .is_some_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"))
        };
        StreamOptions {
            container: last("container").filter(|c| !c.is_empty()),
            command: query_values(raw, "command"),
            stdin: flag("stdin"),
            stdout: flag("stdout"),
            stderr: flag("stderr"),
            tty: flag("tty"),
        }
    }

    /// What upstream checks before it connects (the kubelet's `NewOptions` and the API's
    /// exec validation).
    fn validate(&self, sub: &str) -> Result<(), ApiError> {
        if sub == "exec" && self.command.is_empty() {
            return Err(ApiError::bad_request(
                "you must specify at least one command for the container",
            ));
        }
        if !(self.stdin || self.stdout || self.stderr) {
            return Err(ApiError::bad_request(
                "you must specify at least 1 of stdin, stdout, stderr",
            ));
        }
        Ok(())
    }

    /// The agent's query (upstream's kubelet parameter names).
    fn agent_query(&self, sub: &str) -> String {
        let mut params: Vec<String> = Vec::new();
        if sub == "exec" {
            params.extend(
                self.command
                    .iter()
                    .map(|c| format!("command={}", escape(c))),
            );
        }
        for (on, key) in [
            (self.stdin, "input"),
            (self.stdout, "output"),
            (self.stderr, "error"),
            (self.tty, "tty"),
        ] {
            if on {
                params.push(format!("{key}=1"));
            }
        }
        params.join("&")
    }
}

/// Percent-encodes everything but unreserved characters (safe in a path segment and a
/// query value).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_options_come_from_the_query_with_every_command_word() {
        let q =
            "command=sh&command=-c&command=echo+a%26b&container=app&stdin=true&stdout=1&tty=false";
        let opts = StreamOptions::from_query(Some(q));
        assert_eq!(opts.command, ["sh", "-c", "echo a&b"]);
        assert_eq!(opts.container.as_deref(), Some("app"));
        assert!(opts.stdin && opts.stdout && !opts.stderr && !opts.tty);
        assert_eq!(
            opts.agent_query("exec"),
            "command=sh&command=-c&command=echo%20a%26b&input=1&output=1"
        );
        assert_eq!(opts.agent_query("attach"), "input=1&output=1");
    }

    #[test]
    fn exec_without_command_or_streams_is_a_bad_request() {
        let err = StreamOptions::from_query(Some("stdout=true"))
            .validate("exec")
            .expect_err("no command");
        assert_eq!(err.code(), 400);
        assert_eq!(
            err.message(),
            "you must specify at least one command for the container"
        );
        let err = StreamOptions::from_query(Some("command=ls"))
            .validate("exec")
            .expect_err("no streams");
        assert_eq!(
            err.message(),
            "you must specify at least 1 of stdin, stdout, stderr"
        );
        assert!(
            StreamOptions::from_query(Some("stdin=1"))
                .validate("attach")
                .is_ok()
        );
    }
}
