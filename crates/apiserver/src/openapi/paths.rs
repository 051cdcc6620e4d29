//! `paths` of a group-version document: one path item per URL the resource is served at,
//! with upstream's operation layout (path parameters on the path item, query parameters
//! inline on each operation, `x-kubernetes-action` and `x-kubernetes-group-version-kind` on
//! every operation).
//!
//! Two readers depend on the details:
//! - kubectl's field-validation probe (cli-runtime `supportsQueryParamV3`) takes the first
//!   PATCH operation whose GVK matches (map order, so any of them) and looks for an inline
//!   `{"name": "fieldValidation", "in": "query"}`; kubectl 1.27 does not follow parameter
//!   `$ref`s at all. So every PATCH (and POST/PUT) lists it inline.
//! - `kubectl explain` looks the GVK up on the get/post/put/patch/delete operations of
//!   `<prefix>/<plural>`, `…/{name}`, `<prefix>/namespaces/{namespace}/<plural>` and
//!   `…/{name}`.

use apimachinery::registry::ResourceType;
use serde_json::{Map, Value, json};

use super::schemas::{Common, ResourceSchemas, schema_ref};

/// PATCH body types of every resource. Built-in kinds also take
/// [`STRATEGIC_MERGE_PATCH`]; custom resources do not (as upstream), so kubectl apply uses a
/// JSON merge patch for them.
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
];

const RESPONSE_TYPES: &[&str] = &["application/json", "application/yaml"];
const LIST_RESPONSE_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/json;stream=watch",
];
const WATCH_RESPONSE_TYPES: &[&str] = &["application/json", "application/json;stream=watch"];

/// `GET <prefix>/`: the group version's APIResourceList.
pub(super) fn add_api_resources(
    paths: &mut Map<String, Value>,
    group: &str,
    version: &str,
    common: &Common,
) {
    let names = Names::new(group, version, "", "");
    let get = json!({
        "tags": [names.tag],
        "description": "get available resources",
        "operationId": format!("get{}APIResources", names.gv),
        "responses": responses(&[("200", "OK")], Some(&common.api_resource_list), RESPONSE_TYPES),
    });
    paths.insert(format!("{}/", prefix(group, version)), json!({"get": get}));
}

/// Every path of one resource and its subresources.
pub(super) fn add_resource(
    paths: &mut Map<String, Value>,
    rt: &ResourceType,
    s: &ResourceSchemas,
    common: &Common,
) {
    let prefix = prefix(&rt.group, &rt.version);
    let scoped = if rt.namespaced {
        format!("{prefix}/namespaces/{{namespace}}")
    } else {
        prefix.clone()
    };
    let watch_scoped = if rt.namespaced {
        format!("{prefix}/watch/namespaces/{{namespace}}")
    } else {
        format!("{prefix}/watch")
    };
    let ns = if rt.namespaced { "Namespaced" } else { "" };
    let names = Names::new(&rt.group, &rt.version, &rt.kind, ns);
    let kind_gvk = gvk(&rt.group, &rt.version, &rt.kind);
    let op = |action: &str, id: String, desc: String| Op {
        names: &names,
        gvk: &kind_gvk,
        action: action.to_string(),
        id,
        description: desc,
    };
    let kind = &rt.kind;

    // Collection: list, create, deletecollection.
    let mut item = PathItem::new(path_params(rt.namespaced, false));
    if rt.supports("list") {
        item.add(
            "get",
            op(
                "list",
                names.id("list", ""),
                format!("list or watch objects of kind {kind}"),
            )
            .build(
                list_params(),
                None,
                responses(&[("200", "OK")], Some(&s.list), LIST_RESPONSE_TYPES),
            ),
        );
    }
    if rt.supports("create") {
        item.add(
            "post",
            op("post", names.id("create", ""), format!("create a {kind}")).build(
                write_params(false),
                Some(body(&s.kind)),
                responses(
                    &[("200", "OK"), ("201", "Created"), ("202", "Accepted")],
                    Some(&s.kind),
                    RESPONSE_TYPES,
                ),
            ),
        );
    }
    if rt.supports("deletecollection") {
        let mut params = delete_params();
        params.extend(
            list_params()
                .into_iter()
                .filter(|p| p["name"] != "watch" && p["name"] != "allowWatchBookmarks"),
        );
        item.add(
            "delete",
            op(
                "deletecollection",
                names.id("deleteCollection", ""),
                format!("delete collection of {kind}"),
            )
            .build(
                params,
                Some(body(&common.delete_options)),
                responses(&[("200", "OK")], Some(&common.status), RESPONSE_TYPES),
            ),
        );
    }
    item.insert_into(paths, format!("{scoped}/{}", rt.plural));

    // One object: read, replace, patch, delete.
    let object_path = format!("{scoped}/{}/{{name}}", rt.plural);
    let mut item = PathItem::new(path_params(rt.namespaced, true));
    if rt.supports("get") {
        item.add(
            "get",
            op(
                "get",
                names.id("read", ""),
                format!("read the specified {kind}"),
            )
            .build(
                vec![],
                None,
                responses(&[("200", "OK")], Some(&s.kind), RESPONSE_TYPES),
            ),
        );
    }
    if rt.supports("update") {
        item.add(
            "put",
            op(
                "put",
                names.id("replace", ""),
                format!("replace the specified {kind}"),
            )
            .build(
                write_params(false),
                Some(body(&s.kind)),
                responses(
                    &[("200", "OK"), ("201", "Created")],
                    Some(&s.kind),
                    RESPONSE_TYPES,
                ),
            ),
        );
    }
    if rt.supports("patch") {
        item.add(
            "patch",
            op(
                "patch",
                names.id("patch", ""),
                format!("partially update the specified {kind}"),
            )
            .build(
                write_params(true),
                Some(patch_body(common, rt.typed.is_some())),
                responses(
                    &[("200", "OK"), ("201", "Created")],
                    Some(&s.kind),
                    RESPONSE_TYPES,
                ),
            ),
        );
    }
    if rt.supports("delete") {
        item.add(
            "delete",
            op("delete", names.id("delete", ""), format!("delete a {kind}")).build(
                delete_params(),
                Some(body(&common.delete_options)),
                responses(
                    &[("200", "OK"), ("202", "Accepted")],
                    Some(&common.status),
                    RESPONSE_TYPES,
                ),
            ),
        );
    }
    item.insert_into(paths, object_path.clone());

    // Namespaced kinds are also listed and watched across all namespaces.
    if rt.namespaced && rt.supports("list") {
        let mut item = PathItem::new(vec![pretty()]);
        let names_all = Names::new(&rt.group, &rt.version, &rt.kind, "");
        let id = format!("list{}{}ForAllNamespaces", names_all.gv, rt.kind);
        item.add(
            "get",
            op("list", id, format!("list or watch objects of kind {kind}")).build(
                list_params(),
                None,
                responses(&[("200", "OK")], Some(&s.list), LIST_RESPONSE_TYPES),
            ),
        );
        item.insert_into(paths, format!("{prefix}/{}", rt.plural));
    }
    if rt.supports("watch") {
        let watch = |action: &str, id: String| {
            op(action, id, format!("watch changes to {kind} objects (deprecated: use the watch parameter of a list operation)"))
                .build(list_params(), None, responses(&[("200", "OK")], Some(&common.watch_event), WATCH_RESPONSE_TYPES))
        };
        let mut item = PathItem::new(path_params(rt.namespaced, false));
        item.add("get", watch("watchlist", names.id("watch", "List")));
        item.insert_into(paths, format!("{watch_scoped}/{}", rt.plural));
        let mut item = PathItem::new(path_params(rt.namespaced, true));
        item.add("get", watch("watch", names.id("watch", "")));
        item.insert_into(paths, format!("{watch_scoped}/{}/{{name}}", rt.plural));
        if rt.namespaced {
            let mut item = PathItem::new(vec![pretty()]);
            let names_all = Names::new(&rt.group, &rt.version, &rt.kind, "");
            let id = format!("watch{}{}ListForAllNamespaces", names_all.gv, rt.kind);
            item.add("get", watch("watchlist", id));
            item.insert_into(paths, format!("{prefix}/watch/{}", rt.plural));
        }
    }

    for (sub, body_schema) in rt.subresources.iter().zip(&s.subresources) {
        let sub_gvk = gvk(&sub.group, &sub.version, &sub.kind);
        let suffix = camel(&sub.name);
        let body_schema = body_schema.as_deref();
        let mut item = PathItem::new(path_params(rt.namespaced, true));
        if sub.name == "log" {
            // Upstream's log REST produces text, described as a plain string.
            let op = Op {
                names: &names,
                gvk: &sub_gvk,
                action: "get".into(),
                id: names.id("read", &suffix),
                description: format!("read log of the specified {kind}"),
            };
            let types = &["application/json", "application/yaml", "text/plain"];
            let mut resp = responses(&[("200", "OK")], None, types);
            for content in resp["200"]["content"]
                .as_object_mut()
                .into_iter()
                .flat_map(|c| c.values_mut())
            {
                content["schema"] = json!({"type": "string"});
            }
            item.add("get", op.build(log_params(), None, resp));
            item.insert_into(paths, format!("{object_path}/{}", sub.name));
            continue;
        }
        for verb in &sub.verbs {
            let (method, action, id_verb, desc, params, request, codes): (
                _,
                _,
                _,
                _,
                _,
                _,
                &[(&str, &str)],
            ) = match verb.as_str() {
                "get" => ("get", "get", "read", "read", vec![], None, &[("200", "OK")]),
                "update" => (
                    "put",
                    "put",
                    "replace",
                    "replace",
                    write_params(false),
                    Some(body_opt(body_schema)),
                    &[("200", "OK"), ("201", "Created")],
                ),
                "patch" => (
                    "patch",
                    "patch",
                    "patch",
                    "partially update",
                    write_params(true),
                    Some(patch_body(common, rt.typed.is_some())),
                    &[("200", "OK"), ("201", "Created")],
                ),
                "create" => (
                    "post",
                    "post",
                    "create",
                    "create",
                    write_params(false),
                    Some(body_opt(body_schema)),
                    &[("200", "OK"), ("201", "Created"), ("202", "Accepted")],
                ),
                _ => continue,
            };
            let op = Op {
                names: &names,
                gvk: &sub_gvk,
                action: action.to_string(),
                id: names.id(id_verb, &suffix),
                description: format!("{desc} {} of the specified {kind}", sub.name),
            };
            item.add(
                method,
                op.build(
                    params,
                    request,
                    responses(codes, body_schema, RESPONSE_TYPES),
                ),
            );
        }
        item.insert_into(paths, format!("{object_path}/{}", sub.name));
    }
}

/// `/api/v1` or `/apis/<group>/<version>`.
fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

/// Operation naming in upstream's style: `patchAppsV1NamespacedDeployment`, tag `apps_v1`.
struct Names {
    /// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`.
    gv: String,
    tag: String,
    /// `NamespacedDeployment` or `Node`.
    subject: String,
}

impl Names {
    fn new(group: &str, version: &str, kind: &str, scope: &str) -> Self {
        let group_name = if group.is_empty() {
            "core"
        } else {
            group.strip_suffix(".k8s.io").unwrap_or(group)
        };
        let group_camel = camel(group_name);
        let mut tag = group_camel.clone();
        if let Some(first) = tag.get(..1).map(str::to_ascii_lowercase) {
            tag.replace_range(..1, &first);
        }
        Names {
            gv: format!("{group_camel}{}", camel(version)),
            tag: format!("{tag}_{version}"),
            subject: format!("{scope}{kind}"),
        }
    }

    fn id(&self, verb: &str, suffix: &str) -> String {
        format!("{verb}{}{}{suffix}", self.gv, self.subject)
    }
}

/// `rbac.authorization` → `RbacAuthorization`, `v1beta1` → `V1beta1`.
fn camel(s: &str) -> String {
    s.split(['.', '-'])
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

struct Op<'a> {
    names: &'a Names,
    gvk: &'a Value,
    action: String,
    id: String,
    description: String,
}

impl Op<'_> {
    fn build(self, params: Vec<Value>, request_body: Option<Value>, responses: Value) -> Value {
        let mut op = Map::new();
        op.insert("tags".into(), json!([self.names.tag]));
        op.insert("description".into(), self.description.into());
        op.insert("operationId".into(), self.id.into());
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if let Some(body) = request_body {
            op.insert("requestBody".into(), body);
        }
        op.insert("responses".into(), responses);
        op.insert("x-kubernetes-action".into(), self.action.into());
        op.insert("x-kubernetes-group-version-kind".into(), self.gvk.clone());
        Value::Object(op)
    }
}

/// A path item under construction; written only if it got an operation.
struct PathItem(Map<String, Value>, bool);

impl PathItem {
    fn new(params: Vec<Value>) -> Self {
        let mut m = Map::new();
        m.insert("parameters".into(), Value::Array(params));
        PathItem(m, false)
    }

    fn add(&mut self, method: &str, op: Value) {
        self.0.insert(method.into(), op);
        self.1 = true;
    }

    fn insert_into(self, paths: &mut Map<String, Value>, path: String) {
        if self.1 {
            paths.insert(path, Value::Object(self.0));
        }
    }
}

fn body(schema: &str) -> Value {
    json!({"content": {"*/*": {"schema": schema_ref(schema)}}, "required": true})
}

fn body_opt(schema: Option<&str>) -> Value {
    let schema = schema.map_or_else(|| json!({"type": "object"}), schema_ref);
    json!({"content": {"*/*": {"schema": schema}}, "required": true})
}

/// Listed for built-in kinds only. kubectl apply (1.27+) computes a strategic patch from the
/// v3 schema when the type is listed, reading the `x-kubernetes-patch-*` extensions our
/// schemas carry (see `schemas.rs`).
const STRATEGIC_MERGE_PATCH: &str = "application/strategic-merge-patch+json";

fn patch_body(common: &Common, builtin: bool) -> Value {
    let content: Map<String, Value> = PATCH_TYPES
        .iter()
        .copied()
        .chain(builtin.then_some(STRATEGIC_MERGE_PATCH))
        .map(|t| (t.to_string(), json!({"schema": schema_ref(&common.patch)})))
        .collect();
    json!({"content": content, "required": true})
}

fn responses(codes: &[(&str, &str)], schema: Option<&str>, types: &[&str]) -> Value {
    let schema = schema.map_or_else(|| json!({"type": "object"}), schema_ref);
    let content: Map<String, Value> = types
        .iter()
        .map(|t| (t.to_string(), json!({"schema": schema})))
        .collect();
    let mut out = Map::new();
    for (code, description) in codes {
        out.insert(
            code.to_string(),
            json!({"description": description, "content": content.clone()}),
        );
    }
    out.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(out)
}

fn query(name: &str, ty: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": ty}})
}

fn pretty() -> Value {
    query("pretty", "string", "If 'true', the output is indented.")
}

/// Path-item parameters: `name` (item paths), `namespace` (namespaced kinds), `pretty`.
fn path_params(namespaced: bool, item: bool) -> Vec<Value> {
    let mut params = Vec::new();
    if item {
        params.push(json!({"name": "name", "in": "path", "required": true,
            "description": "name of the object", "schema": {"type": "string"}}));
    }
    if namespaced {
        params.push(json!({"name": "namespace", "in": "path", "required": true,
            "description": "namespace of the object", "schema": {"type": "string"}}));
    }
    params.push(pretty());
    params
}

fn write_params(patch: bool) -> Vec<Value> {
    let mut params = vec![
        query(
            "dryRun",
            "string",
            "If 'All', every stage runs but nothing is persisted.",
        ),
        query(
            "fieldManager",
            "string",
            "Name of the actor making the change, recorded in managedFields. Required for apply patches.",
        ),
        query(
            "fieldValidation",
            "string",
            "How to treat unknown or duplicate fields in the body: Ignore, Warn (the default; a warning per field) or Strict (fail the request).",
        ),
    ];
    if patch {
        params.push(query(
            "force",
            "boolean",
            "Apply patches only: take ownership of fields managed by others.",
        ));
    }
    params
}

/// `PodLogOptions` as query parameters.
fn log_params() -> Vec<Value> {
    vec![
        query(
            "container",
            "string",
            "Which container's log to read; may be left out when the pod has one container.",
        ),
        query(
            "follow",
            "boolean",
            "Keep the response open and send lines as they are logged.",
        ),
        query(
            "insecureSkipTLSVerifyBackend",
            "boolean",
            "Do not verify the serving certificate of the node agent the logs come from.",
        ),
        query(
            "limitBytes",
            "integer",
            "Stop after this many bytes of log.",
        ),
        query(
            "previous",
            "boolean",
            "Read the log of the container's previous instance.",
        ),
        query(
            "sinceSeconds",
            "integer",
            "Only lines logged in the last this many seconds.",
        ),
        query(
            "tailLines",
            "integer",
            "Only this many lines from the end of the log.",
        ),
        query(
            "timestamps",
            "boolean",
            "Prefix every line with the time it was logged.",
        ),
    ]
}

fn delete_params() -> Vec<Value> {
    vec![
        query(
            "dryRun",
            "string",
            "If 'All', every stage runs but nothing is persisted.",
        ),
        query(
            "gracePeriodSeconds",
            "integer",
            "Seconds to wait before deleting; 0 means immediately.",
        ),
        query(
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "boolean",
            "Delete an object that cannot be read from storage (unsafe).",
        ),
        query(
            "orphanDependents",
            "boolean",
            "Deprecated: use propagationPolicy.",
        ),
        query(
            "propagationPolicy",
            "string",
            "Garbage collection of dependents: Orphan, Background or Foreground.",
        ),
    ]
}

fn list_params() -> Vec<Value> {
    vec![
        query(
            "allowWatchBookmarks",
            "boolean",
            "Watch only: ask for BOOKMARK events.",
        ),
        query(
            "continue",
            "string",
            "The continue token of the previous page.",
        ),
        query(
            "fieldSelector",
            "string",
            "Restrict the objects by their fields.",
        ),
        query(
            "labelSelector",
            "string",
            "Restrict the objects by their labels.",
        ),
        query(
            "limit",
            "integer",
            "Maximum number of objects to return in one page.",
        ),
        query(
            "resourceVersion",
            "string",
            "The resource version to serve from; see resourceVersionMatch.",
        ),
        query(
            "resourceVersionMatch",
            "string",
            "How resourceVersion applies: Exact or NotOlderThan.",
        ),
        query(
            "sendInitialEvents",
            "boolean",
            "Watch only: start with synthetic ADDED events for the current state.",
        ),
        query(
            "timeoutSeconds",
            "integer",
            "Timeout for the list or watch call.",
        ),
        query("watch", "boolean", "Watch for changes instead of listing."),
    ]
}
