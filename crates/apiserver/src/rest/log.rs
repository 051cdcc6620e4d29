//! `GET pods/<name>/log`: a container's log, streamed from the agent of the pod's node
//! (upstream's `LogREST` and `LogLocation`).
//!
//! The options are read and checked here, the container is picked from the pod, and the
//! request goes on to `https://<node>:<port>/containerLogs/<ns>/<pod>/<container>`. Its
//! body is passed through as it arrives, so `kubectl logs -f` sees each line when the
//! agent sends it. An agent's error answer becomes a `Status` the way upstream's response
//! checker makes one.

use apimachinery::field::{BadValue, FieldError};
use apimachinery::status::ApiError;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Incoming;
use jiff::Timestamp;
use serde_json::Value;

use super::{Ctx, write};
use crate::codec::{self, Body};
use crate::kubelet_client;

/// How much of an agent's error answer is kept (upstream's `maxReadLength`).
const MAX_ERROR_BODY: usize = 50_000;

/// `PodLogOptions` as the query gives them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub since_seconds: Option<i64>,
    pub since_time: Option<Timestamp>,
    pub tail_lines: Option<i64>,
    pub limit_bytes: Option<i64>,
}

impl LogOptions {
    /// Reads the query the way upstream's parameter codec does: a present boolean is true
    /// unless `0` or `false`; a number or time that does not parse is a 400.
    pub fn from_query(query: &crate::request::Query) -> Result<LogOptions, ApiError> {
        let flag = |k: &str| {
            query
                .get(k)
                .is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"))
        };
        let int = |k: &str| -> Result<Option<i64>, ApiError> {
            query
                .value(k)
                .map(|v| {
                    v.parse::<i64>().map_err(|_| {
                        ApiError::bad_request(format!(
                            "strconv.ParseInt: parsing {v:?}: invalid syntax"
                        ))
                    })
                })
                .transpose()
        };
        let since_time = query
            .value("sinceTime")
            .map(|v| {
                v.parse::<Timestamp>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "parsing time {v:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse {v:?} as \"2006\""
                    ))
                })
            })
            .transpose()?;
        Ok(LogOptions {
            container: query.value("container").map(str::to_string),
            follow: flag("follow"),
            previous: flag("previous"),
            timestamps: flag("timestamps"),
            since_seconds: int("sinceSeconds")?,
            since_time,
            tail_lines: int("tailLines")?,
            limit_bytes: int("limitBytes")?,
        })
    }

    /// Upstream's `ValidatePodLogOptions`.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if let Some(n) = self.tail_lines.filter(|n| *n < 0) {
            errs.push(FieldError::invalid(
                "tailLines",
                BadValue::Raw(n.to_string()),
                "must be greater than or equal to 0",
            ));
        }
        if let Some(n) = self.limit_bytes.filter(|n| *n < 1) {
            errs.push(FieldError::invalid(
                "limitBytes",
                BadValue::Raw(n.to_string()),
                "must be greater than 0",
            ));
        }
        match (self.since_seconds, self.since_time) {
            (Some(_), Some(_)) => errs.push(FieldError::forbidden(
                "",
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            )),
            (Some(n), None) if n < 1 => errs.push(FieldError::invalid(
                "sinceSeconds",
                BadValue::Raw(n.to_string()),
                "must be greater than 0",
            )),
            _ => {}
        }
        errs
    }

    /// The agent's query: only what is set, keys in order (Go's `url.Values.Encode`).
    fn agent_query(&self) -> String {
        let mut params: Vec<(&str, String)> = Vec::new();
        if self.follow {
            params.push(("follow", "true".into()));
        }
        if let Some(n) = self.limit_bytes {
            params.push(("limitBytes", n.to_string()));
        }
        if self.previous {
            params.push(("previous", "true".into()));
        }
        if let Some(n) = self.since_seconds {
            params.push(("sinceSeconds", n.to_string()));
        }
        if let Some(t) = self.since_time {
            params.push(("sinceTime", t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
        }
        if let Some(n) = self.tail_lines {
            params.push(("tailLines", n.to_string()));
        }
        if self.timestamps {
            params.push(("timestamps", "true".into()));
        }
        params
            .iter()
            .map(|(k, v)| format!("{k}={}", query_escape(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Go's `url.QueryEscape` for the characters log options can hold.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The container a log request is for (upstream's `validateContainer`): the one named, if
/// the pod has it among its init, app or ephemeral containers; else the only one.
pub fn pick_container(pod: &Value, asked: Option<&str>) -> Result<String, ApiError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or("");
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect()
    };
    let containers = names("containers");
    let all: Vec<String> = names("initContainers")
        .into_iter()
        .chain(containers.iter().cloned())
        .chain(names("ephemeralContainers"))
        .collect();
    match asked {
        Some(name) if all.iter().any(|c| c == name) => Ok(name.to_string()),
        Some(name) => Err(ApiError::bad_request(format!(
            "container {name} is not valid for pod {pod_name}"
        ))),
        None => match containers.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}"
            ))),
            _ => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                all.join(" ")
            ))),
        },
    }
}

/// `GET pods/<name>/log`.
pub async fn log(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let opts = LogOptions::from_query(&ctx.query)?;
    let errs = opts.validate();
    if !errs.is_empty() {
        return Err(ApiError::invalid("", "PodLogOptions", ctx.name(), &errs));
    }
    let Some((pod, _)) = write::read(ctx, &ctx.key()).await? else {
        return Err(ctx.not_found());
    };
    let container = pick_container(&pod, opts.container.as_deref())?;
    let node_name = pod["spec"]["nodeName"].as_str().unwrap_or("");
    if node_name.is_empty() {
        // Upstream streams nothing for a pod that has no node yet.
        return Ok(text_response(codec::full(Bytes::new())));
    }
    let at = agent_location(ctx, node_name).await?;
    let namespace = ctx.namespace().unwrap_or("");
    let pod_name = ctx.name();
    let mut path = format!("/containerLogs/{namespace}/{pod_name}/{container}");
    let query = opts.agent_query();
    if !query.is_empty() {
        path = format!("{path}?{query}");
    }
    tracing::debug!(ns = namespace, name = pod_name, node = node_name, container = %container, "proxying pod log");
    let resp = kubelet_client::get(&at, &path, &ctx.state.token).await?;
    let status = resp.status();
    if !(200..=206).contains(&status.as_u16()) {
        let body = read_error_body(resp.into_body()).await;
        return Err(agent_error(status, pod_name, &body));
    }
    Ok(text_response(stream_body(resp.into_body())))
}

/// Where the agent of node `node_name` listens.
pub async fn agent_location(
    ctx: &Ctx,
    node_name: &str,
) -> Result<kubelet_client::Location, ApiError> {
    let registry = ctx.state.registry();
    let nodes = registry
        .get("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("nodes are not served"))?;
    let node = ctx
        .state
        .store
        .get(&nodes.storage_key(None, node_name))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .and_then(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
        .ok_or_else(|| ApiError::not_found("", "nodes", node_name))?;
    kubelet_client::location(&node)
}

fn text_response(body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// The agent's body, frame by frame as it comes. A broken agent connection ends the
/// response early; a client that goes away drops this body and with it the connection.
fn stream_body(body: Incoming) -> Body {
    let frames = http_body_util::BodyStream::new(body)
        .take_while(|frame| {
            if let Err(e) = frame {
                tracing::debug!(error = %e, "pod log stream from the node agent broke off");
            }
            futures::future::ready(frame.is_ok())
        })
        .filter_map(|frame| {
            futures::future::ready(
                frame
                    .ok()
                    .and_then(|f| f.into_data().ok())
                    .map(|d| Ok::<_, std::convert::Infallible>(Frame::data(d))),
            )
        });
    BodyExt::boxed(StreamBody::new(frames))
}

/// The start of an agent's error answer, as text.
pub async fn read_error_body(body: Incoming) -> String {
    let mut out: Vec<u8> = Vec::new();
    let mut stream = http_body_util::BodyStream::new(body);
    while let Some(Ok(frame)) = stream.next().await {
        if let Ok(data) = frame.into_data() {
            let room = MAX_ERROR_BODY.saturating_sub(out.len());
            out.extend_from_slice(&data[..data.len().min(room)]);
            if out.len() >= MAX_ERROR_BODY {
                break;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An agent's error answer as upstream's `GenericHttpResponseChecker` reports it for
/// `pods/log`: 500 and 400 keep the agent's text; other codes get the generic message
/// for the code, naming `pods/log` and the pod.
pub fn agent_error(status: StatusCode, pod: &str, body: &str) -> ApiError {
    let code = status.as_u16();
    let (reason, message) = match code {
        500 => return ApiError::internal(body),
        400 => return ApiError::bad_request(body),
        404 => (
            "NotFound",
            "the server could not find the requested resource".to_string(),
        ),
        401 => (
            "Unauthorized",
            "the server has asked for the client to provide credentials".to_string(),
        ),
        403 => ("Forbidden", body.to_string()),
        405 => (
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".to_string(),
        ),
        409 => ("Conflict", "the server reported a conflict".to_string()),
        422 => (
            "Invalid",
            "the server rejected our request due to an error in our request".to_string(),
        ),
        429 => (
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later"
                .to_string(),
        ),
        503 => (
            "ServiceUnavailable",
            "the server is currently unable to handle the request".to_string(),
        ),
        504 => (
            "Timeout",
            "the server was unable to return a response in the time allotted, but may still be processing the request"
                .to_string(),
        ),
        c if c >= 500 => (
            "InternalError",
            format!(
                "an error on the server ({}) has prevented the request from succeeding",
                go_quote(body)
            ),
        ),
        c => (
            "",
            format!("the server responded with the status code {c} but did not return more information"),
        ),
    };
    // Upstream's verb is empty here, hence the double space.
    let mut e = ApiError::new(code, reason, format!("{message} ( pods/log {pod})"));
    if reason.is_empty() {
        e.0.reason = None;
    }
    e.0.details = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusDetails {
            kind: Some("pods/log".into()),
            name: Some(pod.to_string()).filter(|n| !n.is_empty()),
            ..Default::default()
        },
    );
    e
}

fn go_quote(s: &str) -> String {
    apimachinery::field::go_quote(s)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::request::Query;

    fn pod() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {
            "initContainers": [{"name": "setup"}],
            "containers": [{"name": "app"}, {"name": "sidecar"}],
            "ephemeralContainers": [{"name": "debugger"}],
        }})
    }

    #[test]
    fn several_containers_and_none_named_lists_them_all() {
        let err = pick_container(&pod(), None).expect_err("ambiguous");
        assert_eq!(err.code(), 400);
        assert_eq!(err.reason(), "BadRequest");
        assert_eq!(
            err.message(),
            "a container name must be specified for pod web, choose one of: [setup app sidecar debugger]"
        );
        let err = pick_container(&pod(), Some("db")).expect_err("unknown");
        assert_eq!(err.message(), "container db is not valid for pod web");
        assert_eq!(
            pick_container(&pod(), Some("setup")).expect("init"),
            "setup"
        );
        let single = json!({"metadata": {"name": "one"}, "spec": {"containers": [{"name": "c"}]}});
        assert_eq!(pick_container(&single, None).expect("only"), "c");
    }

    #[test]
    fn options_are_validated_with_upstreams_messages() {
        let invalid = |q: &str| {
            let opts = LogOptions::from_query(&Query::parse(Some(q))).expect("parses");
            ApiError::invalid("", "PodLogOptions", "web", &opts.validate())
                .message()
                .to_string()
        };
        assert_eq!(
            invalid("tailLines=-1"),
            "PodLogOptions \"web\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(
            invalid("sinceSeconds=10&sinceTime=2024-05-01T10:00:00Z"),
            "PodLogOptions \"web\" is invalid: : Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
        );
        assert_eq!(
            invalid("limitBytes=0"),
            "PodLogOptions \"web\" is invalid: limitBytes: Invalid value: 0: must be greater than 0"
        );
        let err = LogOptions::from_query(&Query::parse(Some("tailLines=ten"))).expect_err("bad");
        assert_eq!(err.code(), 400);
        assert_eq!(
            err.message(),
            "strconv.ParseInt: parsing \"ten\": invalid syntax"
        );
    }

    #[test]
    fn the_agent_gets_only_the_options_set() {
        let q = Query::parse(Some(
            "container=app&follow=true&tailLines=5&timestamps=1&sinceTime=2024-05-01T10%3A00%3A00%2B02%3A00",
        ));
        let opts = LogOptions::from_query(&q).expect("parses");
        assert_eq!(
            opts.agent_query(),
            "follow=true&sinceTime=2024-05-01T08%3A00%3A00Z&tailLines=5&timestamps=true"
        );
        assert_eq!(LogOptions::default().agent_query(), "");
    }

    #[test]
    fn agent_errors_become_upstreams_statuses() {
        let e = agent_error(
            StatusCode::BAD_REQUEST,
            "web",
            "container \"app\" in pod \"web\" is waiting to start: ContainerCreating",
        );
        assert_eq!((e.code(), e.reason()), (400, "BadRequest"));
        assert_eq!(
            e.message(),
            "container \"app\" in pod \"web\" is waiting to start: ContainerCreating"
        );
        let e = agent_error(StatusCode::NOT_FOUND, "web", "pod \"web\" does not exist");
        assert_eq!((e.code(), e.reason()), (404, "NotFound"));
        assert_eq!(
            e.message(),
            "the server could not find the requested resource ( pods/log web)"
        );
        let e = agent_error(StatusCode::INTERNAL_SERVER_ERROR, "web", "boom");
        assert_eq!(e.message(), "Internal error occurred: boom");
        let e = agent_error(StatusCode::BAD_GATEWAY, "web", "down");
        assert_eq!(
            e.message(),
            "an error on the server (\"down\") has prevented the request from succeeding ( pods/log web)"
        );
    }
}
