//! The volumes whose files are projected from API objects: configMap, secret, downwardAPI
//! and projected (configMap, secret, downwardAPI and serviceAccountToken sources), with
//! upstream's payload rules (`MakePayload` of each plugin). Files are written by the
//! atomic writer; [`VolumeManager::setup`] calls these at every pod sync, which is how
//! changes of the sources reach running containers.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, ServiceAccount,
    ServiceAccountTokenProjection, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::PostParams;

use super::atomic_writer::{FileProjection, Payload};
use super::{SetUpError, VolumeManager};
use crate::env::fieldpath;

/// Upstream's default file mode for these volumes (0644).
pub(crate) const DEFAULT_MODE: u32 = 0o644;

/// The permission bits of an API mode field, or `default`.
pub(crate) fn file_mode(mode: Option<i32>, default: u32) -> u32 {
    mode.and_then(|m| u32::try_from(m).ok())
        .map_or(default, |m| m & 0o7777)
}

/// The ConfigMap, `None` when it is missing and `optional`.
pub(crate) async fn get_config_map(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    optional: bool,
) -> Result<Option<ConfigMap>, SetUpError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    match crate::api::retry(|| api.get_opt(name)).await {
        Ok(Some(cm)) => Ok(Some(cm)),
        Ok(None) if optional => Ok(None),
        Ok(None) => Err(SetUpError::ConfigMapNotFound(name.to_string())),
        Err(e) => Err(SetUpError::Api(e)),
    }
}

/// The Secret, `None` when it is missing and `optional`.
pub(crate) async fn get_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    optional: bool,
) -> Result<Option<Secret>, SetUpError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match crate::api::retry(|| api.get_opt(name)).await {
        Ok(Some(s)) => Ok(Some(s)),
        Ok(None) if optional => Ok(None),
        Ok(None) => Err(SetUpError::SecretNotFound(name.to_string())),
        Err(e) => Err(SetUpError::Api(e)),
    }
}

/// Upstream's configMap `MakePayload`: every key (string and binary data) as a file, or only
/// `items` (key → path, own mode). A missing item key is an error unless `optional`.
pub(crate) fn config_map_payload(
    cm: Option<&ConfigMap>,
    items: Option<&[KeyToPath]>,
    default_mode: u32,
    optional: bool,
) -> Result<Payload, SetUpError> {
    let mut data: BTreeMap<&str, &[u8]> = BTreeMap::new();
    if let Some(cm) = cm {
        for (k, v) in cm.data.iter().flatten() {
            data.insert(k, v.as_bytes());
        }
        for (k, v) in cm.binary_data.iter().flatten() {
            data.insert(k, &v.0);
        }
    }
    key_payload(&data, items, default_mode, optional, |key| {
        SetUpError::ConfigMapKey(key.to_string())
    })
}

/// Upstream's secret `MakePayload`: as for a ConfigMap, with the Secret's decoded data.
pub(crate) fn secret_payload(
    secret: Option<&Secret>,
    items: Option<&[KeyToPath]>,
    default_mode: u32,
    optional: bool,
) -> Result<Payload, SetUpError> {
    let data: BTreeMap<&str, &[u8]> = secret
        .into_iter()
        .flat_map(|s| s.data.iter().flatten())
        .map(|(k, v)| (k.as_str(), v.0.as_slice()))
        .collect();
    key_payload(&data, items, default_mode, optional, |key| {
        SetUpError::SecretKey(key.to_string())
    })
}

fn key_payload(
    data: &BTreeMap<&str, &[u8]>,
    items: Option<&[KeyToPath]>,
    default_mode: u32,
    optional: bool,
    missing: impl Fn(&str) -> SetUpError,
) -> Result<Payload, SetUpError> {
    let mut payload = Payload::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (k, v) in data {
                payload.insert(
                    k.to_string(),
                    FileProjection {
                        data: v.to_vec(),
                        mode: default_mode,
                    },
                );
            }
        }
        Some(items) => {
            for item in items {
                let Some(v) = data.get(item.key.as_str()) else {
                    if optional {
                        continue;
                    }
                    return Err(missing(&item.key));
                };
                payload.insert(
                    item.path.clone(),
                    FileProjection {
                        data: v.to_vec(),
                        mode: file_mode(item.mode, default_mode),
                    },
                );
            }
        }
    }
    Ok(payload)
}

/// Upstream's downwardAPI `CollectData`: one file per item with the pod field or the
/// container resource it names. Every failing item is reported (upstream aggregates).
pub(crate) fn downward_payload(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: u32,
    allocatable: Option<&BTreeMap<String, Quantity>>,
) -> Result<Payload, SetUpError> {
    let mut payload = Payload::new();
    let mut errors = Vec::new();
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            fieldpath::extract_field_path(pod, &f.field_path)
        } else if let Some(r) = &item.resource_field_ref {
            fieldpath::container_resource_value(r, pod, None, allocatable)
        } else {
            Ok(String::new())
        };
        match value {
            Ok(v) => {
                payload.insert(
                    item.path.clone(),
                    FileProjection {
                        data: v.into_bytes(),
                        mode: file_mode(item.mode, default_mode),
                    },
                );
            }
            Err(e) => errors.push(SetUpError::FieldPath(e)),
        }
    }
    SetUpError::aggregate(errors).map_or(Ok(payload), Err)
}

/// A token obtained for a projected volume, reused until 80% of its life has passed or it
/// is a day old (upstream's token manager rule).
pub(crate) struct CachedToken {
    token: String,
    obtained: Instant,
    ttl: Duration,
}

impl CachedToken {
    fn fresh(&self) -> bool {
        let age = self.obtained.elapsed();
        age < self.ttl.mul_f64(0.8) && age < Duration::from_secs(24 * 3600)
    }
}

/// What a token is cached under: pod uid, service account, audience, lifetime.
pub(crate) type TokenKey = (String, String, String, i64);

impl VolumeManager {
    /// Upstream's projected `collectData`: the sources in order, a later file of the same
    /// path replacing an earlier one; every failing source is reported.
    pub(crate) async fn projected_payload(
        &self,
        pod: &Pod,
        sources: &[VolumeProjection],
        default_mode: u32,
    ) -> Result<Payload, SetUpError> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let allocatable = self.node_allocatable();
        let mut payload = Payload::new();
        let mut errors = Vec::new();
        for source in sources {
            let part = if let Some(cm) = &source.config_map {
                let optional = cm.optional == Some(true);
                match get_config_map(&self.client, namespace, &cm.name, optional).await {
                    Ok(obj) => config_map_payload(
                        obj.as_ref(),
                        cm.items.as_deref(),
                        default_mode,
                        optional,
                    ),
                    Err(e) => Err(e),
                }
            } else if let Some(s) = &source.secret {
                let optional = s.optional == Some(true);
                match get_secret(&self.client, namespace, &s.name, optional).await {
                    Ok(obj) => {
                        secret_payload(obj.as_ref(), s.items.as_deref(), default_mode, optional)
                    }
                    Err(e) => Err(e),
                }
            } else if let Some(d) = &source.downward_api {
                downward_payload(
                    pod,
                    d.items.as_deref().unwrap_or(&[]),
                    default_mode,
                    allocatable.as_ref(),
                )
            } else if let Some(t) = &source.service_account_token {
                self.token_payload(pod, t, default_mode).await
            } else {
                tracing::warn!(
                    pod = pod.metadata.name.as_deref().unwrap_or(""),
                    "projected volume source not supported by this node agent (clusterTrustBundle / podCertificate); it is left out"
                );
                Ok(Payload::new())
            };
            match part {
                Ok(p) => payload.extend(p),
                Err(e) => errors.push(e),
            }
        }
        SetUpError::aggregate(errors).map_or(Ok(payload), Err)
    }

    /// The token file of a `serviceAccountToken` source, through the TokenRequest API
    /// (`serviceaccounts/<name>/token`, bound to the pod). An API server without that
    /// subresource (404/405) gets no file.
    async fn token_payload(
        &self,
        pod: &Pod,
        source: &ServiceAccountTokenProjection,
        default_mode: u32,
    ) -> Result<Payload, SetUpError> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".to_string());
        let audience = source.audience.clone().unwrap_or_default();
        let expiration = source.expiration_seconds.unwrap_or(3600);
        let key: TokenKey = (uid.clone(), sa.clone(), audience.clone(), expiration);
        let file = |token: String| {
            Payload::from([(
                source.path.clone(),
                FileProjection {
                    data: token.into_bytes(),
                    mode: default_mode,
                },
            )])
        };
        if let Some(cached) = self.tokens_lock().get(&key).filter(|t| t.fresh()) {
            return Ok(file(cached.token.clone()));
        }
        if self.token_api_missing.load(Ordering::Relaxed) {
            return Ok(Payload::new());
        }
        let request = TokenRequest {
            metadata: Default::default(),
            spec: TokenRequestSpec {
                audiences: if audience.is_empty() {
                    Vec::new()
                } else {
                    vec![audience.clone()]
                },
                expiration_seconds: Some(expiration),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: Some(uid),
                }),
            },
            status: None,
        };
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let started = Instant::now();
        match api
            .create_token_request(&sa, &PostParams::default(), &request)
            .await
        {
            Ok(tr) => {
                let Some(status) = tr.status else {
                    return Err(SetUpError::TokenMissing);
                };
                let left =
                    status.expiration_timestamp.0.as_second() - jiff::Timestamp::now().as_second();
                let ttl = Duration::from_secs(u64::try_from(left).unwrap_or(0));
                self.tokens_lock().insert(
                    key,
                    CachedToken {
                        token: status.token.clone(),
                        obtained: started,
                        ttl,
                    },
                );
                Ok(file(status.token))
            }
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 405 => {
                if !self.token_api_missing.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        code = s.code,
                        "the API server does not serve serviceaccounts/token (TokenRequest): projected serviceAccountToken sources get no token file"
                    );
                }
                Ok(Payload::new())
            }
            Err(e) => Err(SetUpError::Token(e)),
        }
    }
}
