//! Turning a request line into what it asks for: upstream's `RequestInfo` (verb, API
//! group/version, namespace, resource, name, subresource) and the query options.

use std::collections::HashMap;

use http::Method;

/// A resource request (`/api/…` or `/apis/…`). Non-resource paths never become one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub verb: &'static str,
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// What a path under `/api` or `/apis` names.
#[derive(Debug, PartialEq, Eq)]
pub enum ApiPath {
    /// `/api` or `/apis`.
    Root {
        legacy: bool,
    },
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`.
    GroupVersion {
        group: String,
        version: String,
    },
    Resource(RequestInfo),
}

/// Parses an `/api…` path; `None` when it is not one.
pub fn parse(method: &Method, path: &str, query: &Query) -> Option<ApiPath> {
    let trimmed = path.trim_matches('/');
    let mut parts: Vec<&str> = trimmed.split('/').collect();
    let legacy = match parts.first() {
        Some(&"api") => true,
        Some(&"apis") => false,
        _ => return None,
    };
    parts.remove(0);
    if parts.is_empty() || parts == [""] {
        return Some(ApiPath::Root { legacy });
    }
    let (group, version) = if legacy {
        (String::new(), parts.remove(0).to_string())
    } else {
        let g = parts.remove(0).to_string();
        if parts.is_empty() {
            return Some(ApiPath::Group(g));
        }
        (g, parts.remove(0).to_string())
    };
    if parts.is_empty() {
        return Some(ApiPath::GroupVersion { group, version });
    }
    // The deprecated `/watch/` prefix turns a list/get into a watch.
    let mut watch = false;
    if parts.first() == Some(&"watch") {
        watch = true;
        parts.remove(0);
    }
    let mut namespace = None;
    if parts.first() == Some(&"namespaces") && parts.len() > 1 {
        namespace = Some(parts[1].to_string());
        // `namespaces/<ns>/status` and `/finalize` are subresources of the namespace itself.
        if parts.len() > 2 && !matches!(parts[2], "status" | "finalize") {
            parts.drain(..2);
        } else {
            namespace = None;
            // Keep `namespaces/<name>[/<sub>]` as the resource path below.
        }
    }
    if parts.is_empty() || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let resource = parts[0].to_string();
    let name = parts.get(1).map(|s| s.to_string());
    let subresource = parts.get(2).map(|s| s.to_string());
    if parts.len() > 3 {
        // Only proxy subresources take a trailing path; none are served here.
        return None;
    }
    let verb = if watch || (query.flag("watch") && *method == Method::GET) {
        "watch"
    } else {
        match (method.as_str(), name.is_some()) {
            ("GET" | "HEAD", true) => "get",
            ("GET" | "HEAD", false) => "list",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            _ => "unknown",
        }
    };
    Some(ApiPath::Resource(RequestInfo {
        verb,
        group,
        version,
        namespace,
        resource,
        name,
        subresource,
    }))
}

/// Decoded query parameters (the last value wins, as with Go's `url.Values.Get`).
#[derive(Clone, Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        let mut map = HashMap::new();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(percent_decode(k), percent_decode(v));
        }
        Query(map)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// A non-empty value.
    pub fn value(&self, k: &str) -> Option<&str> {
        self.get(k).filter(|v| !v.is_empty())
    }

    /// Go's `strconv.ParseBool` truthiness, as upstream reads `watch=1` or `watch=true`.
    pub fn flag(&self, k: &str) -> bool {
        matches!(
            self.get(k),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True")
        )
    }
}

/// Every value of `key` in a raw query, decoded, in order (Go's `url.Values[key]`): what
/// repeated parameters like exec's `command` need.
pub fn query_values(raw: Option<&str>, key: &str) -> Vec<String> {
    raw.unwrap_or("")
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == key).then(|| percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: Method, path: &str, q: &str) -> RequestInfo {
        match parse(&method, path, &Query::parse(Some(q))) {
            Some(ApiPath::Resource(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn parses_namespaced_and_cluster_paths() {
        let r = info(Method::GET, "/api/v1/namespaces/default/pods/x", "");
        assert_eq!(
            (
                r.verb,
                r.namespace.as_deref(),
                r.resource.as_str(),
                r.name.as_deref()
            ),
            ("get", Some("default"), "pods", Some("x"))
        );
        let r = info(Method::GET, "/apis/apps/v1/deployments", "watch=true");
        assert_eq!(
            (r.verb, r.group.as_str(), r.namespace),
            ("watch", "apps", None)
        );
        let r = info(Method::GET, "/api/v1/namespaces/kube-system", "");
        assert_eq!(
            (r.verb, r.resource.as_str(), r.name.as_deref(), r.namespace),
            ("get", "namespaces", Some("kube-system"), None)
        );
        let r = info(Method::PUT, "/api/v1/namespaces/x/status", "");
        assert_eq!(
            (
                r.resource.as_str(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            ("namespaces", Some("x"), Some("status"))
        );
        let r = info(
            Method::PUT,
            "/apis/apps/v1/namespaces/ns/deployments/d/status",
            "",
        );
        assert_eq!(
            (r.verb, r.subresource.as_deref()),
            ("update", Some("status"))
        );
        let r = info(Method::DELETE, "/api/v1/namespaces/ns/configmaps", "");
        assert_eq!(r.verb, "deletecollection");
        let r = info(Method::GET, "/api/v1/watch/namespaces/ns/pods", "");
        assert_eq!(r.verb, "watch");
    }

    #[test]
    fn parses_discovery_paths() {
        let q = Query::default();
        assert_eq!(
            parse(&Method::GET, "/api", &q),
            Some(ApiPath::Root { legacy: true })
        );
        assert_eq!(
            parse(&Method::GET, "/apis/", &q),
            Some(ApiPath::Root { legacy: false })
        );
        assert_eq!(
            parse(&Method::GET, "/apis/apps/v1", &q),
            Some(ApiPath::GroupVersion {
                group: "apps".into(),
                version: "v1".into()
            })
        );
        assert_eq!(parse(&Method::GET, "/healthz", &q), None);
    }

    #[test]
    fn decodes_query() {
        let q = Query::parse(Some(
            "labelSelector=app%3Dnginx%2Ctier+in+(a)&watch=1&limit=500",
        ));
        assert_eq!(q.get("labelSelector"), Some("app=nginx,tier in (a)"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("limit"), Some("500"));
        assert_eq!(Query::parse(Some("a=%zz%4")).get("a"), Some("%zz%4"));
    }
}
