//! A container's environment, built the way upstream kubelet's `makeEnvironmentVariables`
//! (pkg/kubelet/kubelet_pods.go) builds it, and `$(VAR)` expansion as upstream's
//! `third_party/forked/golang/expansion` does it (for `env` values, `command`, `args` and
//! `subPathExpr`).
//!
//! Order of the result (upstream leaves it to Go map iteration; this one is stable):
//! `envFrom` variables in source order (keys sorted within a source), then `env` entries in
//! declaration order (an `env` entry that redefines an earlier name keeps that name's place
//! and takes the new value), then the service link variables no one defined, sorted.
//!
//! # Layout
//! - `env.rs`: [`EnvContext`], [`resolve`], [`expand`], [`EnvError`], service link variables.
//! - `env/fieldpath.rs`: downward API values (`fieldRef`, `resourceFieldRef`), shared with
//!   the downwardAPI and projected volumes.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVarSource, Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::ListParams;

pub mod fieldpath;
#[cfg(test)]
pub(crate) mod tests;

pub use fieldpath::FieldPathError;

/// What [`resolve`] needs to know beyond the pod: the runtime facts upstream reads from the
/// sandbox and the node.
pub struct EnvContext<'a> {
    /// The pod the container belongs to.
    pub pod: &'a Pod,
    /// The sandbox's IPs (`status.podIP` / `status.podIPs`), any order: the node's family
    /// comes first in what the container sees.
    pub pod_ips: &'a [String],
    /// The node's IP (`status.hostIP` / `status.hostIPs`).
    pub host_ip: &'a str,
    /// The node's name (`spec.nodeName` when the pod does not carry one yet).
    pub node_name: &'a str,
    /// The node's allocatable resources: a `resourceFieldRef` on a limit the container does
    /// not set reads this instead (upstream's rule). `None`: such a limit reads as 0.
    pub allocatable: Option<&'a BTreeMap<String, Quantity>>,
}

/// Why an environment could not be built. The Display text is upstream's message: the pod
/// shows it as the message of its `CreateContainerConfigError` waiting reason.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("failed to list services when setting up env vars")]
    ListServices(#[source] kube::Error),
    /// Upstream's config map manager names the resource in the singular.
    #[error("configmap \"{name}\" not found")]
    ConfigMapNotFound { name: String },
    #[error("secret \"{name}\" not found")]
    SecretNotFound { name: String },
    #[error("couldn't get configMap {namespace}/{name}: {}", api_text(error))]
    GetConfigMap {
        namespace: String,
        name: String,
        error: kube::Error,
    },
    #[error("couldn't get secret {namespace}/{name}: {}", api_text(error))]
    GetSecret {
        namespace: String,
        name: String,
        error: kube::Error,
    },
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKeyNotFound {
        key: String,
        namespace: String,
        name: String,
    },
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKeyNotFound {
        key: String,
        namespace: String,
        name: String,
    },
    /// A `fieldRef` or `resourceFieldRef` that cannot be read.
    #[error(transparent)]
    FieldRef(#[from] FieldPathError),
}

/// What the API said (the Status message), without kube-rs's wrapping.
pub(crate) fn api_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// The environment of `container` (a regular, init or ephemeral container of `ctx.pod`),
/// with ConfigMaps, Secrets and Services read from the API now (no cache: called once per
/// container start). Fails on the first reference that cannot be satisfied, as upstream.
pub async fn resolve(
    client: &kube::Client,
    ctx: &EnvContext<'_>,
    container: &Container,
) -> Result<Vec<(String, String)>, EnvError> {
    let pod = ctx.pod;
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let services = list_link_services(client, namespace, links).await?;
    let service_env: HashMap<String, String> = service_link_vars(&services).into_iter().collect();

    let mut sources = Sources {
        client,
        namespace,
        config_maps: HashMap::new(),
        secrets: HashMap::new(),
    };
    let mut env = OrderedEnv::default();

    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        let mut pairs: Vec<(String, String)> = Vec::new();
        let source = if let Some(r) = &from.config_map_ref {
            let optional = r.optional == Some(true);
            let Some(cm) = sources.config_map(&r.name, optional).await? else {
                continue;
            };
            pairs.extend(
                cm.data
                    .iter()
                    .flatten()
                    .map(|(k, v)| (format!("{prefix}{k}"), v.clone())),
            );
            format!("configMap {namespace}/{}", r.name)
        } else if let Some(r) = &from.secret_ref {
            let optional = r.optional == Some(true);
            let Some(secret) = sources.secret(&r.name, optional).await? else {
                continue;
            };
            pairs.extend(secret.data.iter().flatten().map(|(k, v)| {
                (
                    format!("{prefix}{k}"),
                    String::from_utf8_lossy(&v.0).into_owned(),
                )
            }));
            format!("secret {namespace}/{}", r.name)
        } else {
            continue;
        };
        let mut invalid = Vec::new();
        for (k, v) in pairs {
            if is_env_var_name(&k) {
                env.set(k, v);
            } else {
                invalid.push(k);
            }
        }
        if !invalid.is_empty() {
            // Upstream records this as an InvalidEnvironmentVariableNames warning event.
            tracing::warn!(
                pod = pod.metadata.name.as_deref().unwrap_or(""),
                container = %container.name,
                keys = %invalid.join(", "),
                "keys from the EnvFrom {source} were skipped since they are considered invalid environment variable names"
            );
        }
    }

    for var in container.env.iter().flatten() {
        let literal = var.value.as_deref().unwrap_or("");
        let value = if !literal.is_empty() {
            expand_mapped(literal, |name| {
                env.get(name)
                    .or_else(|| service_env.get(name).map(String::as_str))
                    .map_or_else(|| format!("$({name})"), str::to_string)
            })
        } else if let Some(from) = &var.value_from {
            match value_from(&mut sources, ctx, container, from).await? {
                Some(v) => v,
                None => continue,
            }
        } else {
            String::new()
        };
        env.set(var.name.clone(), value);
    }

    let mut rest: Vec<(String, String)> = service_env
        .into_iter()
        .filter(|(k, _)| env.get(k).is_none())
        .collect();
    rest.sort();
    let mut out = env.vars;
    out.extend(rest);
    Ok(out)
}

/// `$(VAR)` expansion as upstream: `$(NAME)` becomes NAME's value (the last definition in
/// `env` wins), an unknown `$(NAME)` stays as written, `$$` is a literal `$` (so `$$(X)`
/// reads `$(X)`), and an unclosed `$(` or any other `$` is copied.
pub fn expand(input: &str, env: &[(String, String)]) -> String {
    expand_mapped(input, |name| {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map_or_else(|| format!("$({name})"), |(_, v)| v.clone())
    })
}

/// Upstream's `expansion.Expand` with a mapping function for the names it finds.
pub(crate) fn expand_mapped(input: &str, mut mapping: impl FnMut(&str) -> String) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] != b'$' || cursor + 1 >= bytes.len() {
            cursor += 1;
            continue;
        }
        out.push_str(&input[checkpoint..cursor]);
        match bytes[cursor + 1] {
            b'$' => {
                out.push('$');
                cursor += 2;
            }
            b'(' => match input[cursor + 2..].find(')') {
                Some(len) => {
                    out.push_str(&mapping(&input[cursor + 2..cursor + 2 + len]));
                    cursor += 2 + len + 1;
                }
                None => {
                    out.push_str("$(");
                    cursor += 2;
                }
            },
            // Upstream copies `$` and the next byte; leaving that character to the normal
            // copy gives the same text without splitting a multi-byte character.
            _ => {
                out.push('$');
                cursor += 1;
            }
        }
        checkpoint = cursor;
    }
    out.push_str(&input[checkpoint..]);
    out
}

/// Environment variable names as upstream validates them since relaxed validation: any
/// printable ASCII except `=`, not empty.
fn is_env_var_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'=')
}

/// Variables in first-definition order; redefining a name replaces its value in place.
#[derive(Default)]
struct OrderedEnv {
    vars: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl OrderedEnv {
    fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&i) => self.vars[i].1 = value,
            None => {
                self.index.insert(name.clone(), self.vars.len());
                self.vars.push((name, value));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&i| self.vars[i].1.as_str())
    }
}

/// ConfigMaps and Secrets read so far for this container (each read once, as upstream).
struct Sources<'a> {
    client: &'a kube::Client,
    namespace: &'a str,
    config_maps: HashMap<String, ConfigMap>,
    secrets: HashMap<String, Secret>,
}

impl Sources<'_> {
    /// The ConfigMap, or `None` when it does not exist and the reference is optional.
    async fn config_map(
        &mut self,
        name: &str,
        optional: bool,
    ) -> Result<Option<&ConfigMap>, EnvError> {
        if !self.config_maps.contains_key(name) {
            let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), self.namespace);
            match crate::api::retry(|| api.get_opt(name)).await {
                Ok(Some(cm)) => {
                    self.config_maps.insert(name.to_string(), cm);
                }
                Ok(None) if optional => return Ok(None),
                Ok(None) => {
                    return Err(EnvError::ConfigMapNotFound {
                        name: name.to_string(),
                    });
                }
                Err(error) => {
                    return Err(EnvError::GetConfigMap {
                        namespace: self.namespace.to_string(),
                        name: name.to_string(),
                        error,
                    });
                }
            }
        }
        Ok(self.config_maps.get(name))
    }

    /// The Secret, or `None` when it does not exist and the reference is optional.
    async fn secret(&mut self, name: &str, optional: bool) -> Result<Option<&Secret>, EnvError> {
        if !self.secrets.contains_key(name) {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), self.namespace);
            match crate::api::retry(|| api.get_opt(name)).await {
                Ok(Some(s)) => {
                    self.secrets.insert(name.to_string(), s);
                }
                Ok(None) if optional => return Ok(None),
                Ok(None) => {
                    return Err(EnvError::SecretNotFound {
                        name: name.to_string(),
                    });
                }
                Err(error) => {
                    return Err(EnvError::GetSecret {
                        namespace: self.namespace.to_string(),
                        name: name.to_string(),
                        error,
                    });
                }
            }
        }
        Ok(self.secrets.get(name))
    }
}

/// One `valueFrom`; `None` when an optional source or key is missing (the variable is then
/// left out, as upstream).
async fn value_from(
    sources: &mut Sources<'_>,
    ctx: &EnvContext<'_>,
    container: &Container,
    from: &EnvVarSource,
) -> Result<Option<String>, EnvError> {
    if let Some(f) = &from.field_ref {
        let api_version = f.api_version.as_deref().unwrap_or("v1");
        return Ok(Some(pod_field_runtime_value(
            ctx,
            api_version,
            &f.field_path,
        )?));
    }
    if let Some(r) = &from.resource_field_ref {
        return Ok(Some(fieldpath::container_resource_value(
            r,
            ctx.pod,
            Some(container),
            ctx.allocatable,
        )?));
    }
    let namespace = sources.namespace.to_string();
    if let Some(r) = &from.config_map_key_ref {
        let optional = r.optional == Some(true);
        let Some(cm) = sources.config_map(&r.name, optional).await? else {
            return Ok(None);
        };
        return match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
            Some(v) => Ok(Some(v.clone())),
            None if optional => Ok(None),
            None => Err(EnvError::ConfigMapKeyNotFound {
                key: r.key.clone(),
                namespace,
                name: r.name.clone(),
            }),
        };
    }
    if let Some(r) = &from.secret_key_ref {
        let optional = r.optional == Some(true);
        let Some(secret) = sources.secret(&r.name, optional).await? else {
            return Ok(None);
        };
        return match secret.data.as_ref().and_then(|d| d.get(&r.key)) {
            Some(v) => Ok(Some(String::from_utf8_lossy(&v.0).into_owned())),
            None if optional => Ok(None),
            None => Err(EnvError::SecretKeyNotFound {
                key: r.key.clone(),
                namespace,
                name: r.name.clone(),
            }),
        };
    }
    Ok(Some(String::new()))
}

/// Upstream's `podFieldSelectorRuntimeValue`: the fields only the node knows, then the
/// pod's own metadata.
fn pod_field_runtime_value(
    ctx: &EnvContext<'_>,
    api_version: &str,
    field_path: &str,
) -> Result<String, FieldPathError> {
    let path = fieldpath::convert_field_label(api_version, field_path)?;
    let spec = ctx.pod.spec.as_ref();
    let ips = sort_pod_ips(ctx.pod_ips, ctx.host_ip);
    Ok(match path.as_str() {
        "spec.nodeName" => spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| ctx.node_name.to_string()),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => ctx.host_ip.to_string(),
        "status.podIP" => ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => ips.join(","),
        _ => fieldpath::extract_field_path(ctx.pod, &path)?,
    })
}

/// The pod's IPs with the node's address family first (upstream's `sortPodIPs`).
fn sort_pod_ips(ips: &[String], host_ip: &str) -> Vec<String> {
    let host_v6 = host_ip.contains(':');
    let mut out: Vec<String> = ips.to_vec();
    out.sort_by_key(|ip| ip.contains(':') != host_v6);
    out
}

/// The Services whose link variables a pod in `namespace` sees: the `kubernetes` Service of
/// `default` always (in-cluster clients read `KUBERNETES_SERVICE_HOST`), and every Service
/// of the pod's namespace when service links are on; one of the pod's namespace wins over
/// the master service of the same name, as upstream. Headless and ExternalName Services
/// (no cluster IP) are left out.
async fn list_link_services(
    client: &kube::Client,
    namespace: &str,
    links: bool,
) -> Result<Vec<Service>, EnvError> {
    let mut by_name: BTreeMap<String, Service> = BTreeMap::new();
    let default: Api<Service> = Api::namespaced(client.clone(), "default");
    if let Some(master) = crate::api::retry(|| default.get_opt("kubernetes"))
        .await
        .map_err(EnvError::ListServices)?
    {
        by_name.insert("kubernetes".to_string(), master);
    }
    if links {
        let api: Api<Service> = Api::namespaced(client.clone(), namespace);
        let params = ListParams::default();
        let list = crate::api::retry(|| api.list(&params))
            .await
            .map_err(EnvError::ListServices)?;
        for s in list {
            if let Some(name) = s.metadata.name.clone() {
                by_name.insert(name, s);
            }
        }
    }
    Ok(by_name.into_values().filter(service_ip_set).collect())
}

/// `IsServiceIPSet`: a cluster IP that is neither empty nor `None`.
fn service_ip_set(s: &Service) -> bool {
    s.spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .is_some_and(|ip| !ip.is_empty() && ip != "None")
}

/// Upstream's `envvars.FromServices`: for a Service `foo-bar` with cluster IP 10.0.0.5 and
/// port 80/TCP named `http`: `FOO_BAR_SERVICE_HOST`, `FOO_BAR_SERVICE_PORT`,
/// `FOO_BAR_SERVICE_PORT_HTTP`, and the Docker link variables `FOO_BAR_PORT`,
/// `FOO_BAR_PORT_80_TCP`, `_PROTO`, `_PORT`, `_ADDR`.
pub fn service_link_vars(services: &[Service]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for svc in services.iter().filter(|s| service_ip_set(s)) {
        let Some(spec) = svc.spec.as_ref() else {
            continue;
        };
        let ip = spec.cluster_ip.as_deref().unwrap_or("");
        let ports = spec.ports.as_deref().unwrap_or(&[]);
        let Some(first) = ports.first() else {
            continue;
        };
        let prefix = env_name(svc.metadata.name.as_deref().unwrap_or(""));
        out.push((format!("{prefix}_SERVICE_HOST"), ip.to_string()));
        out.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        for p in ports {
            if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
                out.push((
                    format!("{prefix}_SERVICE_PORT_{}", env_name(name)),
                    p.port.to_string(),
                ));
            }
        }
        for (i, p) in ports.iter().enumerate() {
            let protocol = p
                .protocol
                .as_deref()
                .filter(|p| !p.is_empty())
                .unwrap_or("TCP");
            let lower = protocol.to_lowercase();
            let host_port = if ip.contains(':') {
                format!("[{ip}]:{}", p.port)
            } else {
                format!("{ip}:{}", p.port)
            };
            let url = format!("{lower}://{host_port}");
            if i == 0 {
                out.push((format!("{prefix}_PORT"), url.clone()));
            }
            let port_prefix = format!("{prefix}_PORT_{}_{}", p.port, protocol.to_uppercase());
            out.push((format!("{port_prefix}_PROTO"), lower));
            out.push((format!("{port_prefix}_PORT"), p.port.to_string()));
            out.push((format!("{port_prefix}_ADDR"), ip.to_string()));
            out.push((port_prefix, url));
        }
    }
    out
}

/// `makeEnvVariableName`: upper case, `-` → `_`.
fn env_name(s: &str) -> String {
    s.replace('-', "_").to_uppercase()
}
