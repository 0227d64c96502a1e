//! Column values as JSON. pgoutput sends every value in its type's text form; this turns it into
//! the JSON a fetch of the same row returns (PostgreSQL's `row_to_json`): numbers as numbers,
//! booleans as booleans, json and jsonb as JSON, arrays of those as arrays, timestamps in ISO 8601
//! with a `T`, and everything else as a string.
//!
//! Types are known by their OID. User-defined types (enums, domains, composites) are not in the
//! table below and come out as strings, as does anything the table cannot parse.

use serde_json::{Number, Value};

/// Arrays nest at most this deep (PostgreSQL's own limit is 6).
const MAX_ARRAY_DEPTH: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Number,
    Json,
    Timestamp,
    TimestampTz,
    Text,
}

/// The kind of a scalar type, by OID.
fn scalar_kind(oid: u32) -> Kind {
    match oid {
        16 => Kind::Bool,
        // int8, int2, int4, oid, float4, float8, numeric
        20 | 21 | 23 | 26 | 700 | 701 | 1700 => Kind::Number,
        114 | 3802 => Kind::Json,
        1114 => Kind::Timestamp,
        1184 => Kind::TimestampTz,
        _ => Kind::Text,
    }
}

/// The element type of a built-in array type, by the array's OID.
fn array_element(oid: u32) -> Option<u32> {
    Some(match oid {
        1000 => 16,   // bool[]
        1005 => 21,   // int2[]
        1007 => 23,   // int4[]
        1016 => 20,   // int8[]
        1028 => 26,   // oid[]
        1021 => 700,  // float4[]
        1022 => 701,  // float8[]
        1231 => 1700, // numeric[]
        199 => 114,   // json[]
        3807 => 3802, // jsonb[]
        1115 => 1114, // timestamp[]
        1185 => 1184, // timestamptz[]
        1009 => 25,   // text[]
        1015 => 1043, // varchar[]
        1014 => 1042, // bpchar[]
        1002 => 18,   // char[]
        1003 => 19,   // name[]
        2951 => 2950, // uuid[]
        1182 => 1082, // date[]
        1183 => 1083, // time[]
        1270 => 1266, // timetz[]
        1187 => 1186, // interval[]
        1001 => 17,   // bytea[]
        1041 => 869,  // inet[]
        651 => 650,   // cidr[]
        _ => return None,
    })
}

/// The JSON form of a value of type `oid` given in its text form.
pub fn to_json(oid: u32, text: &str) -> Value {
    if let Some(elem) = array_element(oid) {
        return parse_array(text, elem).unwrap_or_else(|| Value::String(text.to_string()));
    }
    scalar(scalar_kind(oid), text)
}

fn scalar(kind: Kind, text: &str) -> Value {
    match kind {
        Kind::Bool => match text {
            "t" => Value::Bool(true),
            "f" => Value::Bool(false),
            other => Value::String(other.to_string()),
        },
        // NaN and the infinities are not JSON numbers; row_to_json writes them as strings too.
        Kind::Number => text
            .parse::<Number>()
            .map(Value::Number)
            .unwrap_or_else(|_| Value::String(text.to_string())),
        Kind::Json => {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
        }
        Kind::Timestamp => Value::String(iso_timestamp(text, false)),
        Kind::TimestampTz => Value::String(iso_timestamp(text, true)),
        Kind::Text => Value::String(text.to_string()),
    }
}

/// `2024-01-01 10:00:00.5+00` (the text form under `DateStyle = ISO`) →
/// `2024-01-01T10:00:00.5+00:00` (row_to_json's form). Anything else (infinity, BC dates) is
/// returned as it is.
fn iso_timestamp(text: &str, with_zone: bool) -> String {
    let b = text.as_bytes();
    let shaped = b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':'
        && b[..4].iter().all(u8::is_ascii_digit)
        && !text.ends_with(" BC");
    if !shaped {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 3);
    out.push_str(&text[..10]);
    out.push('T');
    out.push_str(&text[11..]);
    if with_zone {
        // A whole-hour offset is written `+HH`; row_to_json writes `+HH:MM`.
        let tail = &out[out.len().saturating_sub(3)..];
        let tb = tail.as_bytes();
        if tb.len() == 3
            && (tb[0] == b'+' || tb[0] == b'-')
            && tb[1].is_ascii_digit()
            && tb[2].is_ascii_digit()
        {
            out.push_str(":00");
        }
    }
    out
}

/// Parses an array literal (`{1,2}`, `{"a b",NULL}`, `{{1,2},{3,4}}`) into a JSON array whose
/// elements are mapped with the element type. `None` for a form it does not read (bounds
/// decorations such as `[0:1]={…}`).
fn parse_array(text: &str, elem: u32) -> Option<Value> {
    let mut p = ArrayParser {
        s: text.as_bytes(),
        i: 0,
        kind: scalar_kind(elem),
    };
    let v = p.array(0)?;
    (p.i == p.s.len()).then_some(v)
}

struct ArrayParser<'a> {
    s: &'a [u8],
    i: usize,
    kind: Kind,
}

impl ArrayParser<'_> {
    fn array(&mut self, depth: usize) -> Option<Value> {
        if depth >= MAX_ARRAY_DEPTH || self.s.get(self.i) != Some(&b'{') {
            return None;
        }
        self.i += 1;
        let mut items = Vec::new();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Some(Value::Array(items));
        }
        loop {
            let item = match self.s.get(self.i)? {
                b'{' => self.array(depth + 1)?,
                b'"' => {
                    let text = self.quoted()?;
                    scalar(self.kind, &text)
                }
                _ => {
                    let text = self.bare()?;
                    if text.eq_ignore_ascii_case("NULL") {
                        Value::Null
                    } else {
                        scalar(self.kind, &text)
                    }
                }
            };
            items.push(item);
            match self.s.get(self.i)? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(Value::Array(items));
                }
                _ => return None,
            }
        }
    }

    fn quoted(&mut self) -> Option<String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match *self.s.get(self.i)? {
                b'\\' => {
                    out.push(*self.s.get(self.i + 1)?);
                    self.i += 2;
                }
                b'"' => {
                    self.i += 1;
                    return String::from_utf8(out).ok();
                }
                c => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn bare(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(&c) = self.s.get(self.i) {
            if c == b',' || c == b'}' {
                break;
            }
            if c == b'{' || c == b'"' {
                return None;
            }
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()
            .map(|t| t.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn scalars_take_their_json_types() {
        assert_eq!(to_json(23, "42"), json!(42));
        assert_eq!(
            to_json(20, "-9007199254740993").to_string(),
            "-9007199254740993"
        );
        assert_eq!(to_json(1700, "10.50").to_string(), "10.50");
        assert_eq!(to_json(1700, "NaN"), json!("NaN"));
        assert_eq!(to_json(701, "Infinity"), json!("Infinity"));
        assert_eq!(to_json(701, "1e+20").to_string(), "1e+20");
        assert_eq!(to_json(16, "t"), json!(true));
        assert_eq!(to_json(16, "f"), json!(false));
        assert_eq!(
            to_json(3802, r#"{"a": [1, null]}"#),
            json!({"a": [1, null]})
        );
        assert_eq!(to_json(114, "[1, 2]"), json!([1, 2]));
        assert_eq!(to_json(25, "42"), json!("42"));
        assert_eq!(
            to_json(2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
        );
        assert_eq!(to_json(99_999, "happy"), json!("happy"));
    }

    #[test]
    fn timestamps_are_written_as_row_to_json_writes_them() {
        assert_eq!(
            to_json(1184, "2024-01-01 00:00:00+00"),
            json!("2024-01-01T00:00:00+00:00")
        );
        assert_eq!(
            to_json(1184, "2024-01-01 10:00:00.25+05:30"),
            json!("2024-01-01T10:00:00.25+05:30")
        );
        assert_eq!(
            to_json(1184, "2024-01-01 10:00:00-08"),
            json!("2024-01-01T10:00:00-08:00")
        );
        assert_eq!(
            to_json(1114, "2024-01-01 10:00:00.123456"),
            json!("2024-01-01T10:00:00.123456")
        );
        assert_eq!(to_json(1184, "infinity"), json!("infinity"));
        assert_eq!(
            to_json(1114, "0044-03-15 00:00:00 BC"),
            json!("0044-03-15 00:00:00 BC")
        );
    }

    #[test]
    fn arrays_are_parsed_with_their_element_type() {
        assert_eq!(to_json(1007, "{1,2,NULL}"), json!([1, 2, null]));
        assert_eq!(
            to_json(1009, r#"{red,"blue green","a\"b",NULL,"NULL"}"#),
            json!(["red", "blue green", "a\"b", null, "NULL"])
        );
        assert_eq!(to_json(1009, "{}"), json!([]));
        assert_eq!(to_json(1007, "{{1,2},{3,4}}"), json!([[1, 2], [3, 4]]));
        assert_eq!(to_json(3807, r#"{"{\"a\": 1}"}"#), json!([{"a": 1}]));
        assert_eq!(to_json(1000, "{t,f}"), json!([true, false]));
        // Bounds decorations and broken literals stay text.
        assert_eq!(to_json(1007, "[0:1]={1,2}"), json!("[0:1]={1,2}"));
        assert_eq!(to_json(1007, "{1,2"), json!("{1,2"));
        assert_eq!(to_json(1007, "{{{{{{{1}}}}}}}"), json!("{{{{{{{1}}}}}}}"));
    }
}
