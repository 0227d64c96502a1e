//! CQL column types as the gateway reasons about them: parsed from the type text of
//! `system_schema.columns` (`frozen<map<text, list<int>>>`, `tuple<int, text>`, a UDT name) and
//! converted from the driver's prepared-statement metadata. Both give one [`CqlType`], which the
//! value conversions in [`super::values`] follow in both directions.
//!
//! `frozen<…>` is dropped: it changes how a value is stored, never what it looks like.

use std::collections::HashMap;
use std::sync::Arc;

use scylla::frame::response::result::{CollectionType, ColumnType, NativeType};

/// Deepest nesting of a type; deeper text is refused instead of recursed into.
const MAX_TYPE_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CqlType {
    Ascii,
    Boolean,
    Blob,
    Counter,
    Date,
    Decimal,
    Double,
    Duration,
    Float,
    Int,
    BigInt,
    Text,
    Timestamp,
    Inet,
    SmallInt,
    TinyInt,
    Time,
    Timeuuid,
    Uuid,
    Varint,
    List(Box<CqlType>),
    Set(Box<CqlType>),
    Map(Box<CqlType>, Box<CqlType>),
    Tuple(Vec<CqlType>),
    Vector(Box<CqlType>, u16),
    Udt(Arc<Udt>),
    /// A custom (Java class) type. Its values are read as blobs and cannot be written.
    Custom(String),
}

/// A user-defined type: where it lives (the driver checks both names when binding) and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Udt {
    pub keyspace: String,
    pub name: String,
    pub fields: Vec<(String, CqlType)>,
}

impl CqlType {
    /// Whether values of this type are text (maps keyed by text become JSON objects).
    pub fn is_text(&self) -> bool {
        matches!(self, CqlType::Text | CqlType::Ascii)
    }

    /// The type as CQL writes it (without `frozen`).
    pub fn cql_name(&self) -> String {
        match self {
            CqlType::List(t) => format!("list<{}>", t.cql_name()),
            CqlType::Set(t) => format!("set<{}>", t.cql_name()),
            CqlType::Map(k, v) => format!("map<{}, {}>", k.cql_name(), v.cql_name()),
            CqlType::Tuple(ts) => format!(
                "tuple<{}>",
                ts.iter()
                    .map(CqlType::cql_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            CqlType::Vector(t, n) => format!("vector<{}, {n}>", t.cql_name()),
            CqlType::Udt(u) => u.name.clone(),
            CqlType::Custom(c) => format!("'{c}'"),
            native => native_name(native).to_string(),
        }
    }

    /// Parses the type text of `system_schema.columns.type`. `udts` resolves user-defined type
    /// names of `keyspace` (from `system_schema.types`).
    pub fn parse(
        text: &str,
        keyspace: &str,
        udts: &HashMap<String, Arc<Udt>>,
    ) -> Result<Self, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
            keyspace,
            udts,
        };
        let t = p.ty(0)?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("unexpected text after the type in {text:?}"));
        }
        Ok(t)
    }

    /// The type of a bind marker or result column as the driver describes it.
    pub fn from_driver(t: &ColumnType<'_>) -> CqlType {
        match t {
            ColumnType::Native(n) => from_native(n),
            ColumnType::Collection { typ, .. } => match typ {
                CollectionType::List(e) => CqlType::List(Box::new(Self::from_driver(e))),
                CollectionType::Set(e) => CqlType::Set(Box::new(Self::from_driver(e))),
                CollectionType::Map(k, v) => CqlType::Map(
                    Box::new(Self::from_driver(k)),
                    Box::new(Self::from_driver(v)),
                ),
                _ => CqlType::Custom("unknown collection".into()),
            },
            ColumnType::Vector { typ, dimensions } => {
                CqlType::Vector(Box::new(Self::from_driver(typ)), *dimensions)
            }
            ColumnType::UserDefinedType { definition, .. } => CqlType::Udt(Arc::new(Udt {
                keyspace: definition.keyspace.to_string(),
                name: definition.name.to_string(),
                fields: definition
                    .field_types
                    .iter()
                    .map(|(n, t)| (n.to_string(), Self::from_driver(t)))
                    .collect(),
            })),
            ColumnType::Tuple(ts) => CqlType::Tuple(ts.iter().map(Self::from_driver).collect()),
            _ => CqlType::Custom("unknown".into()),
        }
    }
}

fn from_native(n: &NativeType) -> CqlType {
    match n {
        NativeType::Ascii => CqlType::Ascii,
        NativeType::Boolean => CqlType::Boolean,
        NativeType::Blob => CqlType::Blob,
        NativeType::Counter => CqlType::Counter,
        NativeType::Date => CqlType::Date,
        NativeType::Decimal => CqlType::Decimal,
        NativeType::Double => CqlType::Double,
        NativeType::Duration => CqlType::Duration,
        NativeType::Float => CqlType::Float,
        NativeType::Int => CqlType::Int,
        NativeType::BigInt => CqlType::BigInt,
        NativeType::Text => CqlType::Text,
        NativeType::Timestamp => CqlType::Timestamp,
        NativeType::Inet => CqlType::Inet,
        NativeType::SmallInt => CqlType::SmallInt,
        NativeType::TinyInt => CqlType::TinyInt,
        NativeType::Time => CqlType::Time,
        NativeType::Timeuuid => CqlType::Timeuuid,
        NativeType::Uuid => CqlType::Uuid,
        NativeType::Varint => CqlType::Varint,
        _ => CqlType::Custom("unknown native type".into()),
    }
}

fn native_name(t: &CqlType) -> &'static str {
    match t {
        CqlType::Ascii => "ascii",
        CqlType::Boolean => "boolean",
        CqlType::Blob => "blob",
        CqlType::Counter => "counter",
        CqlType::Date => "date",
        CqlType::Decimal => "decimal",
        CqlType::Double => "double",
        CqlType::Duration => "duration",
        CqlType::Float => "float",
        CqlType::Int => "int",
        CqlType::BigInt => "bigint",
        CqlType::Text => "text",
        CqlType::Timestamp => "timestamp",
        CqlType::Inet => "inet",
        CqlType::SmallInt => "smallint",
        CqlType::TinyInt => "tinyint",
        CqlType::Time => "time",
        CqlType::Timeuuid => "timeuuid",
        CqlType::Uuid => "uuid",
        CqlType::Varint => "varint",
        _ => "composite",
    }
}

fn native_by_name(name: &str) -> Option<CqlType> {
    Some(match name {
        "ascii" => CqlType::Ascii,
        "boolean" => CqlType::Boolean,
        "blob" => CqlType::Blob,
        "counter" => CqlType::Counter,
        "date" => CqlType::Date,
        "decimal" => CqlType::Decimal,
        "double" => CqlType::Double,
        "duration" => CqlType::Duration,
        "float" => CqlType::Float,
        "int" => CqlType::Int,
        "bigint" => CqlType::BigInt,
        "text" | "varchar" => CqlType::Text,
        "timestamp" => CqlType::Timestamp,
        "inet" => CqlType::Inet,
        "smallint" => CqlType::SmallInt,
        "tinyint" => CqlType::TinyInt,
        "time" => CqlType::Time,
        "timeuuid" => CqlType::Timeuuid,
        "uuid" => CqlType::Uuid,
        "varint" => CqlType::Varint,
        _ => return None,
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    keyspace: &'a str,
    udts: &'a HashMap<String, Arc<Udt>>,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at offset {}", c as char, self.i))
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    /// A name: bare (letters, digits, `_`), double-quoted (`""` escapes a quote) or, for custom
    /// types, single-quoted. Bare names are case-insensitive and read in lower case.
    fn name(&mut self) -> Result<(String, bool), String> {
        self.ws();
        match self.s.get(self.i) {
            Some(&q @ (b'"' | b'\'')) => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.i) {
                        None => return Err("unterminated quoted name".into()),
                        Some(&c) if c == q => {
                            if self.s.get(self.i + 1) == Some(&q) {
                                out.push(q);
                                self.i += 2;
                            } else {
                                self.i += 1;
                                break;
                            }
                        }
                        Some(&c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
                let s = String::from_utf8(out).map_err(|_| "a name is not UTF-8".to_string())?;
                Ok((s, q == b'\''))
            }
            _ => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
                {
                    self.i += 1;
                }
                if start == self.i {
                    return Err(format!("expected a type name at offset {start}"));
                }
                let s = std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default();
                Ok((s.to_ascii_lowercase(), false))
            }
        }
    }

    fn ty(&mut self, depth: usize) -> Result<CqlType, String> {
        if depth > MAX_TYPE_DEPTH {
            return Err("the type is nested too deeply".into());
        }
        let (name, custom) = self.name()?;
        if custom {
            return Ok(CqlType::Custom(name));
        }
        let args = |p: &mut Self, n: usize| -> Result<Vec<CqlType>, String> {
            p.eat(b'<')?;
            let mut out = vec![p.ty(depth + 1)?];
            while p.peek() == Some(b',') && (n == 0 || out.len() < n) {
                p.i += 1;
                out.push(p.ty(depth + 1)?);
            }
            p.eat(b'>')?;
            if n != 0 && out.len() != n {
                return Err(format!("expected {n} type arguments"));
            }
            Ok(out)
        };
        let is_generic = self.peek() == Some(b'<');
        Ok(match name.as_str() {
            "frozen" if is_generic => args(self, 1)?.remove(0),
            "list" if is_generic => CqlType::List(Box::new(args(self, 1)?.remove(0))),
            "set" if is_generic => CqlType::Set(Box::new(args(self, 1)?.remove(0))),
            "map" if is_generic => {
                let mut a = args(self, 2)?;
                let v = a.pop().unwrap_or(CqlType::Blob);
                let k = a.pop().unwrap_or(CqlType::Blob);
                CqlType::Map(Box::new(k), Box::new(v))
            }
            "tuple" if is_generic => CqlType::Tuple(args(self, 0)?),
            "vector" if is_generic => {
                self.eat(b'<')?;
                let t = self.ty(depth + 1)?;
                self.eat(b',')?;
                self.ws();
                let start = self.i;
                while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                    self.i += 1;
                }
                let n: u16 = std::str::from_utf8(&self.s[start..self.i])
                    .unwrap_or_default()
                    .parse()
                    .map_err(|_| "a vector needs a dimension".to_string())?;
                self.eat(b'>')?;
                CqlType::Vector(Box::new(t), n)
            }
            other => match native_by_name(other) {
                Some(t) => t,
                None => {
                    // A user-defined type, by its name in this keyspace.
                    let udt = self
                        .udts
                        .get(other)
                        .or_else(|| self.udts.get(&name))
                        .ok_or_else(|| {
                            format!("unknown type {other:?} in keyspace {}", self.keyspace)
                        })?;
                    CqlType::Udt(udt.clone())
                }
            },
        })
    }
}

/// Resolves the user-defined types of a keyspace from `system_schema.types` rows
/// (`type_name`, `field_names`, `field_types`). A type may use types defined before it in any
/// order, so resolution repeats until nothing more resolves.
pub fn resolve_udts(
    keyspace: &str,
    rows: Vec<(String, Vec<String>, Vec<String>)>,
) -> HashMap<String, Arc<Udt>> {
    let mut done: HashMap<String, Arc<Udt>> = HashMap::new();
    let mut pending = rows;
    loop {
        let before = pending.len();
        pending.retain(|(name, names, types)| {
            let fields: Result<Vec<_>, String> = names
                .iter()
                .zip(types)
                .map(|(n, t)| CqlType::parse(t, keyspace, &done).map(|t| (n.clone(), t)))
                .collect();
            match fields {
                Ok(fields) => {
                    done.insert(
                        name.clone(),
                        Arc::new(Udt {
                            keyspace: keyspace.to_string(),
                            name: name.clone(),
                            fields,
                        }),
                    );
                    false
                }
                Err(_) => true,
            }
        });
        if pending.is_empty() || pending.len() == before {
            return done;
        }
    }
}
