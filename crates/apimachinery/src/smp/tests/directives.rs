//! Each directive, list ordering (cases mirror upstream's `strategicpatch` test vectors,
//! on real fields) and upstream's error messages.

use serde_json::{Value, json};

use super::{Case, ErrorCase, deployment, pod, run, run_errors};
use crate::registry::ResourceType;
use crate::smp::apply;

/// A pod whose containers are named `names` (`"1"` → `{"name": "c1"}`), the first with an
/// image so that merged items are told apart from new ones.
fn containers(names: &[&str]) -> Value {
    let items: Vec<Value> = names
        .iter()
        .map(|n| match *n {
            "1" => json!({"name": "c1", "image": "a"}),
            n => json!({"name": format!("c{n}")}),
        })
        .collect();
    pod(json!({"containers": items}))
}

fn order(names: &[&str]) -> Value {
    names
        .iter()
        .map(|n| json!({"name": format!("c{n}")}))
        .collect()
}

fn finalizers(list: Value) -> Value {
    json!({"metadata": {"name": "c", "finalizers": list}})
}

#[test]
fn list_order() {
    let ordered = |current: &[&str], order_names: &[&str], want: &[&str]| Case {
        name: "$setElementOrder with server-only items",
        resource: "v1/pods",
        original: containers(current),
        patch: json!({"spec": {"$setElementOrder/containers": order(order_names)}}),
        want: containers(want),
    };
    run(vec![
        ordered(
            &["1", "3", "4", "2", "9"],
            &["4", "2", "3", "1"],
            &["4", "2", "3", "1", "9"],
        ),
        ordered(
            &["1", "2", "9", "3", "4"],
            &["2", "1", "4", "3"],
            &["2", "1", "9", "4", "3"],
        ),
        ordered(
            &["1", "2", "7", "9", "8", "3", "4"],
            &["2", "1", "4", "3"],
            &["2", "1", "7", "9", "8", "4", "3"],
        ),
        Case {
            name: "$setElementOrder may name items absent from the list",
            resource: "v1/pods",
            original: containers(&["1", "3"]),
            patch: json!({"spec": {
                "$setElementOrder/containers": order(&["3", "2", "1"]),
                "containers": [{"name": "c3", "image": "x"}, {"name": "c1", "image": "y"}]}}),
            want: pod(
                json!({"containers": [{"name": "c3", "image": "x"}, {"name": "c1", "image": "y"}]}),
            ),
        },
        Case {
            name: "duplicates keep their relative order (upstream's documented behaviour)",
            resource: "v1/pods",
            original: pod(json!({"containers": [
                {"name": "c1"}, {"name": "c2", "image": "dup1"}, {"name": "c3"},
                {"name": "c2", "image": "dup2"}, {"name": "c4"}]})),
            patch: json!({"spec": {"$setElementOrder/containers": order(&["2", "1", "4", "3", "2"])}}),
            want: pod(json!({"containers": [
                {"name": "c2", "image": "dup1"}, {"name": "c2", "image": "dup2"},
                {"name": "c1"}, {"name": "c4"}, {"name": "c3"}]})),
        },
        Case {
            name: "primitive list: $setElementOrder places the new item, server-only items stay near",
            resource: "v1/configmaps",
            original: finalizers(json!(["1", "4", "2"])),
            patch: json!({"metadata": {"$setElementOrder/finalizers": ["3", "1", "2"], "finalizers": ["3"]}}),
            want: finalizers(json!(["3", "1", "4", "2"])),
        },
        Case {
            name: "without $setElementOrder new items go first, patch order before server order",
            resource: "v1/pods",
            original: pod(json!({"containers": [{"name": "a"}, {"name": "b"}]})),
            patch: json!({"spec": {"containers": [{"name": "c"}, {"name": "a", "image": "x"}]}}),
            want: pod(
                json!({"containers": [{"name": "c"}, {"name": "a", "image": "x"}, {"name": "b"}]}),
            ),
        },
    ]);
}

#[test]
fn directives() {
    let cm = |labels: Value| json!({"metadata": {"name": "c", "labels": labels}});
    let two = deployment(json!([{"name": "a", "image": "x"}, {"name": "b"}]));
    run(vec![
        Case {
            name: "$patch: replace on a map replaces it whole",
            resource: "v1/configmaps",
            original: cm(json!({"a": "1", "b": "2"})),
            patch: json!({"metadata": {"labels": {"$patch": "replace", "c": "3", "d": null}}}),
            want: cm(json!({"c": "3"})),
        },
        Case {
            name: "$patch: delete on a map empties it (upstream keeps the field)",
            resource: "apps/v1/deployments",
            original: json!({"spec": {"strategy": {"type": "Recreate"}, "replicas": 1}}),
            patch: json!({"spec": {"strategy": {"$patch": "delete"}}}),
            want: json!({"spec": {"strategy": {}, "replicas": 1}}),
        },
        Case {
            name: "a directive map for a field the object lacks is dropped, as upstream",
            resource: "v1/configmaps",
            original: json!({"metadata": {"name": "c"}}),
            patch: json!({"metadata": {"labels": {"$patch": "replace", "a": "b"}}}),
            want: json!({"metadata": {"name": "c"}}),
        },
        Case {
            name: "$patch: replace as a list item makes the other items the list",
            resource: "apps/v1/deployments",
            original: two.clone(),
            patch: json!({"spec": {"template": {"spec": {"containers": [
                {"$patch": "replace"}, {"name": "only", "image": "y", "args": null}]}}}}),
            want: deployment(json!([{"name": "only", "image": "y"}])),
        },
        Case {
            name: "$patch: delete of an absent item changes nothing",
            resource: "apps/v1/deployments",
            original: two.clone(),
            patch: json!({"spec": {"template": {"spec": {"containers": [{"$patch": "delete", "name": "zz"}]}}}}),
            want: two.clone(),
        },
        Case {
            name: "new list items lose nulls and directives",
            resource: "apps/v1/deployments",
            original: two.clone(),
            patch: json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": null,
                "$setElementOrder/env": [{"name": "E"}], "env": [{"name": "E"}, {"name": "F", "$patch": "delete"}]}]}}}}),
            want: deployment(
                json!([{"name": "c", "env": [{"name": "E"}]}, {"name": "a", "image": "x"}, {"name": "b"}]),
            ),
        },
        Case {
            name: "$retainKeys clears unlisted keys of a map and merges the rest",
            resource: "apps/v1/deployments",
            original: json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
            patch: json!({"spec": {"strategy": {"$retainKeys": ["type", "rollingUpdate"],
                "rollingUpdate": {"maxUnavailable": 0}}}}),
            want: json!({"spec": {"strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}}),
        },
        Case {
            name: "$deleteFromPrimitiveList works on lists without the merge strategy, never creates",
            resource: "v1/pods",
            original: pod(json!({"containers": [{"name": "c", "args": ["a", "b", "c"]}]})),
            patch: json!({"spec": {"containers": [{"name": "c",
                "$deleteFromPrimitiveList/args": ["b"], "$deleteFromPrimitiveList/command": ["x"]}]}}),
            want: pod(json!({"containers": [{"name": "c", "args": ["a", "c"]}]})),
        },
        Case {
            name: "a value of another type replaces the field",
            resource: "v1/configmaps",
            original: json!({"metadata": {"name": "c"}, "data": {"a": "b"}}),
            patch: json!({"data": "oops", "metadata": {"name": 5}}),
            want: json!({"metadata": {"name": 5}, "data": "oops"}),
        },
    ]);
}

#[test]
fn kinds_without_a_schema_merge_objects_and_replace_lists() {
    let rt = ResourceType {
        group: "example.com".into(),
        version: "v1".into(),
        kind: "Widget".into(),
        list_kind: "WidgetList".into(),
        plural: "widgets".into(),
        singular: "widget".into(),
        namespaced: true,
        short_names: vec![],
        categories: vec![],
        verbs: vec![],
        subresources: vec![],
        tracks_generation: true,
        typed: None,
        custom_schema: None,
        printer_columns: None,
    };
    let mut doc = json!({"metadata": {"finalizers": ["a"], "labels": {"x": "1"}},
        "spec": {"containers": [{"name": "a"}], "size": 1}});
    let patch = json!({"metadata": {"finalizers": ["b"], "labels": {"y": "2"}},
        "spec": {"containers": [{"name": "b"}]}});
    let result = apply(&mut doc, &patch, &rt);
    assert_eq!(result, Ok(()));
    assert_eq!(
        doc,
        json!({"metadata": {"finalizers": ["b"], "labels": {"x": "1", "y": "2"}},
        "spec": {"containers": [{"name": "b"}], "size": 1}})
    );
}

#[test]
fn malformed_patches_fail_with_upstream_messages() {
    let cm = json!({"metadata": {"name": "c", "labels": {"a": "b"}, "finalizers": ["x"]}});
    let empty_finalizers = json!({"metadata": {"name": "c", "finalizers": []}});
    let two = deployment(json!([{"name": "a"}, {"name": "b"}]));
    let mut rolling = two.clone();
    rolling["spec"]["strategy"] = json!({"type": "RollingUpdate"});
    let containers = |items: Value| json!({"spec": {"template": {"spec": {"containers": items}}}});
    let cases: Vec<ErrorCase> = vec![
        (
            "unknown $patch in a map",
            "v1/configmaps",
            cm.clone(),
            json!({"metadata": {"labels": {"$patch": "foo"}}}),
            "unknown patch type: foo in map: map[$patch:foo]",
        ),
        (
            "$patch: merge is refused in a map",
            "v1/configmaps",
            cm.clone(),
            json!({"metadata": {"labels": {"$patch": "merge", "z": "1"}}}),
            "unknown patch type: merge in map: map[$patch:merge z:1]",
        ),
        (
            "$patch: merge as a list item",
            "apps/v1/deployments",
            two.clone(),
            containers(json!([{"$patch": "merge", "name": "a"}])),
            "merging lists cannot yet be specified in the patch",
        ),
        (
            "unknown $patch as a list item",
            "apps/v1/deployments",
            two.clone(),
            containers(json!([{"$patch": "nope", "name": "a"}])),
            "unknown patch type: nope in map: map[$patch:nope name:a]",
        ),
        (
            "missing merge key",
            "apps/v1/deployments",
            two.clone(),
            containers(json!([{"image": "x"}])),
            "map: map[image:x] does not contain declared merge key: name",
        ),
        (
            "delete directive without the merge key",
            "apps/v1/deployments",
            two.clone(),
            containers(json!([{"$patch": "delete"}])),
            "map: map[$patch:delete] does not contain declared merge key: name",
        ),
        (
            "$retainKeys not a list",
            "apps/v1/deployments",
            rolling.clone(),
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
            "invalid patch format of retainKeys",
        ),
        (
            "patch sets a key $retainKeys does not keep",
            "apps/v1/deployments",
            rolling.clone(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}),
            "invalid patch format of retainKeys",
        ),
        (
            "patch list out of $setElementOrder order",
            "apps/v1/deployments",
            two.clone(),
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [{"name": "b"}, {"name": "a"}]}}}}),
            "The order in patch list:\n[map[name:b] map[name:a]]\n doesn't match $setElementOrder list:\n[map[name:a] map[name:b]]\n",
        ),
        (
            "$setElementOrder without a field",
            "v1/configmaps",
            cm.clone(),
            json!({"metadata": {"$setElementOrderfinalizers": ["x"]}}),
            "invalid patch format of setElementOrder list",
        ),
        (
            "$setElementOrder not a list",
            "v1/configmaps",
            cm.clone(),
            json!({"metadata": {"$setElementOrder/finalizers": "x"}}),
            "expected a []interface {}, but received a string",
        ),
        (
            "$setElementOrder of a list empty on both sides",
            "v1/configmaps",
            empty_finalizers.clone(),
            json!({"metadata": {"$setElementOrder/finalizers": []}}),
            "no elements in any of the given slices",
        ),
        (
            "$deleteFromPrimitiveList without a field",
            "v1/configmaps",
            cm.clone(),
            json!({"metadata": {"$deleteFromPrimitiveList": ["x"]}}),
            "invalid patch format of primitive list",
        ),
        (
            "list of lists",
            "v1/configmaps",
            cm.clone(),
            json!({"metadata": {"finalizers": [["y"]]}}),
            "list element types are not identical: [[x] [[y]]]",
        ),
        (
            "list of lists in an empty list",
            "v1/configmaps",
            empty_finalizers.clone(),
            json!({"metadata": {"finalizers": [["y"]]}}),
            "lists of lists are not supported",
        ),
        (
            "mixed element types",
            "v1/configmaps",
            cm.clone(),
            json!({"metadata": {"finalizers": ["a", 1]}}),
            "list element types are not identical: [[x] [a 1]]",
        ),
        (
            "objects in a primitive merge list",
            "v1/configmaps",
            empty_finalizers.clone(),
            json!({"metadata": {"finalizers": [{"a": 1}]}}),
            "cannot merge lists without merge key for string",
        ),
        (
            "patch is not an object",
            "v1/configmaps",
            cm.clone(),
            json!([]),
            "expected a map[string]interface {}, but received a []interface {}",
        ),
    ];
    run_errors(cases);
}
