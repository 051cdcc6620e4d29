//! Just enough of `resource.Quantity` for validation: parse, compare, and print in upstream's
//! canonical form (`Quantity.String()`), which resource messages quote
//! (`must be less than or equal to cpu limit of 500m`).
//!
//! Values are held as an `i128` count of nano-units (upstream's precision for decimal
//! quantities), which covers every suffix up to `Ei`/`E`; larger values saturate.

use std::cmp::Ordering;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

/// A parsed quantity.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Quantity {
    nanos: i128,
    format: Format,
}

const NANO: i128 = 1_000_000_000;

impl Quantity {
    /// `resource.ParseQuantity`; `None` for text upstream would reject (which the typed
    /// round-trip normally already did).
    pub(crate) fn parse(s: &str) -> Option<Quantity> {
        let s = s.trim();
        let (negative, rest) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(num_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        // Digits as an exact integer with a decimal scale.
        let digits = format!("{int_part}{frac_part}");
        let mut mantissa: i128 = 0;
        for d in digits.bytes() {
            mantissa = mantissa
                .saturating_mul(10)
                .saturating_add(i128::from(d - b'0'));
        }
        let (suffix_scale10, pow2, format) = match suffix {
            "" => (0, 0, Format::DecimalSI),
            "n" => (-9, 0, Format::DecimalSI),
            "u" => (-6, 0, Format::DecimalSI),
            "m" => (-3, 0, Format::DecimalSI),
            "k" => (3, 0, Format::DecimalSI),
            "M" => (6, 0, Format::DecimalSI),
            "G" => (9, 0, Format::DecimalSI),
            "T" => (12, 0, Format::DecimalSI),
            "P" => (15, 0, Format::DecimalSI),
            "E" => (18, 0, Format::DecimalSI),
            "Ki" => (0, 10, Format::BinarySI),
            "Mi" => (0, 20, Format::BinarySI),
            "Gi" => (0, 30, Format::BinarySI),
            "Ti" => (0, 40, Format::BinarySI),
            "Pi" => (0, 50, Format::BinarySI),
            "Ei" => (0, 60, Format::BinarySI),
            e if e.starts_with(['e', 'E']) => {
                (e[1..].parse::<i64>().ok()?, 0, Format::DecimalExponent)
            }
            _ => return None,
        };
        let scale10 = suffix_scale10 - i64::try_from(frac_part.len()).ok()?;
        // nanos = mantissa * 2^pow2 * 10^(scale10 + 9), rounded up like upstream's
        // nano-precision rounding.
        let mut value = mantissa.saturating_mul(1i128 << pow2);
        let exp = scale10 + 9;
        if exp >= 0 {
            for _ in 0..exp.min(60) {
                value = value.saturating_mul(10);
            }
        } else {
            for _ in 0..(-exp).min(60) {
                let rem = value % 10;
                value = value / 10 + i128::from(rem != 0);
            }
        }
        Some(Quantity {
            nanos: if negative { -value } else { value },
            format,
        })
    }

    pub(crate) fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    pub(crate) fn is_positive(&self) -> bool {
        self.nanos > 0
    }

    /// `Quantity.Value()`: the whole value, rounded away from zero.
    pub(crate) fn whole_value(&self) -> i128 {
        let whole = self.nanos / NANO;
        if self.nanos % NANO == 0 {
            whole
        } else {
            whole + self.nanos.signum()
        }
    }

    /// Whether the value is a whole number (`MilliValue() % 1000 == 0`).
    pub(crate) fn is_integer(&self) -> bool {
        self.nanos % NANO == 0
    }

    /// `Quantity.String()`: upstream's canonical form.
    pub(crate) fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".to_string();
        }
        let mut format = self.format;
        if format == Format::BinarySI && (self.nanos.abs() < 1024 * NANO || self.nanos % NANO != 0)
        {
            format = Format::DecimalSI;
        }
        if format == Format::BinarySI {
            let mut n = self.nanos / NANO;
            let mut exp = 0;
            while exp < 6 && n % 1024 == 0 {
                n /= 1024;
                exp += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp];
            return format!("{n}{suffix}");
        }
        // Decimal: strip trailing zeros, then move the exponent down to a multiple of 3.
        let mut mantissa = self.nanos;
        let mut exp: i64 = -9;
        while mantissa % 10 == 0 {
            mantissa /= 10;
            exp += 1;
        }
        while exp.rem_euclid(3) != 0 {
            mantissa *= 10;
            exp -= 1;
        }
        let suffix = match (format, exp) {
            (Format::DecimalExponent, 0) => String::new(),
            (Format::DecimalExponent, e) => format!("e{e}"),
            (_, -9) => "n".into(),
            (_, -6) => "u".into(),
            (_, -3) => "m".into(),
            (_, 0) => String::new(),
            (_, 3) => "k".into(),
            (_, 6) => "M".into(),
            (_, 9) => "G".into(),
            (_, 12) => "T".into(),
            (_, 15) => "P".into(),
            (_, 18) => "E".into(),
            (_, e) => format!("e{e}"),
        };
        format!("{mantissa}{suffix}")
    }
}

/// Rounds `nanos / unit` away from zero into an `i64` (saturating).
fn scaled(nanos: i128, unit: i128) -> i64 {
    let q = nanos / unit + i128::from(nanos % unit != 0) * nanos.signum();
    i64::try_from(q).unwrap_or(if q > 0 { i64::MAX } else { i64::MIN })
}

/// `Quantity.Value()` of a quantity's text: the whole value, rounded up (bytes, counts);
/// 0 for text that does not parse.
pub fn value(text: &str) -> i64 {
    Quantity::parse(text).map_or(0, |q| scaled(q.nanos, NANO))
}

/// `Quantity.MilliValue()` of a quantity's text, rounded up (CPU); 0 for text that does
/// not parse.
pub fn milli_value(text: &str) -> i64 {
    Quantity::parse(text).map_or(0, |q| scaled(q.nanos, 1_000_000))
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.nanos.cmp(&other.nanos))
    }
}

/// [`go_value`] after `Quantity.String()` has cached the canonical text in `s`, which happens
/// when upstream formats the same quantity into the error's detail before reporting it.
pub(crate) fn go_value_cached(text: &str) -> String {
    let rendered = go_value(text);
    let canonical = Quantity::parse(text)
        .map(|q| q.canonical())
        .unwrap_or_default();
    match (rendered.find(", s:"), rendered.find(", Format:")) {
        (Some(a), Some(b)) if a < b => {
            format!("{}, s:{canonical:?}{}", &rendered[..a], &rendered[b..])
        }
        _ => rendered,
    }
}

/// Go's `%#v` of a `resource.Quantity` exactly as `resource.ParseQuantity` leaves it, which is
/// what `field.Invalid` prints when handed a quantity by value (`Quantity.String` has a
/// pointer receiver, so the struct itself is dumped):
/// `resource.Quantity{i:resource.int64Amount{value:-1, scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:"-1", Format:"DecimalSI"}`.
/// `s` is only filled when the text was already canonical, as upstream's fast path does.
/// Values too large for upstream's int64 fast path live in an `*inf.Dec` whose address Go
/// prints; a fixed placeholder stands in for it.
pub(crate) fn go_value(text: &str) -> String {
    let render = |value: i64, scale: i64, s: &str, format: &str| {
        format!(
            "resource.Quantity{{i:resource.int64Amount{{value:{value}, scale:{scale}}}, d:resource.infDecAmount{{Dec:(*inf.Dec)(nil)}}, s:{s:?}, Format:{format:?}}}"
        )
    };
    if text == "0" {
        return render(0, 0, "0", "DecimalSI");
    }
    let slow = |format: &str| {
        format!(
            "resource.Quantity{{i:resource.int64Amount{{value:0, scale:0}}, d:resource.infDecAmount{{Dec:(*inf.Dec)(0xc000000000)}}, s:\"\", Format:{format:?}}}"
        )
    };
    let (positive, rest) = match text.as_bytes().first() {
        Some(b'-') => (false, &text[1..]),
        Some(b'+') => (true, &text[1..]),
        _ => (true, text),
    };
    let rest = rest.trim_start_matches('0');
    let num_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let num = match &rest[..num_end] {
        "" => "0",
        n => n,
    };
    let mut after = &rest[num_end..];
    let mut denom = "";
    if let Some(d) = after.strip_prefix('.') {
        let end = d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len());
        denom = &d[..end];
        after = &d[end..];
    }
    let (exponent, format): (i64, &str) = match after {
        "" => (0, "DecimalSI"),
        "n" => (-9, "DecimalSI"),
        "u" => (-6, "DecimalSI"),
        "m" => (-3, "DecimalSI"),
        "k" => (3, "DecimalSI"),
        "M" => (6, "DecimalSI"),
        "G" => (9, "DecimalSI"),
        "T" => (12, "DecimalSI"),
        "P" => (15, "DecimalSI"),
        "E" => (18, "DecimalSI"),
        "Ki" => (10, "BinarySI"),
        "Mi" => (20, "BinarySI"),
        "Gi" => (30, "BinarySI"),
        "Ti" => (40, "BinarySI"),
        "Pi" => (50, "BinarySI"),
        "Ei" => (60, "BinarySI"),
        e if e.starts_with(['e', 'E']) => (e[1..].parse().unwrap_or(0), "DecimalExponent"),
        _ => (0, "DecimalSI"),
    };
    let digits = i64::try_from(num.len() + denom.len()).unwrap_or(i64::MAX);
    let (mut scale, mantissa, precision) = if format == "BinarySI" {
        if denom.is_empty() {
            let precision =
                15 - i64::try_from(num.len()).unwrap_or(i64::MAX) - exponent * 3 / 10 - 1;
            (0, 1i64 << exponent, precision)
        } else {
            (0, 1, -1)
        }
    } else {
        (exponent, 1, 18 - digits)
    };
    if precision < 0 {
        return slow(format);
    }
    scale -= i64::try_from(denom.len()).unwrap_or(i64::MAX);
    if scale < -9 {
        return slow(format);
    }
    let shifted = format!("{num}{denom}");
    let Some(result) = shifted
        .parse::<i64>()
        .ok()
        .and_then(|v| v.checked_mul(mantissa).map(|r| (v, r)))
    else {
        return slow(format);
    };
    let (value, result) = result;
    let result = if positive { result } else { -result };
    let canonical = if format == "BinarySI" {
        exponent % 10 == 0 && value & 0x07 != 0
    } else {
        scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0')
    };
    render(result, scale, if canonical { text } else { "" }, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        let cases = [
            ("500m", "500m"),
            ("0.5", "500m"),
            ("1000m", "1"),
            ("1000", "1k"),
            ("100Mi", "100Mi"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("512", "512"),
            ("1e3", "1e3"),
            ("128974848", "128974848"),
            ("0", "0"),
            ("-1", "-1"),
        ];
        for (input, want) in cases {
            let q = Quantity::parse(input);
            assert_eq!(q.map(|q| q.canonical()), Some(want.to_string()), "{input}");
        }
        assert!(Quantity::parse("1x").is_none());
        assert!(Quantity::parse("500m") < Quantity::parse("1"));
        assert!(Quantity::parse("1Gi") > Quantity::parse("1G"));
    }

    #[test]
    fn go_values_as_parsed() {
        let dump = |v: i64, sc: i64, s: &str, f: &str| {
            format!(
                "resource.Quantity{{i:resource.int64Amount{{value:{v}, scale:{sc}}}, d:resource.infDecAmount{{Dec:(*inf.Dec)(nil)}}, s:{s:?}, Format:{f:?}}}"
            )
        };
        let cases = [
            ("-1", dump(-1, 0, "-1", "DecimalSI")),
            ("0", dump(0, 0, "0", "DecimalSI")),
            ("1.5", dump(15, -1, "", "DecimalSI")),
            ("-500m", dump(-500, -3, "-500m", "DecimalSI")),
            ("1000", dump(1000, 0, "", "DecimalSI")),
            ("2Gi", dump(2147483648, 0, "2Gi", "BinarySI")),
            ("8Gi", dump(8589934592, 0, "", "BinarySI")),
            ("0.5", dump(5, -1, "", "DecimalSI")),
        ];
        for (text, want) in cases {
            assert_eq!(go_value(text), want, "{text}");
        }
    }
}
