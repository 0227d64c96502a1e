//! Arbitrary-precision integers and decimals between their CQL form (big-endian two's complement
//! bytes, and a scale for decimals) and decimal text, exactly: no float is ever involved.
//!
//! The conversions are quadratic in the number of digits, so inputs are bounded
//! ([`MAX_DIGITS`]); no real column holds numbers that long.

/// The most digits a varint or decimal written through the gateway may have.
pub const MAX_DIGITS: usize = 4096;
/// Largest |exponent| a decimal written through the gateway may have.
const MAX_EXPONENT: i64 = 100_000;

/// Two's complement big-endian bytes → decimal text (`-123`).
pub fn varint_to_string(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "0".into();
    }
    let negative = bytes[0] & 0x80 != 0;
    let mut mag: Vec<u8> = bytes.to_vec();
    if negative {
        negate(&mut mag);
    }
    // Base 10^9 limbs, least significant first.
    let mut limbs: Vec<u32> = vec![0];
    for &b in &mag {
        let mut carry = b as u64;
        for l in limbs.iter_mut() {
            let v = (*l as u64) * 256 + carry;
            *l = (v % 1_000_000_000) as u32;
            carry = v / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push((carry % 1_000_000_000) as u32);
            carry /= 1_000_000_000;
        }
    }
    while limbs.len() > 1 && limbs.last() == Some(&0) {
        limbs.pop();
    }
    let mut out = String::new();
    if negative && !(limbs.len() == 1 && limbs[0] == 0) {
        out.push('-');
    }
    let mut iter = limbs.iter().rev();
    if let Some(first) = iter.next() {
        out.push_str(&first.to_string());
    }
    for l in iter {
        out.push_str(&format!("{l:09}"));
    }
    out
}

/// Two's complement negation in place (big-endian).
fn negate(bytes: &mut [u8]) {
    let mut carry = true;
    for b in bytes.iter_mut().rev() {
        *b = !*b;
        if carry {
            let (v, c) = b.overflowing_add(1);
            *b = v;
            carry = c;
        }
    }
}

/// An optional sign and decimal digits → minimal two's complement big-endian bytes.
pub fn varint_from_digits(negative: bool, digits: &str) -> Result<Vec<u8>, String> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not an integer".into());
    }
    if digits.len() > MAX_DIGITS {
        return Err(format!("more than {MAX_DIGITS} digits"));
    }
    // Magnitude, little-endian base 256.
    let mut mag: Vec<u8> = vec![0];
    for d in digits.bytes() {
        let mut carry = (d - b'0') as u32;
        for b in mag.iter_mut() {
            let v = (*b as u32) * 10 + carry;
            *b = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            mag.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    while mag.len() > 1 && mag.last() == Some(&0) {
        mag.pop();
    }
    mag.reverse();
    // Room for the sign bit.
    if mag[0] & 0x80 != 0 {
        mag.insert(0, 0);
    }
    if negative && mag.iter().any(|b| *b != 0) {
        negate(&mut mag);
        // -2^(8k-1) does not need the extra byte: 0x0080 negated is 0xff80, shrink to 0x80.
        while mag.len() > 1 && mag[0] == 0xff && mag[1] & 0x80 != 0 {
            mag.remove(0);
        }
    }
    Ok(mag)
}

/// Integer text (`-42`, `+42`) → two's complement bytes.
pub fn parse_varint(text: &str) -> Result<Vec<u8>, String> {
    let (neg, digits) = split_sign(text.trim());
    varint_from_digits(neg, digits).map_err(|e| format!("{text:?} is {e}"))
}

fn split_sign(s: &str) -> (bool, &str) {
    match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    }
}

/// Decimal text (`-12.5`, `1e-3`, `12`) → (unscaled two's complement bytes, scale), exactly.
pub fn parse_decimal(text: &str) -> Result<(Vec<u8>, i32), String> {
    let bad = || format!("{text:?} is not a decimal number");
    let (neg, rest) = split_sign(text.trim());
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => {
            let e: i64 = rest[i + 1..].parse().map_err(|_| bad())?;
            (&rest[..i], e)
        }
        None => (rest, 0),
    };
    if exp.abs() > MAX_EXPONENT {
        return Err(format!("the exponent of {text:?} is out of range"));
    }
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    let digits = format!("{int}{frac}");
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let scale = frac.len() as i64 - exp;
    let scale = i32::try_from(scale).map_err(|_| bad())?;
    let bytes = varint_from_digits(neg, &digits).map_err(|e| format!("{text:?} has {e}"))?;
    Ok((bytes, scale))
}

/// (unscaled bytes, scale) → decimal text a JSON number can hold exactly (`-12.50`, `12E+3`).
pub fn decimal_to_string(bytes: &[u8], scale: i32) -> String {
    let int = varint_to_string(bytes);
    let (sign, digits) = match int.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", int.as_str()),
    };
    if scale <= 0 {
        if scale == 0 {
            return format!("{sign}{digits}");
        }
        return format!("{sign}{digits}E+{}", -(scale as i64));
    }
    let scale = scale as usize;
    if scale > 1000 {
        return format!("{sign}{digits}E-{scale}");
    }
    if digits.len() > scale {
        let (i, f) = digits.split_at(digits.len() - scale);
        format!("{sign}{i}.{f}")
    } else {
        format!("{sign}0.{}{digits}", "0".repeat(scale - digits.len()))
    }
}
