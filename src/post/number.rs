//! Exact decimals for post-processing. [`Num`] holds any JSON number (or numeric string) exactly,
//! however many digits it has, so grouping, ordering, min/max and dedup never lose precision.
//! [`Total`] sums exactly in an `i128` mantissa with a decimal scale, and falls back to `f64`
//! only when a total no longer fits.

use std::cmp::Ordering;
use std::str::FromStr;

use serde_json::Value;

/// Exponents are clamped here. No database value comes close; the clamp only keeps absurd input
/// such as `1e99999999999999999999` from overflowing the arithmetic.
const EXP_LIMIT: i64 = 1_000_000_000_000;
/// Beyond this many positions from the decimal point a number is rendered with an exponent, so
/// `1e400` does not become a 400-digit string.
const MAX_PLAIN_DIGITS: i64 = 60;
/// Largest decimal scale (either sign) an exact total keeps; wider values go to `f64`.
const MAX_SCALE: i64 = 200;
/// Fractional digits of an average.
const AVG_FRACTION_DIGITS: i64 = 12;

/// An exact decimal: `(-1)^neg × 0.d1d2…dn × 10^exp`, with no leading or trailing zero digit and
/// zero as no digits at all. The form is canonical (`1`, `1.0` and `10e-1` are the same value),
/// so the derived `Eq` and `Hash` compare values exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Num {
    neg: bool,
    digits: Vec<u8>,
    exp: i64,
}

impl Num {
    pub(super) fn zero() -> Num {
        Num {
            neg: false,
            digits: Vec::new(),
            exp: 0,
        }
    }

    /// Builds the canonical form from digits that may have leading or trailing zeros.
    fn from_parts(neg: bool, mut digits: Vec<u8>, exp: i64) -> Num {
        let lead = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..lead);
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            return Num::zero();
        }
        let exp = exp.saturating_sub(lead as i64).clamp(-EXP_LIMIT, EXP_LIMIT);
        Num { neg, digits, exp }
    }

    /// Parses decimal text: an optional sign, digits with an optional point, an optional
    /// exponent. This is the JSON number grammar, slightly relaxed (`+1`, `.5`, `007`) because
    /// numeric strings come from many sources; `NaN`, `Infinity` and empty text are not numbers.
    pub(super) fn parse(text: &str) -> Option<Num> {
        let b = text.as_bytes();
        let mut i = 0;
        let neg = match b.first() {
            Some(b'-') => {
                i = 1;
                true
            }
            Some(b'+') => {
                i = 1;
                false
            }
            _ => false,
        };
        let mut digits = Vec::new();
        let mut int_len: i64 = 0;
        while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
            digits.push(d - b'0');
            int_len += 1;
            i += 1;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
                digits.push(d - b'0');
                i += 1;
            }
        }
        if digits.is_empty() {
            return None;
        }
        let mut e: i64 = 0;
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            let e_neg = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let start = i;
            while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
                e = (e * 10 + i64::from(d - b'0')).min(EXP_LIMIT);
                i += 1;
            }
            if i == start {
                return None;
            }
            if e_neg {
                e = -e;
            }
        }
        if i != b.len() {
            return None;
        }
        Some(Num::from_parts(neg, digits, int_len.saturating_add(e)))
    }

    /// A JSON number, or a string holding one (surrounding whitespace allowed). Anything else,
    /// including `null`, is not a number.
    pub(super) fn from_value(v: &Value) -> Option<Num> {
        match v {
            Value::Number(n) => Num::parse(&n.to_string()),
            Value::String(s) => Num::parse(s.trim()),
            _ => None,
        }
    }

    /// The largest integer not above the value, if it fits an `i64`.
    pub(super) fn floor_i64(&self) -> Option<i64> {
        if self.digits.is_empty() {
            return Some(0);
        }
        if self.exp > 18 {
            return None;
        }
        let int_digits = usize::try_from(self.exp.max(0)).ok()?;
        let mut v: i64 = 0;
        for k in 0..int_digits {
            let d = i64::from(self.digits.get(k).copied().unwrap_or(0));
            v = v.checked_mul(10)?.checked_add(d)?;
        }
        if self.neg {
            v = -v;
            if self.digits.len() > int_digits {
                v = v.checked_sub(1)?;
            }
        }
        Some(v)
    }

    /// Rounds to `frac` fractional digits, halves away from zero.
    pub(super) fn round(&self, frac: i64) -> Num {
        let keep = self.exp.saturating_add(frac);
        // Below half a unit of the last kept digit: the whole value rounds to zero.
        let Ok(keep) = usize::try_from(keep) else {
            return Num::zero();
        };
        let Some(&next) = self.digits.get(keep) else {
            return self.clone();
        };
        let mut digits = self.digits[..keep].to_vec();
        let mut exp = self.exp;
        if next >= 5 {
            let mut carry = true;
            for d in digits.iter_mut().rev() {
                if *d == 9 {
                    *d = 0;
                } else {
                    *d += 1;
                    carry = false;
                    break;
                }
            }
            if carry {
                digits.insert(0, 1);
                exp += 1;
            }
        }
        Num::from_parts(self.neg, digits, exp)
    }

    /// Plain decimal text without trailing zeros (`3`, `3.75`, `-0.001`); exponent notation
    /// only for values far from the decimal point.
    pub(super) fn render(&self) -> String {
        if self.digits.is_empty() {
            return "0".to_string();
        }
        let ds: String = self.digits.iter().map(|d| char::from(b'0' + d)).collect();
        let n = ds.len();
        let mut s = String::with_capacity(n + 4);
        if self.neg {
            s.push('-');
        }
        match usize::try_from(self.exp) {
            Ok(e) if self.exp > 0 && self.exp <= MAX_PLAIN_DIGITS => {
                if n <= e {
                    s.push_str(&ds);
                    s.push_str(&"0".repeat(e - n));
                } else {
                    s.push_str(&ds[..e]);
                    s.push('.');
                    s.push_str(&ds[e..]);
                }
            }
            _ if self.exp <= 0 && self.exp > -MAX_PLAIN_DIGITS => {
                s.push_str("0.");
                s.push_str(&"0".repeat(self.exp.unsigned_abs() as usize));
                s.push_str(&ds);
            }
            _ => {
                s.push_str(&ds[..1]);
                if n > 1 {
                    s.push('.');
                    s.push_str(&ds[1..]);
                }
                s.push_str(&format!("e{}", self.exp - 1));
            }
        }
        s
    }

    /// The value as a JSON number (never a string).
    pub(super) fn to_json(&self) -> Value {
        // `render` always produces valid JSON number text, so the `Null` arm is unreachable;
        // it exists only so no input can cause a panic.
        serde_json::Number::from_str(&self.render()).map_or(Value::Null, Value::Number)
    }

    fn to_f64(&self) -> f64 {
        self.render().parse().unwrap_or(f64::NAN)
    }
}

impl Ord for Num {
    fn cmp(&self, other: &Num) -> Ordering {
        let class = |n: &Num| match (n.digits.is_empty(), n.neg) {
            (true, _) => 1,
            (false, true) => 0,
            (false, false) => 2,
        };
        let by_class = class(self).cmp(&class(other));
        if by_class != Ordering::Equal || self.digits.is_empty() {
            return by_class;
        }
        // Same sign: a larger exponent is a larger magnitude; with equal exponents the digit
        // strings compare lexicographically (no trailing zeros, so a prefix is the smaller).
        let magnitude = self
            .exp
            .cmp(&other.exp)
            .then_with(|| self.digits.cmp(&other.digits));
        if self.neg {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

impl PartialOrd for Num {
    fn partial_cmp(&self, other: &Num) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `m × 10^-scale`: exact for every total that fits 38 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Dec {
    m: i128,
    scale: i32,
}

impl Dec {
    fn from_num(n: &Num) -> Option<Dec> {
        if n.digits.len() > 38 {
            return None;
        }
        let mut m: i128 = 0;
        for &d in &n.digits {
            m = m.checked_mul(10)?.checked_add(i128::from(d))?;
        }
        let scale = n.digits.len() as i64 - n.exp;
        if scale.abs() > MAX_SCALE {
            return None;
        }
        Some(Dec {
            m: if n.neg { -m } else { m },
            scale: i32::try_from(scale).ok()?,
        })
    }

    fn to_num(self) -> Num {
        let digits: Vec<u8> = self
            .m
            .unsigned_abs()
            .to_string()
            .bytes()
            .map(|b| b - b'0')
            .collect();
        let exp = digits.len() as i64 - i64::from(self.scale);
        Num::from_parts(self.m < 0, digits, exp)
    }

    fn checked_add(self, other: Dec) -> Option<Dec> {
        // A zero term keeps the other side as it is: aligning scales for it could overflow
        // for no reason.
        if self.m == 0 {
            return Some(other);
        }
        if other.m == 0 {
            return Some(self);
        }
        let scale = self.scale.max(other.scale);
        let a = self.m.checked_mul(pow10(scale - self.scale)?)?;
        let b = other.m.checked_mul(pow10(scale - other.scale)?)?;
        Some(Dec {
            m: a.checked_add(b)?,
            scale,
        })
    }
}

fn pow10(k: i32) -> Option<i128> {
    10i128.checked_pow(u32::try_from(k).ok()?)
}

/// A running sum: exact while it fits a [`Dec`], `f64` after.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Total {
    Exact(Dec),
    Approx(f64),
}

impl Total {
    pub(super) fn zero() -> Total {
        Total::Exact(Dec { m: 0, scale: 0 })
    }

    pub(super) fn of(n: &Num) -> Total {
        Dec::from_num(n).map_or_else(|| Total::Approx(n.to_f64()), Total::Exact)
    }

    pub(super) fn add(self, other: Total) -> Total {
        if let (Total::Exact(a), Total::Exact(b)) = (self, other) {
            if let Some(sum) = a.checked_add(b) {
                return Total::Exact(sum);
            }
        }
        Total::Approx(self.to_f64() + other.to_f64())
    }

    fn to_f64(self) -> f64 {
        match self {
            Total::Exact(d) => d.to_num().to_f64(),
            Total::Approx(f) => f,
        }
    }

    /// The total as a number; `None` when the `f64` fallback overflowed to infinity.
    pub(super) fn to_num(self) -> Option<Num> {
        match self {
            Total::Exact(d) => Some(d.to_num()),
            Total::Approx(f) => f64_num(f),
        }
    }

    /// `self / count` rounded to [`AVG_FRACTION_DIGITS`]; `None` for a zero count or an
    /// infinite total.
    pub(super) fn mean(self, count: u64) -> Option<Num> {
        if count == 0 {
            return None;
        }
        match self {
            Total::Exact(d) => {
                // Long division of |m| by count gives as many digits as wanted, exactly; one
                // digit past the last kept one is enough to round, because later digits can
                // only add to it and rounding is half-up on the magnitude.
                let n = u128::from(count);
                let a = d.m.unsigned_abs();
                let mut digits: Vec<u8> = (a / n).to_string().bytes().map(|b| b - b'0').collect();
                let mut r = a % n;
                let scale = i64::from(d.scale);
                let extra = (AVG_FRACTION_DIGITS + 1 - scale).max(1);
                for _ in 0..extra {
                    r *= 10;
                    digits.push(u8::try_from(r / n).unwrap_or(0));
                    r %= n;
                }
                let exp = digits.len() as i64 - scale - extra;
                Some(Num::from_parts(d.m < 0, digits, exp).round(AVG_FRACTION_DIGITS))
            }
            Total::Approx(f) => f64_num(f / count as f64).map(|n| n.round(AVG_FRACTION_DIGITS)),
        }
    }
}

/// `f64` Display never uses an exponent, so its text parses back as an exact decimal.
fn f64_num(f: f64) -> Option<Num> {
    if f.is_finite() {
        Num::parse(&format!("{f}"))
    } else {
        None
    }
}
