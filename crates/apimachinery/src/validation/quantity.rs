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
}
