//! Events, core `v1` and `events.k8s.io/v1` (the same data under other field names, which
//! upstream converts to one internal type before printing).

use serde_json::Value;

use super::Kind;
use super::cells::{Col, Ctx, NAME, int_at, name, opt_str, parse_time, str_at};

pub const KIND: Kind = Kind::new(EVENT, event);

const EVENT: &[Col] = &[
    Col::new(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    Col::new(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    Col::new(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    Col::new(
        "Object",
        "string",
        "The object that this event is about.",
    ),
    Col::new(
        "Subobject",
        "string",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.",
    )
    .wide(),
    Col::new(
        "Source",
        "string",
        "The component reporting this event. Should be a short machine understandable string.",
    )
    .wide(),
    Col::new(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    Col::new(
        "First Seen",
        "string",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    )
    .wide(),
    Col::new(
        "Count",
        "string",
        "The number of times this event has occurred.",
    )
    .wide(),
    NAME.wide(),
];

/// `printEvent`. An `events.k8s.io/v1` Event carries the same data under other names
/// (`regarding`, `note`, `deprecated*`), which upstream converts before printing.
fn event(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let v1 = ctx.group == "events.k8s.io";
    let field = |core: &'static str, events: &'static str| if v1 { events } else { core };
    let first = opt_str(obj, field("/firstTimestamp", "/deprecatedFirstTimestamp"))
        .filter(|t| parse_time(t).is_some());
    let first_seen = match first {
        Some(t) => ctx.since(Some(t)),
        None => ctx.since(opt_str(obj, "/eventTime")),
    };
    let last = opt_str(obj, field("/lastTimestamp", "/deprecatedLastTimestamp"))
        .filter(|t| parse_time(t).is_some());
    let mut last_seen = match last {
        Some(t) => ctx.since(Some(t)),
        None => first_seen.clone(),
    };
    let mut count = int_at(obj, field("/count", "/deprecatedCount"));
    if obj.get("series").is_some_and(Value::is_object) {
        last_seen = ctx.since(opt_str(obj, "/series/lastObservedTime"));
        count = int_at(obj, "/series/count");
    } else if count == 0 {
        // Singleton events don't have a count set in the new API.
        count = 1;
    }
    let regarding = field("/involvedObject", "/regarding");
    let kind = str_at(obj, &format!("{regarding}/kind")).to_lowercase();
    let target = match str_at(obj, &format!("{regarding}/name")) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let source = field("/source", "/deprecatedSource");
    let component = non_empty(
        str_at(obj, &format!("{source}/component")),
        str_at(obj, field("/reportingComponent", "/reportingController")),
    );
    let instance = non_empty(
        str_at(obj, &format!("{source}/host")),
        str_at(obj, "/reportingInstance"),
    );
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        last_seen.into(),
        str_at(obj, "/type").into(),
        str_at(obj, "/reason").into(),
        target.into(),
        str_at(obj, &format!("{regarding}/fieldPath")).into(),
        source.into(),
        str_at(obj, field("/message", "/note")).trim().into(),
        first_seen.into(),
        count.into(),
        name(obj).into(),
    ]
}

fn non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}
