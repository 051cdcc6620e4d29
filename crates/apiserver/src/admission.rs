//! What runs on every write between decoding and storing: defaulting, validation,
//! namespace lifecycle checks; and after it: registering custom resources when their
//! CustomResourceDefinitions change.

use apimachinery::registry::{ALL_VERBS, Registry, ResourceType, Subresource};
use apimachinery::status::ApiError;
use serde_json::Value;
use store::{ListRequest, Store};

use crate::objects;
use crate::rest::Ctx;

/// Fills in upstream's defaults for the kind.
pub fn default_object(rt: &ResourceType, obj: &mut Value) {
    apimachinery::defaults::apply(&rt.group, &rt.kind, obj);
}

fn name_of(obj: &Value) -> &str {
    objects::meta_str(obj, "name").unwrap_or("")
}

pub fn validate_create(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let errors = apimachinery::validation::validate_create(&rt.group, &rt.kind, obj);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &rt.group,
            &rt.kind,
            name_of(obj),
            &errors,
        ))
    }
}

/// Validates an update of `old` to `new` made through the resource or its `subresource`.
pub fn validate_update(
    rt: &ResourceType,
    new: &Value,
    old: &Value,
    subresource: Option<&str>,
) -> Result<(), ApiError> {
    let errors = match (rt.group.as_str(), rt.kind.as_str(), subresource) {
        ("", "Pod", Some("ephemeralcontainers")) => {
            apimachinery::validation::validate_pod_ephemeral_containers_update(new, old)
        }
        _ => apimachinery::validation::validate_update(&rt.group, &rt.kind, new, old),
    };
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &rt.group,
            &rt.kind,
            name_of(new),
            &errors,
        ))
    }
}

/// A namespaced object may only be created in a namespace that exists and is not being
/// deleted (upstream's NamespaceLifecycle admission plugin).
pub async fn check_namespace_open(ctx: &Ctx, ns: &str) -> Result<(), ApiError> {
    let registry = ctx.state.registry();
    let Some(ns_rt) = registry.get("", "v1", "namespaces") else {
        return Ok(());
    };
    let key = ns_rt.storage_key(None, ns);
    // The watch cache answers almost always; only a namespace it has not seen yet (just
    // created, or missing) costs a store read.
    let obj: Value = match ctx.state.cache_of(ns_rt).get(&key) {
        Some(cached) => cached.value.clone(),
        None => {
            let found = ctx
                .state
                .store
                .get(&key)
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let Some(kv) = found else {
                return Err(ApiError::not_found("", "namespaces", ns));
            };
            serde_json::from_slice(&kv.value).unwrap_or_default()
        }
    };
    if objects::is_deleting(&obj) || obj["status"]["phase"] == "Terminating" {
        let name = ctx.info.name.as_deref().unwrap_or("");
        let resource = apimachinery::status::qualified_resource(&ctx.rt.group, &ctx.rt.plural);
        return Err(ApiError::forbidden(format!(
            "{resource} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated"
        )));
    }
    Ok(())
}

fn is_crd(rt: &ResourceType) -> bool {
    rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition"
}

pub fn is_service(rt: &ResourceType) -> bool {
    rt.group.is_empty() && rt.kind == "Service"
}

/// Runs after a successful write of `obj`; may return a newer version of it.
pub async fn after_write(ctx: &Ctx, obj: &mut Value) {
    if is_crd(&ctx.rt) {
        refresh_custom_resources(ctx).await;
    }
    if is_service(&ctx.rt) && !ctx.dry_run() {
        // An update that made a Service need a cluster IP or node ports (a type change)
        // gets them in a second write, since allocation talks to the store.
        let mut wanted = obj.clone();
        match crate::allocator::allocate(ctx.state.store.as_ref(), &mut wanted, Some(obj)).await {
            Ok(claimed) if wanted != *obj => {
                let key = ctx.key();
                let result = crate::rest::write::guaranteed_update(ctx, &key, |current| {
                    let mut next = current.clone();
                    next["spec"]["clusterIP"] = wanted["spec"]["clusterIP"].clone();
                    next["spec"]["clusterIPs"] = wanted["spec"]["clusterIPs"].clone();
                    next["spec"]["ports"] = wanted["spec"]["ports"].clone();
                    Ok(crate::rest::write::Mutated {
                        obj: next,
                        pinned: None,
                    })
                })
                .await;
                match result {
                    Ok(crate::rest::write::Updated::Object(v)) => *obj = v,
                    _ => claimed.release(ctx.state.store.as_ref()).await,
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "allocating service addresses after an update failed")
            }
        }
    }
}

/// Runs after an object is gone from the store. Deleting a CRD deletes its objects
/// (upstream's `customresourcecleanup` finalizer does the same, asynchronously).
pub async fn after_delete(ctx: &Ctx, obj: &Value) {
    if is_service(&ctx.rt) {
        crate::allocator::release(ctx.state.store.as_ref(), obj).await;
    }
    if !is_crd(&ctx.rt) {
        return;
    }
    // Every served version shares one storage prefix, so the first one covers them all.
    if let Some(rt) = custom_resource_types(obj).into_iter().next() {
        let prefix = rt.storage_prefix();
        if let Ok(listed) = ctx
            .state
            .store
            .list(ListRequest {
                prefix: &prefix,
                ..Default::default()
            })
            .await
        {
            for kv in listed.kvs {
                let _ = ctx.state.store.delete(&kv.key, Some(kv.mod_revision)).await;
            }
        }
    }
    refresh_custom_resources(ctx).await;
}

async fn refresh_custom_resources(ctx: &Ctx) {
    let builtin = Registry::builtin();
    match load_custom_resources(&builtin, ctx.state.store.as_ref()).await {
        Ok(custom) => ctx.state.set_registry(builtin.with_custom(custom)),
        Err(e) => tracing::error!(error = %e, "reloading custom resource definitions failed"),
    }
}

/// The served versions of every stored CustomResourceDefinition.
pub async fn load_custom_resources(
    registry: &Registry,
    store: &dyn Store,
) -> store::Result<Vec<ResourceType>> {
    let Some(crd_rt) = registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    else {
        return Ok(Vec::new());
    };
    let prefix = crd_rt.storage_prefix();
    let listed = store
        .list(ListRequest {
            prefix: &prefix,
            ..Default::default()
        })
        .await?;
    Ok(listed
        .kvs
        .iter()
        .filter_map(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
        .filter(|crd| !objects::is_deleting(crd))
        .flat_map(|crd| custom_resource_types(&crd))
        .collect())
}

/// One resource per served version of a CRD.
pub fn custom_resource_types(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let (Some(group), Some(plural), Some(kind)) = (
        spec["group"].as_str(),
        names["plural"].as_str(),
        names["kind"].as_str(),
    ) else {
        return Vec::new();
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(false))
        .filter_map(|v| {
            let version = v["name"].as_str()?.to_string();
            let mut subresources = Vec::new();
            if v["subresources"]["status"].is_object() {
                subresources.push(Subresource {
                    name: "status".into(),
                    group: group.into(),
                    version: version.clone(),
                    kind: kind.into(),
                    verbs: vec!["get".into(), "patch".into(), "update".into()],
                });
            }
            Some(ResourceType {
                group: group.into(),
                version,
                kind: kind.into(),
                list_kind: names["listKind"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| format!("{kind}List")),
                plural: plural.into(),
                singular: names["singular"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| kind.to_lowercase()),
                namespaced: spec["scope"] == "Namespaced",
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                verbs: ALL_VERBS.iter().map(|s| s.to_string()).collect(),
                subresources,
                tracks_generation: true,
                typed: None,
                printer_columns: v
                    .get("additionalPrinterColumns")
                    .filter(|c| c.is_array())
                    .cloned(),
                custom_schema: v["schema"]["openAPIV3Schema"]
                    .as_object()
                    .map(|o| Value::Object(o.clone())),
            })
        })
        .collect()
}
