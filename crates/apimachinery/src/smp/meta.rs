//! Typed view of the patch metadata table ([`super::table`]): what one field of one OpenAPI
//! definition declares about how it is patched and how its list or map is typed.

use super::table::{ATOMIC_STRUCTS, PACKAGES, Row};

/// A field's `patchStrategy` struct tag (OpenAPI `x-kubernetes-patch-strategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Lists are merged: by the merge key for lists of objects, as a set for primitives.
    Merge,
    /// The patch value replaces the field as a whole.
    Replace,
    /// A map (union) whose unlisted keys `kubectl apply` clears through `$retainKeys`.
    RetainKeys,
    /// A merged list whose items are unions (`PodSpec.volumes`).
    MergeRetainKeys,
}

impl Strategy {
    /// Upstream's spelling, as emitted in `x-kubernetes-patch-strategy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Merge => "merge",
            Strategy::Replace => "replace",
            Strategy::RetainKeys => "retainKeys",
            Strategy::MergeRetainKeys => "merge,retainKeys",
        }
    }

    fn parse(s: &str) -> Option<Strategy> {
        match s {
            "merge" => Some(Strategy::Merge),
            "replace" => Some(Strategy::Replace),
            "retainKeys" => Some(Strategy::RetainKeys),
            "merge,retainKeys" | "retainKeys,merge" => Some(Strategy::MergeRetainKeys),
            _ => None,
        }
    }

    /// Whether lists under this strategy merge rather than replace. `retainKeys` alone says
    /// nothing about lists, as upstream's `extractRetainKeysPatchStrategy` splits it off.
    pub fn merges(self) -> bool {
        matches!(self, Strategy::Merge | Strategy::MergeRetainKeys)
    }
}

/// A list's `+listType` marker (OpenAPI `x-kubernetes-list-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListType {
    Atomic,
    Set,
    Map,
}

impl ListType {
    pub fn as_str(self) -> &'static str {
        match self {
            ListType::Atomic => "atomic",
            ListType::Set => "set",
            ListType::Map => "map",
        }
    }

    fn parse(s: &str) -> Option<ListType> {
        match s {
            "atomic" => Some(ListType::Atomic),
            "set" => Some(ListType::Set),
            "map" => Some(ListType::Map),
            _ => None,
        }
    }
}

/// A map or struct field's `+mapType`/`+structType` marker (OpenAPI `x-kubernetes-map-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapType {
    Atomic,
    Granular,
}

impl MapType {
    pub fn as_str(self) -> &'static str {
        match self {
            MapType::Atomic => "atomic",
            MapType::Granular => "granular",
        }
    }

    fn parse(s: &str) -> Option<MapType> {
        match s {
            "atomic" => Some(MapType::Atomic),
            "granular" => Some(MapType::Granular),
            _ => None,
        }
    }
}

/// Everything upstream declares about one field of one definition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PatchMeta {
    /// `x-kubernetes-patch-strategy`; `None` means replace for lists and merge for objects.
    pub strategy: Option<Strategy>,
    /// `x-kubernetes-patch-merge-key`: the field identifying items of a merged object list.
    pub merge_key: Option<&'static str>,
    /// `x-kubernetes-list-type`.
    pub list_type: Option<ListType>,
    /// `x-kubernetes-list-map-keys` (empty unless `list_type` is `Map`).
    pub list_map_keys: &'static [&'static str],
    /// `x-kubernetes-map-type`.
    pub map_type: Option<MapType>,
}

/// The metadata of `field` of the OpenAPI definition `definition` (e.g.
/// `io.k8s.api.core.v1.PodSpec`, `containers`), or `None` when upstream declares nothing
/// for it (or the definition or field is unknown). Pure table lookup, cheap.
pub fn patch_meta(definition: &str, field: &str) -> Option<PatchMeta> {
    let (package, ty) = definition.rsplit_once('.')?;
    let rows = PACKAGES
        .binary_search_by(|(p, _)| (*p).cmp(package))
        .ok()
        .and_then(|i| PACKAGES.get(i))?
        .1;
    let row = rows
        .binary_search_by(|r| (r.0, r.1).cmp(&(ty, field)))
        .ok()
        .and_then(|i| rows.get(i))?;
    Some(from_row(row))
}

/// `x-kubernetes-map-type` of a definition as a whole: `Some(Atomic)` for types marked
/// `+structType=atomic` (`LabelSelector`, `ObjectReference`, …).
pub fn definition_map_type(definition: &str) -> Option<MapType> {
    ATOMIC_STRUCTS
        .binary_search(&definition)
        .ok()
        .map(|_| MapType::Atomic)
}

/// Every (definition, field, metadata) in the table, for generators and tests.
pub fn all_patch_meta() -> impl Iterator<Item = (String, &'static str, PatchMeta)> {
    PACKAGES.iter().flat_map(|(package, rows)| {
        rows.iter()
            .map(move |row| (format!("{package}.{}", row.0), row.1, from_row(row)))
    })
}

fn from_row(row: &Row) -> PatchMeta {
    let (_, _, strategy, key, list_type, keys, map_type) = *row;
    PatchMeta {
        strategy: Strategy::parse(strategy),
        merge_key: Some(key).filter(|k| !k.is_empty()),
        list_type: ListType::parse(list_type),
        list_map_keys: keys,
        map_type: MapType::parse(map_type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_every_value_parses() {
        assert!(
            PACKAGES.windows(2).all(|w| w[0].0 < w[1].0),
            "packages sorted"
        );
        assert!(
            ATOMIC_STRUCTS.windows(2).all(|w| w[0] < w[1]),
            "atomic structs sorted"
        );
        for (package, rows) in PACKAGES {
            assert!(
                rows.windows(2).all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1)),
                "{package} rows sorted and unique"
            );
            for row in *rows {
                let (ty, field, strategy, _, list_type, keys, map_type) = *row;
                let at = format!("{package}.{ty}.{field}");
                assert!(
                    strategy.is_empty() || Strategy::parse(strategy).is_some(),
                    "{at}"
                );
                assert!(
                    list_type.is_empty() || ListType::parse(list_type).is_some(),
                    "{at}"
                );
                assert!(
                    map_type.is_empty() || MapType::parse(map_type).is_some(),
                    "{at}"
                );
                assert_eq!(
                    list_type == "map",
                    !keys.is_empty(),
                    "{at}: map keys iff map list"
                );
            }
        }
    }

    #[test]
    fn upstream_merge_keys() {
        let cases: &[(&str, &str, Option<Strategy>, Option<&str>)] = &[
            (
                "io.k8s.api.core.v1.PodSpec",
                "containers",
                Some(Strategy::Merge),
                Some("name"),
            ),
            (
                "io.k8s.api.core.v1.PodSpec",
                "initContainers",
                Some(Strategy::Merge),
                Some("name"),
            ),
            (
                "io.k8s.api.core.v1.PodSpec",
                "volumes",
                Some(Strategy::MergeRetainKeys),
                Some("name"),
            ),
            ("io.k8s.api.core.v1.PodSpec", "tolerations", None, None),
            (
                "io.k8s.api.core.v1.PodSpec",
                "hostAliases",
                Some(Strategy::Merge),
                Some("ip"),
            ),
            (
                "io.k8s.api.core.v1.Container",
                "ports",
                Some(Strategy::Merge),
                Some("containerPort"),
            ),
            ("io.k8s.api.core.v1.Container", "envFrom", None, None),
            (
                "io.k8s.api.core.v1.EphemeralContainer",
                "env",
                Some(Strategy::Merge),
                Some("name"),
            ),
            (
                "io.k8s.api.core.v1.ServiceSpec",
                "ports",
                Some(Strategy::Merge),
                Some("port"),
            ),
            (
                "io.k8s.api.apps.v1.DeploymentSpec",
                "strategy",
                Some(Strategy::RetainKeys),
                None,
            ),
            (
                "io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
                "selector",
                Some(Strategy::Replace),
                None,
            ),
            (
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                "finalizers",
                Some(Strategy::Merge),
                None,
            ),
            (
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                "ownerReferences",
                Some(Strategy::Merge),
                Some("uid"),
            ),
        ];
        for (def, field, strategy, key) in cases {
            let meta = patch_meta(def, field).unwrap_or_default();
            assert_eq!(
                (meta.strategy, meta.merge_key),
                (*strategy, *key),
                "{def}.{field}"
            );
        }
        let ports = patch_meta("io.k8s.api.core.v1.ServiceSpec", "ports").unwrap_or_default();
        assert_eq!(
            (ports.list_type, ports.list_map_keys),
            (Some(ListType::Map), &["port", "protocol"][..])
        );
        assert_eq!(patch_meta("io.k8s.api.core.v1.PodSpec", "nope"), None);
        assert_eq!(patch_meta("nodots", "x"), None);
        assert_eq!(
            definition_map_type("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"),
            Some(MapType::Atomic)
        );
        assert_eq!(definition_map_type("io.k8s.api.core.v1.PodSpec"), None);
    }
}
