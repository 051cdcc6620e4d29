//! CronJob schedules and the arithmetic of missed start times.
//!
//! Parsing accepts what upstream's `cron.ParseStandard` (robfig/cron v3) accepts, which is
//! what API validation lets through: five fields, the `@` macros, `@every <duration>` and a
//! `TZ=`/`CRON_TZ=` prefix. The fields are evaluated by croner in a jiff time zone; the few
//! places where croner's dialect differs from robfig's are normalised before it sees them.
//!
//! Upstream evaluates schedules at one-second granularity: every time here is a whole
//! second except `now` and the CronJob's creation time.

use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Upstream's `nextScheduleDelta`: requeues land this long after the scheduled time so a
/// small clock skew between timers and the wall clock never wakes the controller early.
pub const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);

/// More missed start times than this is reported as `TooManyMissedTimes`.
const MANY_MISSED: i64 = 100;

/// upstream's error when a schedule never fires (or fires twice in one second).
pub const INVALID_INTERVAL: &str = "time difference between two schedules is less than 1 second";

#[derive(Debug)]
enum Kind {
    Cron(Box<Cron>),
    /// `@every`: whole seconds, at least one.
    Every(i64),
}

/// A parsed schedule in its time zone.
#[derive(Debug)]
pub struct Schedule {
    kind: Kind,
    zone: TimeZone,
}

impl Schedule {
    /// Parses `spec` as `cron.ParseStandard` does; `zone` applies unless the spec carries a
    /// `TZ=`/`CRON_TZ=` prefix of its own. `Err` is a human-readable reason.
    pub fn parse(spec: &str, zone: TimeZone) -> Result<Schedule, String> {
        if spec.is_empty() {
            return Err("empty spec string".into());
        }
        let mut spec = spec;
        let mut zone = zone;
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            let eq = spec.find('=').map_or(0, |i| i + 1);
            let end = spec.find(' ').unwrap_or(spec.len());
            let name = &spec[eq..end];
            zone = jiff::tz::db()
                .get(name)
                .map_err(|e| format!("provided bad location {name}: {e}"))?;
            spec = spec[end..].trim();
        }
        if spec.starts_with('@') {
            return parse_descriptor(spec).map(|kind| Schedule { kind, zone });
        }
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: [{}]",
                fields.len(),
                fields.join(" ")
            ));
        }
        let normalised: Vec<String> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| normalise_field(f, i == 2 || i == 4))
            .collect();
        Ok(Schedule {
            kind: Kind::Cron(Box::new(cron(&normalised.join(" "))?)),
            zone,
        })
    }

    /// The first activation strictly after `t` (robfig's `Next`), or `None` when the
    /// schedule never fires again (`0 0 30 2 *`).
    pub fn next(&self, t: Timestamp) -> Option<Timestamp> {
        match &self.kind {
            Kind::Cron(c) => c
                .find_next_occurrence(&t.to_zoned(self.zone.clone()), false)
                .ok()
                .map(|z| z.timestamp()),
            Kind::Every(secs) => Timestamp::from_second(t.as_second().checked_add(*secs)?).ok(),
        }
    }
}

fn cron(pattern: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        // robfig reads `5/15` as `5-59/15`.
        .sloppy_ranges(true)
        .build()
        .parse(pattern)
        .map_err(|e| e.to_string())
}

/// robfig treats `?` as `*` in every field, and a day field holding `*` (or `*/1`) anywhere
/// in its list as unrestricted, which decides whether day-of-month and day-of-week are
/// combined with AND or OR. croner only recognises a bare `*` for that.
fn normalise_field(field: &str, day_field: bool) -> String {
    let items: Vec<String> = field
        .split(',')
        .map(|item| match item.strip_prefix('?') {
            Some(rest) => format!("*{rest}"),
            None => item.to_string(),
        })
        .collect();
    if day_field && items.iter().any(|i| i == "*" || i == "*/1") {
        return "*".into();
    }
    items.join(",")
}

fn parse_descriptor(spec: &str) -> Result<Kind, String> {
    let pattern = match spec {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        s => {
            let Some(d) = s.strip_prefix("@every ") else {
                return Err(format!("unrecognized descriptor: {s}"));
            };
            let nanos = go_duration(d).map_err(|e| format!("failed to parse duration {s}: {e}"))?;
            // robfig's `Every`: below a second rounds up to one, otherwise truncates.
            let secs = (nanos / 1_000_000_000).max(1);
            return Ok(Kind::Every(i64::try_from(secs).unwrap_or(i64::MAX)));
        }
    };
    cron(pattern).map(|c| Kind::Cron(Box::new(c)))
}

/// Go's `time.ParseDuration` (`1h30m`, `90s`, `1.5h`) in nanoseconds.
fn go_duration(s: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().map_err(|_| invalid())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            other => return Err(format!("time: unknown unit {other:?} in duration {s:?}")),
        };
        total += value * scale;
        rest = &rest[u..];
    }
    // Go truncates the sum to whole nanoseconds too.
    let nanos = total.min(i64::MAX as f64) as i128;
    Ok(if negative { -nanos } else { nanos })
}

/// How many start times went by unmet (upstream's `missedSchedulesType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missed {
    None,
    Few,
    /// More than 100: `TooManyMissedTimes`.
    Many,
}

/// Upstream's `mostRecentScheduleTime`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recent {
    /// The last schedule time, or the CronJob's creation (moved up to the starting
    /// deadline when that counts).
    pub earliest: Timestamp,
    /// The latest start time in `(earliest, now]`, if any.
    pub most_recent: Option<Timestamp>,
    pub missed: Missed,
}

/// What the schedule arithmetic needs from a CronJob.
#[derive(Clone, Copy, Debug)]
pub struct Times {
    pub created: Timestamp,
    pub last_scheduled: Option<Timestamp>,
    /// `spec.startingDeadlineSeconds`.
    pub deadline_secs: Option<i64>,
}

impl Times {
    fn earliest(&self, now: Timestamp, with_deadline: bool) -> Timestamp {
        let mut earliest = self.last_scheduled.unwrap_or(self.created);
        if with_deadline && let Some(secs) = self.deadline_secs {
            // Nothing older than the deadline will be started.
            let limit = now
                .checked_sub(jiff::SignedDuration::from_secs(secs))
                .unwrap_or(Timestamp::MIN);
            earliest = earliest.max(limit);
        }
        earliest
    }
}

/// Upstream's `mostRecentScheduleTime`: the latest start time in `(earliest, now]` and how
/// many were missed, found by estimating from the first interval rather than walking every
/// missed time (a CronJob whose clock is decades off must not cost decades of iterations).
/// `Err` is a schedule that never fires again or fires twice within a second.
pub fn most_recent(
    sched: &Schedule,
    times: &Times,
    now: Timestamp,
    with_deadline: bool,
) -> Result<Recent, &'static str> {
    let earliest = times.earliest(now, with_deadline);
    let none = |most_recent| Recent {
        earliest,
        most_recent,
        missed: Missed::None,
    };
    let t1 = sched.next(earliest).ok_or(INVALID_INTERVAL)?;
    if now < t1 {
        return Ok(none(None));
    }
    let t2 = sched.next(t1).ok_or(INVALID_INTERVAL)?;
    if now < t2 {
        return Ok(none(Some(t1)));
    }
    let interval = t2.duration_since(t1).as_secs();
    if interval < 1 {
        return Err(INVALID_INTERVAL);
    }
    let elapsed = now.duration_since(t1).as_secs();
    let missed_count = elapsed / interval + 1;
    // Start one interval before the estimate so irregular schedules (`30 6-16/4 * * 1-5`)
    // are walked by the schedule itself for the last stretch.
    let start = t1
        .checked_add(jiff::SignedDuration::from_secs(
            (missed_count - 2).saturating_mul(interval),
        ))
        .unwrap_or(t1);
    let mut most_recent = None;
    let mut t = sched.next(start);
    while let Some(tick) = t.filter(|t| *t <= now) {
        most_recent = Some(tick);
        t = sched.next(tick);
    }
    let missed = if missed_count > MANY_MISSED {
        Missed::Many
    } else {
        Missed::Few
    };
    Ok(Recent {
        earliest,
        most_recent,
        missed,
    })
}

/// Upstream's `nextScheduleTime`: the unmet start time to act on now, if any.
pub fn unmet(
    sched: &Schedule,
    times: &Times,
    now: Timestamp,
) -> Result<Option<Recent>, &'static str> {
    let r = most_recent(sched, times, now, true)?;
    Ok(r.most_recent.filter(|t| *t <= now).map(|_| r))
}

/// Upstream's `nextScheduleTimeDuration`: how long until the next start time after the
/// latest one due (plus [`NEXT_SCHEDULE_DELTA`]); `None` if the schedule never fires again.
pub fn until_next(sched: &Schedule, times: &Times, now: Timestamp) -> Option<Duration> {
    let base = match most_recent(sched, times, now, false) {
        Err(_) => now,
        Ok(Recent {
            most_recent: Some(t),
            ..
        }) => t,
        Ok(Recent {
            earliest,
            missed: Missed::None,
            ..
        }) => earliest,
        Ok(_) => now,
    };
    let next = sched.next(base)?;
    let wait = next
        .duration_since(now)
        .checked_add(jiff::SignedDuration::try_from(NEXT_SCHEDULE_DELTA).ok()?)?;
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// Upstream's `getJobName`: deterministic per start time (minutes since the epoch), so a
/// Job is never created twice for one start.
pub fn job_name(cron_job: &str, scheduled: Timestamp) -> String {
    format!("{cron_job}-{}", scheduled.as_second().div_euclid(60))
}

/// Go's RFC 3339 layout (`Z` for a zero offset, `+05:30` otherwise).
pub fn rfc3339(t: Timestamp, zone: &TimeZone) -> String {
    let z = t.to_zoned(zone.clone());
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// Go's RFC 1123 layout with a numeric zone, in UTC (`MissSchedule`'s message).
pub fn rfc1123z(t: Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn utc(spec: &str) -> Schedule {
        Schedule::parse(spec, TimeZone::UTC).expect("schedule")
    }

    fn times(created: &str, last: Option<&str>, deadline: Option<i64>) -> Times {
        Times {
            created: ts(created),
            last_scheduled: last.map(ts),
            deadline_secs: deadline,
        }
    }

    #[test]
    fn macros_and_fields_follow_robfig() {
        let t = ts("2024-03-01T12:00:00.5Z");
        let cases = [
            ("* * * * *", "2024-03-01T12:01:00Z"),
            ("@hourly", "2024-03-01T13:00:00Z"),
            ("@daily", "2024-03-02T00:00:00Z"),
            ("@midnight", "2024-03-02T00:00:00Z"),
            ("@weekly", "2024-03-03T00:00:00Z"),
            ("@monthly", "2024-04-01T00:00:00Z"),
            ("@yearly", "2025-01-01T00:00:00Z"),
            ("@annually", "2025-01-01T00:00:00Z"),
            ("@every 90s", "2024-03-01T12:01:30Z"),
            ("5/15 * * * *", "2024-03-01T12:05:00Z"),
            ("? * * * *", "2024-03-01T12:01:00Z"),
            ("30 6-16/4 * * mon-fri", "2024-03-01T14:30:00Z"),
            // Both day fields restricted: either matches (the 1st, or a Monday).
            ("0 0 1 * MON", "2024-03-04T00:00:00Z"),
            // `*/1` is unrestricted, so only Mondays count.
            ("0 0 */1 * MON", "2024-03-04T00:00:00Z"),
            ("0 0 1 * */1", "2024-04-01T00:00:00Z"),
        ];
        for (spec, want) in cases {
            assert_eq!(utc(spec).next(t), Some(ts(want)), "{spec}");
        }
        // Strictly after: a time on the schedule is not its own next.
        assert_eq!(
            utc("* * * * *").next(ts("2024-03-01T12:01:00Z")),
            Some(ts("2024-03-01T12:02:00Z"))
        );
    }

    #[test]
    fn bad_schedules_are_rejected_with_a_reason() {
        for (spec, want) in [
            ("", "empty spec string"),
            ("daily", "expected exactly 5 fields, found 1: [daily]"),
            ("@often", "unrecognized descriptor: @often"),
            (
                "@every 5x",
                "failed to parse duration @every 5x: time: unknown unit \"x\" in duration \"5x\"",
            ),
        ] {
            assert_eq!(
                Schedule::parse(spec, TimeZone::UTC).err().as_deref(),
                Some(want),
                "{spec}"
            );
        }
        assert!(Schedule::parse("61 * * * *", TimeZone::UTC).is_err());
        let bad_zone = Schedule::parse("TZ=Nowhere/Land 0 * * * *", TimeZone::UTC)
            .err()
            .unwrap_or_default();
        assert!(
            bad_zone.starts_with("provided bad location Nowhere/Land"),
            "{bad_zone}"
        );
    }

    #[test]
    fn time_zones_come_from_the_zone_or_a_tz_prefix() {
        let berlin = jiff::tz::db().get("Europe/Berlin").expect("tzdb");
        let t = ts("2024-07-01T00:00:00Z");
        let in_berlin = Schedule::parse("0 9 * * *", berlin.clone()).expect("parse");
        assert_eq!(in_berlin.next(t), Some(ts("2024-07-01T07:00:00Z")));
        // The prefix wins over the zone it was given.
        let prefixed = Schedule::parse("CRON_TZ=Asia/Tokyo 0 9 * * *", berlin).expect("parse");
        // 09:00 in Tokyo is midnight UTC, and `next` is strictly after.
        assert_eq!(prefixed.next(t), Some(ts("2024-07-02T00:00:00Z")));
        let tz = Schedule::parse("TZ=UTC 0 9 * * *", TimeZone::UTC).expect("parse");
        assert_eq!(tz.next(t), Some(ts("2024-07-01T09:00:00Z")));
    }

    #[test]
    fn nothing_due_before_the_first_start_time() {
        let s = utc("0 * * * *");
        let t = times("2024-03-01T12:00:30Z", None, None);
        let now = ts("2024-03-01T12:59:59Z");
        let r = most_recent(&s, &t, now, true).expect("ok");
        assert_eq!(r.most_recent, None);
        assert_eq!(r.missed, Missed::None);
        assert_eq!(unmet(&s, &t, now), Ok(None));
        // Requeued for 13:00 plus the delta.
        assert_eq!(until_next(&s, &t, now), Some(Duration::from_millis(1100)));
    }

    #[test]
    fn the_start_time_just_passed_is_due_once() {
        let s = utc("0 * * * *");
        let t = times("2024-03-01T12:00:30Z", None, None);
        let now = ts("2024-03-01T13:00:00.05Z");
        let r = unmet(&s, &t, now).expect("ok").expect("due");
        assert_eq!(r.most_recent, Some(ts("2024-03-01T13:00:00Z")));
        assert_eq!(r.missed, Missed::None);
        // Once recorded as the last schedule time, the next is an hour on.
        let t = times("2024-03-01T12:00:30Z", Some("2024-03-01T13:00:00Z"), None);
        assert_eq!(unmet(&s, &t, now), Ok(None));
        assert_eq!(
            until_next(&s, &t, now),
            Some(Duration::from_millis(3_600_050))
        );
    }

    #[test]
    fn several_missed_start_times_yield_the_latest() {
        let s = utc("*/5 * * * *");
        let t = times("2024-03-01T00:00:00Z", Some("2024-03-01T10:00:00Z"), None);
        let now = ts("2024-03-01T10:27:10Z");
        let r = unmet(&s, &t, now).expect("ok").expect("due");
        assert_eq!(r.most_recent, Some(ts("2024-03-01T10:25:00Z")));
        assert_eq!(r.missed, Missed::Few);
        assert_eq!(
            until_next(&s, &t, now),
            Some(Duration::from_millis(170_100))
        );
    }

    #[test]
    fn irregular_schedules_still_find_the_latest_start() {
        // Weekday office hours: the estimate from the first interval lands on the weekend and
        // the schedule itself walks on to Monday.
        let s = utc("30 6-16/4 * * 1-5");
        let t = times("2024-02-28T00:00:00Z", Some("2024-02-29T14:30:00Z"), None);
        let now = ts("2024-03-04T07:00:00Z");
        let r = unmet(&s, &t, now).expect("ok").expect("due");
        assert_eq!(r.most_recent, Some(ts("2024-03-04T06:30:00Z")));
    }

    #[test]
    fn more_than_a_hundred_missed_is_many_but_still_runs_the_latest() {
        let s = utc("* * * * *");
        let t = times("2024-03-01T00:00:00Z", Some("2024-03-01T10:00:00Z"), None);
        let now = ts("2024-03-01T11:41:30Z");
        let r = unmet(&s, &t, now).expect("ok").expect("due");
        assert_eq!(r.missed, Missed::Many);
        assert_eq!(r.most_recent, Some(ts("2024-03-01T11:41:00Z")));
        // Exactly 100 is still "few".
        let now = ts("2024-03-01T11:40:30Z");
        assert_eq!(
            unmet(&s, &t, now).expect("ok").map(|r| r.missed),
            Some(Missed::Few)
        );
    }

    #[test]
    fn a_starting_deadline_bounds_how_far_back_to_look() {
        let s = utc("* * * * *");
        // Last ran hours ago; with a 200 s deadline only the last few minutes count.
        let t = times(
            "2024-03-01T00:00:00Z",
            Some("2024-03-01T08:00:00Z"),
            Some(200),
        );
        let now = ts("2024-03-01T11:41:30Z");
        let r = unmet(&s, &t, now).expect("ok").expect("due");
        assert_eq!(r.earliest, ts("2024-03-01T11:38:10Z"));
        assert_eq!(r.missed, Missed::Few);
        assert_eq!(r.most_recent, Some(ts("2024-03-01T11:41:00Z")));
        // A deadline shorter than the time since the start: nothing left to start.
        let s = utc("0 * * * *");
        let t = times(
            "2024-03-01T00:00:00Z",
            Some("2024-03-01T10:00:00Z"),
            Some(60),
        );
        assert_eq!(unmet(&s, &t, ts("2024-03-01T11:05:00Z")), Ok(None));
        // The requeue ignores the deadline: the next start is at 12:00.
        assert_eq!(
            until_next(&s, &t, ts("2024-03-01T11:05:00Z")),
            Some(Duration::from_millis(55 * 60_000 + 100))
        );
    }

    #[test]
    fn a_schedule_that_never_fires_is_invalid() {
        let s = utc("0 0 30 2 *");
        let t = times("2024-03-01T00:00:00Z", None, None);
        assert_eq!(
            most_recent(&s, &t, ts("2024-03-02T00:00:00Z"), true),
            Err(INVALID_INTERVAL)
        );
        assert_eq!(until_next(&s, &t, ts("2024-03-02T00:00:00Z")), None);
    }

    #[test]
    fn job_names_and_timestamps_match_upstream() {
        let t = ts("2024-03-01T12:05:00Z");
        assert_eq!(job_name("backup", t), "backup-28488245");
        assert_eq!(rfc3339(t, &TimeZone::UTC), "2024-03-01T12:05:00Z");
        let kolkata = jiff::tz::db().get("Asia/Kolkata").expect("tzdb");
        assert_eq!(rfc3339(t, &kolkata), "2024-03-01T17:35:00+05:30");
        assert_eq!(rfc1123z(t), "Fri, 01 Mar 2024 12:05:00 +0000");
    }
}
