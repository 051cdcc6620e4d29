//! Server-side printing: the `meta.k8s.io/v1` `Table` kubectl asks for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,…` and prints as is, and the
//! `PartialObjectMetadata` shapes negotiated the same way.
//!
//! Pure functions: the REST handlers negotiate with [`negotiate`], then turn the objects
//! they would have returned into a table with [`table`] (LIST), [`object_table`] (GET),
//! [`watch_row_table`] (one per WATCH event) or, with every option, [`render`].
//!
//! # Layout
//! - `mod.rs`: [`Include`], [`Options`], the entry points and the choice of printer.
//! - `negotiate.rs`: `Accept` header → object, `Table` or `PartialObjectMetadata`.
//! - `cells.rs`: column definitions and shared cell formatting (ages, selectors, labels).
//! - `core.rs` (with `pod.rs`, `event.rs`, `volume.rs`), `apps.rs`, `batch.rs`,
//!   `networking.rs`, `autoscaling.rs`, `other.rs`: upstream's column sets and row printers
//!   (`pkg/printers/internalversion`), one file per API group family.
//! - `custom.rs`, `jsonpath.rs`: custom resources' `additionalPrinterColumns`.
//! - `tests/`: table-driven tests, one file per family.
//!
//! # Upstream behaviour kept here
//! - Rows always carry every cell, priority 1 (`-o wide`) ones included: upstream prints
//!   with `Wide: true` and kubectl drops the wide columns itself.
//! - kubectl adds `NAMESPACE` (`-A`), `LABELS` (`--show-labels`) and `-L` columns from the
//!   row's `object` metadata, so the default `includeObject=Metadata` matters; ages are
//!   server-computed cells.
//! - Kinds without a printer (roles, CRDs, limit ranges) get the default `Name`,
//!   `Created At` table; custom resources get `Name` plus their printer columns or `Age`.
//! - In a watch, only the first event's table carries column definitions (later ones have
//!   `columnDefinitions: null`), which kubectl reuses.
//! - Descriptions that upstream takes from API field docs are abbreviated; names, types,
//!   formats, priorities and cells are upstream's.

mod apps;
mod autoscaling;
mod batch;
mod cells;
mod core;
mod custom;
mod event;
mod jsonpath;
mod negotiate;
mod networking;
mod other;
mod pod;
#[cfg(test)]
mod tests;
mod volume;

use apimachinery::registry::ResourceType;
use apimachinery::status::ApiError;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use cells::{CREATED_DOC, Col, Ctx, NAME, name, parse_time};
pub use negotiate::{MetaVersion, NOT_ACCEPTABLE, Output, negotiate, wants_table};

/// What each row's `object` holds: the `includeObject` query parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Include {
    /// `object: null`.
    None,
    /// A `PartialObjectMetadata` with the object's whole `metadata` (the default).
    #[default]
    Metadata,
    /// The full object, with `apiVersion` and `kind` (kubectl asks for it with `--sort-by`).
    Object,
}

impl Include {
    /// Parses `includeObject`; absent or empty means `Metadata`. Anything but `None`,
    /// `Metadata` or `Object` (case-sensitive) is upstream's 400.
    pub fn from_query(value: Option<&str>) -> Result<Include, ApiError> {
        match value.unwrap_or("") {
            "" | "Metadata" => Ok(Include::Metadata),
            "None" => Ok(Include::None),
            "Object" => Ok(Include::Object),
            other => Err(ApiError::bad_request(format!(
                "Unable to convert to Table as requested: includeObject: Invalid value: {other:?}: must be 'Metadata', 'Object', 'None', or empty"
            ))),
        }
    }
}

/// Everything [`render`] needs besides the resource and the objects.
#[derive(Clone, Debug)]
pub struct Options<'a> {
    pub include: Include,
    /// The `meta.k8s.io` version negotiated (the Table's and PartialObjectMetadata's
    /// `apiVersion`).
    pub version: MetaVersion,
    /// Whether to send column definitions; false for every watch event after the first.
    pub headers: bool,
    /// "Now" for the age cells.
    pub now: Timestamp,
    /// `metadata.resourceVersion`: the list's, or for a GET or watch event the object's.
    pub resource_version: &'a str,
    pub continue_token: Option<&'a str>,
    pub remaining_item_count: Option<i64>,
    /// A custom resource version's `additionalPrinterColumns` (the JSON array from the
    /// CRD). Ignored for built-in kinds.
    pub printer_columns: Option<&'a Value>,
}

impl<'a> Options<'a> {
    /// Defaults: metadata rows, `meta.k8s.io/v1`, headers, the current time.
    pub fn new(resource_version: &'a str) -> Options<'a> {
        Options {
            include: Include::Metadata,
            version: MetaVersion::V1,
            headers: true,
            now: Timestamp::now(),
            resource_version,
            continue_token: None,
            remaining_item_count: None,
            printer_columns: None,
        }
    }
}

/// The Table for a LIST (one row per object, in order) or a GET (one object; pass its
/// `metadata.resourceVersion` as `rv`). Uses the current time and `meta.k8s.io/v1`.
pub fn table(
    rt: &ResourceType,
    objects: &[&Value],
    rv: &str,
    continue_token: Option<&str>,
    include: Include,
) -> Value {
    let options = Options {
        include,
        continue_token,
        ..Options::new(rv)
    };
    render(rt, objects, &options)
}

/// The Table for a GET of one object: one row, the object's resource version.
pub fn object_table(rt: &ResourceType, obj: &Value, include: Include) -> Value {
    watch_row_table(rt, obj, include, true)
}

/// The Table a WATCH event carries instead of the object: one row, the object's
/// resource version, and column definitions only when `headers` (the first event of the
/// watch).
pub fn watch_row_table(rt: &ResourceType, obj: &Value, include: Include, headers: bool) -> Value {
    let rv = cells::str_at(obj, "/metadata/resourceVersion");
    let options = Options {
        include,
        headers,
        ..Options::new(rv)
    };
    render(rt, &[obj], &options)
}

/// Builds a `Table` for `objects` of `rt` under `options`.
pub fn render(rt: &ResourceType, objects: &[&Value], options: &Options) -> Value {
    let ctx = Ctx {
        now: options.now,
        group: &rt.group,
    };
    // A `/scale` subresource body prints as a Scale whatever its parent is.
    let is_scale = rt.kind != "Scale"
        && !objects.is_empty()
        && objects.iter().all(|o| cells::str_at(o, "/kind") == "Scale");
    let printer = if is_scale {
        autoscaling::printer("Scale").map_or(Printer::Default, Printer::Kind)
    } else {
        Printer::resolve(rt, options.printer_columns)
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let (cells, conditions) = printer.row(obj, &ctx);
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(cells));
            if let Some(c) = conditions {
                row.insert("conditions".into(), c);
            }
            row.insert("object".into(), row_object(rt, obj, options));
            Value::Object(row)
        })
        .collect();
    let mut metadata = Map::new();
    if !options.resource_version.is_empty() {
        metadata.insert("resourceVersion".into(), options.resource_version.into());
    }
    if let Some(c) = options.continue_token.filter(|c| !c.is_empty()) {
        metadata.insert("continue".into(), c.into());
    }
    if let Some(n) = options.remaining_item_count {
        metadata.insert("remainingItemCount".into(), n.into());
    }
    let columns = if options.headers {
        Value::Array(printer.columns())
    } else {
        Value::Null
    };
    json!({
        "kind": "Table",
        "apiVersion": options.version.api_version(),
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// `meta.AsPartialObjectMetadata`: the object's whole `metadata` under a
/// `PartialObjectMetadata` type.
pub fn partial_object_metadata(obj: &Value, version: MetaVersion) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": version.api_version(),
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// A `PartialObjectMetadataList` for a LIST negotiated as such.
pub fn partial_object_metadata_list(
    objects: &[&Value],
    version: MetaVersion,
    rv: &str,
    continue_token: Option<&str>,
) -> Value {
    let mut metadata = Map::new();
    if !rv.is_empty() {
        metadata.insert("resourceVersion".into(), rv.into());
    }
    if let Some(c) = continue_token.filter(|c| !c.is_empty()) {
        metadata.insert("continue".into(), c.into());
    }
    let items: Vec<Value> = objects
        .iter()
        .map(|o| partial_object_metadata(o, version))
        .collect();
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": version.api_version(),
        "metadata": metadata,
        "items": items,
    })
}

fn row_object(rt: &ResourceType, obj: &Value, options: &Options) -> Value {
    match options.include {
        Include::None => Value::Null,
        Include::Metadata => partial_object_metadata(obj, options.version),
        Include::Object => {
            let mut full = obj.clone();
            if let Value::Object(m) = &mut full {
                m.entry("apiVersion")
                    .or_insert_with(|| rt.api_version().into());
                m.entry("kind").or_insert_with(|| rt.kind.clone().into());
            }
            full
        }
    }
}

type RowFn = fn(&Value, &Ctx) -> Vec<Value>;

/// A built-in kind's printer: its columns and how to fill a row.
#[derive(Clone, Copy)]
struct Kind {
    columns: &'static [Col],
    row: RowFn,
    /// Row conditions (`Completed` for finished pods).
    conditions: Option<fn(&Value) -> Option<Value>>,
}

impl Kind {
    const fn new(columns: &'static [Col], row: RowFn) -> Kind {
        Kind {
            columns,
            row,
            conditions: None,
        }
    }
}

/// How one resource's rows are printed.
enum Printer {
    Kind(Kind),
    /// `rest.NewDefaultTableConvertor`: `Name`, `Created At`.
    Default,
    Custom(Vec<custom::Column>),
}

const DEFAULT_COLUMNS: &[Col] = &[NAME, Col::new("Created At", "date", CREATED_DOC)];

impl Printer {
    fn resolve(rt: &ResourceType, printer_columns: Option<&Value>) -> Printer {
        if rt.typed.is_none() {
            return Printer::Custom(custom::columns(printer_columns));
        }
        let kind = match rt.group.as_str() {
            "" | "events.k8s.io" => core::printer(&rt.kind),
            "apps" => apps::printer(&rt.kind),
            "batch" => batch::printer(&rt.kind),
            "autoscaling" => autoscaling::printer(&rt.kind),
            "networking.k8s.io" | "discovery.k8s.io" => networking::printer(&rt.kind),
            group => other::printer(group, &rt.kind),
        };
        kind.map_or(Printer::Default, Printer::Kind)
    }

    fn columns(&self) -> Vec<Value> {
        match self {
            Printer::Kind(k) => k.columns.iter().map(|c| c.to_json()).collect(),
            Printer::Default => DEFAULT_COLUMNS.iter().map(|c| c.to_json()).collect(),
            Printer::Custom(cols) => custom::definitions(cols),
        }
    }

    fn row(&self, obj: &Value, ctx: &Ctx) -> (Vec<Value>, Option<Value>) {
        match self {
            Printer::Kind(k) => ((k.row)(obj, ctx), k.conditions.and_then(|c| c(obj))),
            Printer::Default => (vec![name(obj).into(), created_at(obj).into()], None),
            Printer::Custom(cols) => (custom::row(obj, cols, ctx), None),
        }
    }
}

/// `creationTimestamp.UTC().Format(time.RFC3339)`; Go's zero time when unset.
fn created_at(obj: &Value) -> String {
    cells::opt_str(obj, "/metadata/creationTimestamp")
        .and_then(parse_time)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string())
}
