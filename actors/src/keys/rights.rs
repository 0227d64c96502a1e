//! Rights: `<resource>.<action>` strings granted to API keys, and the rule that matches a granted
//! right against the one a request needs.
//!
//! * A resource is a table (`users`, or `sales.orders` outside the `public` schema), a database
//!   function (calling `add_numbers` needs `add_numbers.execute`), the word `gateway` (raw SQL
//!   needs `gateway.query`), or `*` for every resource.
//! * An action is `read`, `write`, `delete`, `query`, `execute`, or `*` for every action.
//! * `*` alone grants everything. `public.users.read` and `users.read` are the same right.
//!
//! Unlike the system this replaces, `gateway.<action>` is an ordinary right on the resource
//! `gateway`: it does not stand for every table, so `gateway.read` grants no table.

use std::fmt;

use crate::ops::TableRef;

/// What a right allows doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    Write,
    Delete,
    Query,
    Execute,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Delete => "delete",
            Action::Query => "query",
            Action::Execute => "execute",
        }
    }

    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "read" => Action::Read,
            "write" => Action::Write,
            "delete" => Action::Delete,
            "query" => Action::Query,
            "execute" => Action::Execute,
            _ => return None,
        })
    }
}

/// A right a request needs: one action on one resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Required {
    pub resource: String,
    pub action: Action,
}

impl Required {
    /// The right to do `action` on a table, named without its schema when that is `public`.
    pub fn table(table: &TableRef, action: Action) -> Required {
        let resource = match table.schema.as_deref() {
            None | Some("public") => table.name.clone(),
            Some(schema) => format!("{schema}.{}", table.name),
        };
        Required { resource, action }
    }

    /// The right calling a database function needs: `<function>.execute`, the function named
    /// without its schema when that is `public`.
    pub fn function(function: &TableRef) -> Required {
        Required::table(function, Action::Execute)
    }

    /// The right raw SQL needs.
    pub fn raw_sql() -> Required {
        Required {
            resource: "gateway".into(),
            action: Action::Query,
        }
    }
}

impl fmt::Display for Required {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.resource, self.action.as_str())
    }
}

/// A granted right, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Right {
    /// `None` is the wildcard `*`.
    resource: Option<String>,
    /// `None` is the wildcard `*`.
    action: Option<Action>,
}

/// The longest right name accepted.
const MAX_RIGHT_LEN: usize = 200;

impl Right {
    /// Parses and normalises a right name; the error says what is wrong with it.
    pub fn parse(name: &str) -> Result<Right, String> {
        let name = name.trim();
        if name == "*" {
            return Ok(Right {
                resource: None,
                action: None,
            });
        }
        if name.len() > MAX_RIGHT_LEN {
            return Err(format!("a right is at most {MAX_RIGHT_LEN} characters"));
        }
        let Some((resource, action)) = name.rsplit_once('.') else {
            return Err(format!(
                "{name:?} is not <resource>.<action>, e.g. users.read, *.read or gateway.query"
            ));
        };
        let action = match action {
            "*" => None,
            a => Some(Action::parse(a).ok_or_else(|| {
                format!("unknown action {a:?} in {name:?}; use read, write, delete, query, execute or *")
            })?),
        };
        let resource = match resource {
            "*" => None,
            r => {
                let valid = |part: &str| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '$' | '-'))
                };
                let parts: Vec<&str> = r.split('.').collect();
                if parts.len() > 2 || !parts.iter().all(|p| valid(p)) {
                    return Err(format!(
                        "{r:?} in {name:?} is not a table, schema.table, gateway or *"
                    ));
                }
                Some(r.strip_prefix("public.").unwrap_or(r).to_string())
            }
        };
        Ok(Right { resource, action })
    }

    /// Whether this right allows what `required` asks for.
    pub fn grants(&self, required: &Required) -> bool {
        self.resource
            .as_deref()
            .is_none_or(|r| r == required.resource)
            && self.action.is_none_or(|a| a == required.action)
    }
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.resource, self.action) {
            (None, None) => f.write_str("*"),
            (r, a) => write!(
                f,
                "{}.{}",
                r.as_deref().unwrap_or("*"),
                a.map_or("*", Action::as_str)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(schema: Option<&str>, name: &str) -> TableRef {
        TableRef {
            schema: schema.map(str::to_string),
            name: name.into(),
        }
    }

    fn grants(right: &str, required: &Required) -> bool {
        Right::parse(right).unwrap().grants(required)
    }

    #[test]
    fn exact_and_wildcard_rights_match_the_right_requests() {
        let read_users = Required::table(&table(None, "users"), Action::Read);
        assert!(grants("users.read", &read_users));
        assert!(grants("public.users.read", &read_users));
        assert!(grants("*.read", &read_users));
        assert!(grants("users.*", &read_users));
        assert!(grants("*", &read_users));
        assert!(!grants("users.write", &read_users));
        assert!(!grants("orders.read", &read_users));
        assert!(!grants("*.delete", &read_users));
    }

    #[test]
    fn gateway_rights_do_not_stand_for_every_table() {
        let read_users = Required::table(&table(None, "users"), Action::Read);
        assert!(!grants("gateway.read", &read_users));
        assert!(!grants("gateway.*", &read_users));
        assert!(grants("gateway.query", &Required::raw_sql()));
        assert!(grants("gateway.*", &Required::raw_sql()));
        assert!(!grants("*.read", &Required::raw_sql()));
        assert!(grants("*", &Required::raw_sql()));
    }

    #[test]
    fn functions_need_their_execute_right() {
        let call = Required::function(&table(None, "add_numbers"));
        assert_eq!(call.to_string(), "add_numbers.execute");
        assert!(grants("add_numbers.execute", &call));
        assert!(grants("*.execute", &call));
        assert!(!grants("add_numbers.read", &call));
        assert!(!grants("gateway.query", &call));
    }

    #[test]
    fn schemas_other_than_public_are_part_of_the_resource() {
        let private = Required::table(&table(Some("sales"), "orders"), Action::Write);
        assert_eq!(private.to_string(), "sales.orders.write");
        assert!(grants("sales.orders.write", &private));
        assert!(!grants("orders.write", &private));
        let public = Required::table(&table(Some("public"), "orders"), Action::Write);
        assert_eq!(public.to_string(), "orders.write");
    }

    #[test]
    fn malformed_rights_are_refused_with_a_reason() {
        for bad in [
            "",
            "users",
            "users.drop",
            ".read",
            "a.b.c.read",
            "users read",
            "users;--.read",
            "users.read.",
            "*.*.*",
        ] {
            assert!(Right::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            Right::parse(" users.read ").unwrap().to_string(),
            "users.read"
        );
        assert_eq!(
            Right::parse("public.users.*").unwrap().to_string(),
            "users.*"
        );
        assert_eq!(Right::parse("*.*").unwrap().to_string(), "*");
    }
}
