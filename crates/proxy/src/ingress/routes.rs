//! The routing table: which Ingresses are ours, and for a (host, path) which backend
//! serves it. Built from cached objects only, so it is pure and rebuilt whole on change.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{
    Ingress, IngressBackend, IngressClass, IngressLoadBalancerIngress,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rustls::sign::CertifiedKey;

use super::tls::{self, Certs};
use super::{CLASS_NAME, CONTROLLER};

/// The pre-IngressClass way of choosing a controller, still honoured when an Ingress has
/// no `spec.ingressClassName`.
pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// Marks the IngressClass that Ingresses without any class belong to.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// An immutable routing snapshot; the server shares it as `Arc<Routes>` and swaps it whole.
#[derive(Debug, Default)]
pub struct Routes {
    /// Rules whose host is exact, keyed by the lowercase host.
    exact: HashMap<String, HostRoutes>,
    /// Rules for `*.suffix`, keyed by `suffix` (one label is stripped from the request host).
    wildcard: HashMap<String, HostRoutes>,
    /// Rules without a host, and the cluster-wide default backend (ingress-nginx's `_`
    /// server): what a request whose host matches no rule gets.
    any: HostRoutes,
    certs: Certs,
    served: Vec<Served>,
}

/// The paths of one host, merged across every Ingress that names it.
#[derive(Debug, Default)]
struct HostRoutes {
    /// Longest path first, Exact before Prefix at equal length, older Ingress first on a tie;
    /// the first rule that matches wins.
    paths: Vec<PathRule>,
    /// `spec.defaultBackend` of the oldest Ingress with rules for this host.
    default: Option<Arc<Upstream>>,
}

#[derive(Debug)]
struct PathRule {
    exact: bool,
    /// For Prefix rules: without trailing slashes (`/` stays `/`).
    path: String,
    upstream: Arc<Upstream>,
}

#[derive(Debug)]
struct Served {
    namespace: String,
    name: String,
    status: Vec<IngressLoadBalancerIngress>,
}

/// What an Ingress backend names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Service {
        namespace: String,
        name: String,
        port: PortRef,
    },
    /// A `resource` backend (an object of another API group); we cannot proxy to it.
    Resource {
        namespace: String,
        kind: String,
        name: String,
    },
}

/// `service.port` of a backend: a Service port number or its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PortRef {
    Number(i32),
    Name(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Service {
                namespace,
                name,
                port: PortRef::Number(n),
            } => write!(f, "{namespace}/{name}:{n}"),
            Target::Service {
                namespace,
                name,
                port: PortRef::Name(p),
            } => write!(f, "{namespace}/{name}:{p}"),
            Target::Resource {
                namespace,
                kind,
                name,
            } => write!(f, "{kind} {namespace}/{name}"),
        }
    }
}

/// A backend with the addresses it resolved to when the snapshot was built.
#[derive(Debug)]
pub struct Upstream {
    target: Target,
    endpoints: Vec<SocketAddr>,
    /// Round-robin position; shared by every rule that names the same backend.
    next: AtomicUsize,
}

impl Upstream {
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Ready endpoints (pod IP + target port), sorted.
    pub fn endpoints(&self) -> &[SocketAddr] {
        &self.endpoints
    }

    /// The next endpoint in round-robin order; None when none is ready (the caller answers 503).
    pub fn pick(&self) -> Option<SocketAddr> {
        if self.endpoints.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.endpoints.len();
        self.endpoints.get(i).copied()
    }
}

impl Routes {
    /// Builds the table from cached objects. Ingresses of other controllers are ignored;
    /// conflicts (same host and path, same TLS host) go to the oldest Ingress, as in
    /// ingress-nginx. Never fails: a broken backend becomes a 503, a broken Secret the
    /// default certificate.
    pub fn build(
        classes: &[Arc<IngressClass>],
        ingresses: &[Arc<Ingress>],
        services: &[Arc<Service>],
        slices: &[Arc<EndpointSlice>],
        secrets: &[Arc<Secret>],
    ) -> Routes {
        let classes = OurClasses::new(classes);
        let mut ours: Vec<&Ingress> = ingresses
            .iter()
            .map(|i| i.as_ref())
            .filter(|i| classes.serves(i))
            .collect();
        ours.sort_by(|a, b| age_key(a).cmp(&age_key(b)));

        let mut resolver = Resolver::new(services, slices);
        let mut routes = Routes::default();
        let mut secret_cache: HashMap<(String, String), Option<Arc<CertifiedKey>>> = HashMap::new();
        let secrets: HashMap<(&str, &str), &Secret> = secrets
            .iter()
            .filter_map(|s| {
                Some((
                    (
                        s.metadata.namespace.as_deref()?,
                        s.metadata.name.as_deref()?,
                    ),
                    s.as_ref(),
                ))
            })
            .collect();

        for ing in &ours {
            let ns = ing.metadata.namespace.clone().unwrap_or_default();
            let name = ing.metadata.name.clone().unwrap_or_default();
            routes.served.push(Served {
                namespace: ns.clone(),
                name: name.clone(),
                status: ing
                    .status
                    .as_ref()
                    .and_then(|s| s.load_balancer.as_ref())
                    .and_then(|lb| lb.ingress.clone())
                    .unwrap_or_default(),
            });
            let Some(spec) = ing.spec.as_ref() else {
                continue;
            };
            let default = spec
                .default_backend
                .as_ref()
                .and_then(|b| resolver.resolve(&ns, b));
            let rules = spec.rules.as_deref().unwrap_or_default();
            let mut hosts = Vec::new();
            for rule in rules {
                let host = rule
                    .host
                    .as_deref()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let group = routes.group_mut(&host);
                if group.default.is_none() {
                    group.default.clone_from(&default);
                }
                if !host.is_empty() {
                    hosts.push(host);
                }
                for p in rule.http.iter().flat_map(|h| &h.paths) {
                    let Some(upstream) = resolver.resolve(&ns, &p.backend) else {
                        continue;
                    };
                    let raw = p.path.as_deref().unwrap_or_default();
                    let exact = p.path_type == "Exact";
                    group.paths.push(PathRule {
                        exact,
                        path: if exact {
                            raw.to_string()
                        } else {
                            normalize_prefix(raw)
                        },
                        upstream,
                    });
                }
            }

            for t in spec.tls.iter().flatten() {
                let Some(secret_name) = t.secret_name.as_deref() else {
                    continue;
                };
                let key = (ns.clone(), secret_name.to_string());
                let cert = secret_cache
                    .entry(key)
                    .or_insert_with(|| {
                        let secret = secrets.get(&(ns.as_str(), secret_name)).copied();
                        match tls::certified_key(secret) {
                            Ok(c) => Some(c),
                            Err(e) => {
                                tracing::warn!(ns = %ns, secret = secret_name, ingress = %name,
                                    error = %e, "TLS secret unusable; serving the default certificate");
                                None
                            }
                        }
                    })
                    .clone();
                let Some(cert) = cert else { continue };
                // No hosts: the certificate covers the Ingress's own rule hosts.
                let tls_hosts: Vec<String> = match t.hosts.as_deref() {
                    Some(h) if !h.is_empty() => h.iter().map(|h| h.to_ascii_lowercase()).collect(),
                    _ => hosts.clone(),
                };
                for h in tls_hosts {
                    routes.certs.insert(&h, cert.clone());
                }
            }
        }

        // The catch-all default: an Ingress with only a default backend first (ingress-nginx's
        // catch-all), else the oldest Ingress that has one at all.
        if routes.any.default.is_none() {
            let no_rules = ours.iter().filter(|i| {
                i.spec
                    .as_ref()
                    .is_none_or(|s| s.rules.as_deref().unwrap_or_default().is_empty())
            });
            let with_rules = ours.iter().filter(|i| {
                i.spec
                    .as_ref()
                    .is_some_and(|s| !s.rules.as_deref().unwrap_or_default().is_empty())
            });
            for ing in no_rules.chain(with_rules) {
                let ns = ing.metadata.namespace.clone().unwrap_or_default();
                if let Some(b) = ing.spec.as_ref().and_then(|s| s.default_backend.as_ref())
                    && let Some(up) = resolver.resolve(&ns, b)
                {
                    routes.any.default = Some(up);
                    break;
                }
            }
        }

        for group in routes
            .exact
            .values_mut()
            .chain(routes.wildcard.values_mut())
            .chain(std::iter::once(&mut routes.any))
        {
            // Stable: on equal keys the older Ingress's rule stays first.
            group
                .paths
                .sort_by_key(|r| (std::cmp::Reverse(r.path.len()), !r.exact));
        }
        routes
    }

    fn group_mut(&mut self, host: &str) -> &mut HostRoutes {
        if host.is_empty() {
            &mut self.any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            self.wildcard.entry(suffix.to_string()).or_default()
        } else {
            self.exact.entry(host.to_string()).or_default()
        }
    }

    /// The backend for a request. `host` is the Host header or `:authority` as sent (a port
    /// and case are ignored), `path` the request path without the query. None: no rule and
    /// no default backend matches (404).
    ///
    /// The most specific host wins first (exact, then `*.` wildcard, then rules without a
    /// host); within it the longest matching path, then that host's default backend, then
    /// the cluster-wide default. A known host never falls through to another host's paths,
    /// as in ingress-nginx where each host is its own server block.
    pub fn route(&self, host: &str, path: &str) -> Option<&Arc<Upstream>> {
        let host = normalize_host(host);
        let group = self
            .exact
            .get(host.as_str())
            .or_else(|| {
                let (_, suffix) = host.split_once('.')?;
                self.wildcard.get(suffix)
            })
            .unwrap_or(&self.any);
        group
            .paths
            .iter()
            .find(|r| path_matches(r, path))
            .map(|r| &r.upstream)
            .or(group.default.as_ref())
            .or(self.any.default.as_ref())
    }

    /// The certificate for a TLS server name (SNI), if an Ingress names one for it.
    pub fn certificate(&self, server_name: &str) -> Option<Arc<CertifiedKey>> {
        self.certs.lookup(&normalize_host(server_name))
    }

    /// The Ingresses this controller serves (ns, name), for status updates.
    pub fn served(&self) -> Vec<(String, String)> {
        self.served
            .iter()
            .map(|s| (s.namespace.clone(), s.name.clone()))
            .collect()
    }

    /// Served Ingresses whose `status.loadBalancer.ingress` differs from `want`.
    pub(super) fn stale_status<'a>(
        &'a self,
        want: &'a [IngressLoadBalancerIngress],
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.served
            .iter()
            .filter(move |s| s.status != want)
            .map(|s| (s.namespace.as_str(), s.name.as_str()))
    }
}

fn age_key(i: &Ingress) -> (Option<&Time>, &str, &str) {
    (
        i.metadata.creation_timestamp.as_ref(),
        i.metadata.namespace.as_deref().unwrap_or_default(),
        i.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// Lowercase, without a port or a trailing dot. `[v6]:port` keeps the address.
pub(crate) fn normalize_host(raw: &str) -> String {
    let raw = raw.trim();
    let host = if let Some(rest) = raw.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        raw.split(':').next().unwrap_or_default()
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// A Prefix path as compared: trailing slashes dropped (`/api/` is `/api`), `/` for none.
fn normalize_prefix(raw: &str) -> String {
    let trimmed = raw.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        // ImplementationSpecific allows paths without a leading slash.
        format!("/{trimmed}")
    }
}

fn path_matches(rule: &PathRule, path: &str) -> bool {
    if rule.exact {
        return path == rule.path;
    }
    // Element-wise: `/api` covers `/api`, `/api/` and `/api/x`, not `/apix`.
    rule.path == "/"
        || path
            .strip_prefix(rule.path.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Which IngressClasses are ours, and whether one is the default.
struct OurClasses<'a> {
    names: Vec<&'a str>,
    default: bool,
}

impl<'a> OurClasses<'a> {
    fn new(classes: &'a [Arc<IngressClass>]) -> Self {
        let ours: Vec<&IngressClass> = classes
            .iter()
            .map(|c| c.as_ref())
            .filter(|c| c.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(CONTROLLER))
            .collect();
        OurClasses {
            names: ours
                .iter()
                .filter_map(|c| c.metadata.name.as_deref())
                .collect(),
            default: ours.iter().any(|c| {
                c.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                    .is_some_and(|v| v == "true")
            }),
        }
    }

    fn serves(&self, ing: &Ingress) -> bool {
        if let Some(class) = ing
            .spec
            .as_ref()
            .and_then(|s| s.ingress_class_name.as_deref())
        {
            return self.names.contains(&class);
        }
        match ing
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(LEGACY_CLASS_ANNOTATION))
        {
            Some(class) => class == CLASS_NAME || self.names.contains(&class.as_str()),
            None => self.default,
        }
    }
}

/// Turns Ingress backends into upstreams, one shared upstream per distinct backend.
struct Resolver<'a> {
    services: HashMap<(&'a str, &'a str), &'a Service>,
    /// (namespace, service name) -> its EndpointSlices.
    slices: HashMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>,
    done: HashMap<Target, Arc<Upstream>>,
}

impl<'a> Resolver<'a> {
    fn new(services: &'a [Arc<Service>], slices: &'a [Arc<EndpointSlice>]) -> Self {
        let services = services
            .iter()
            .filter_map(|s| {
                Some((
                    (
                        s.metadata.namespace.as_deref()?,
                        s.metadata.name.as_deref()?,
                    ),
                    s.as_ref(),
                ))
            })
            .collect();
        let mut by_service: HashMap<(&str, &str), Vec<&EndpointSlice>> = HashMap::new();
        for s in slices {
            let (Some(ns), Some(svc)) = (
                s.metadata.namespace.as_deref(),
                s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL)),
            ) else {
                continue;
            };
            by_service.entry((ns, svc.as_str())).or_default().push(s);
        }
        Resolver {
            services,
            slices: by_service,
            done: HashMap::new(),
        }
    }

    /// None for a backend that names nothing (neither service nor resource): the API
    /// server rejects those, so such a rule is skipped.
    fn resolve(&mut self, ns: &str, backend: &IngressBackend) -> Option<Arc<Upstream>> {
        let target = if let Some(svc) = &backend.service {
            let port = svc.port.as_ref()?;
            let port = match (&port.name, port.number) {
                (Some(name), _) if !name.is_empty() => PortRef::Name(name.clone()),
                (_, Some(n)) => PortRef::Number(n),
                _ => return None,
            };
            Target::Service {
                namespace: ns.to_string(),
                name: svc.name.clone(),
                port,
            }
        } else if let Some(r) = &backend.resource {
            Target::Resource {
                namespace: ns.to_string(),
                kind: r.kind.clone(),
                name: r.name.clone(),
            }
        } else {
            return None;
        };
        if let Some(up) = self.done.get(&target) {
            return Some(up.clone());
        }
        let endpoints = match &target {
            Target::Service {
                namespace,
                name,
                port,
            } => self.endpoints(namespace, name, port),
            Target::Resource { .. } => Vec::new(),
        };
        let up = Arc::new(Upstream {
            target: target.clone(),
            endpoints,
            next: AtomicUsize::new(0),
        });
        self.done.insert(target, up.clone());
        Some(up)
    }

    /// Ready endpoints of the Service port, each with the slice's port for it (the target
    /// port, which may differ per slice when it is a named container port).
    fn endpoints(&self, ns: &str, name: &str, port: &PortRef) -> Vec<SocketAddr> {
        let Some(svc) = self.services.get(&(ns, name)) else {
            return Vec::new();
        };
        let ports = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_deref())
            .unwrap_or_default();
        let Some(svc_port) = ports.iter().find(|p| match port {
            PortRef::Number(n) => p.port == *n,
            PortRef::Name(n) => p.name.as_deref() == Some(n.as_str()),
        }) else {
            return Vec::new();
        };
        let port_name = svc_port.name.as_deref().unwrap_or_default();
        let mut out = BTreeSet::new();
        for slice in self.slices.get(&(ns, name)).into_iter().flatten() {
            if slice.address_type != "IPv4" && slice.address_type != "IPv6" {
                continue;
            }
            let Some(target_port) = slice
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref().unwrap_or_default() == port_name)
                .and_then(|p| p.port)
                .and_then(|p| u16::try_from(p).ok())
            else {
                continue;
            };
            for ep in &slice.endpoints {
                // A nil `ready` means ready (discovery.k8s.io/v1 API docs).
                let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                if !ready {
                    continue;
                }
                for addr in &ep.addresses {
                    if let Ok(ip) = addr.parse::<IpAddr>() {
                        out.insert(SocketAddr::new(ip, target_port));
                    }
                }
            }
        }
        out.into_iter().collect()
    }
}
