//! The tables a raw SQL statement may touch, for cache invalidation: every identifier and
//! `schema.identifier` outside string literals and comments, folded to lower case unless quoted,
//! as PostgreSQL reads them. Over-naming is harmless (a bumped generation of something that is not
//! a table invalidates nothing), so keywords and column names are not filtered out; under-naming
//! would serve stale data, so nothing that could be a table name is skipped. A function that
//! writes to a table the statement does not name is beyond what the text can tell; such tables
//! rely on their time to live.

/// Names found beyond this make the caller invalidate everything instead.
pub const MAX_NAMES: usize = 256;

/// `(schema, name)` pairs, without duplicates, in order of appearance; `None` when the statement
/// names more than [`MAX_NAMES`].
pub fn tables_named(sql: &str) -> Option<Vec<(Option<String>, String)>> {
    let words = identifiers(sql);
    let mut out: Vec<(Option<String>, String)> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let (name, dotted) = (&words[i].0, words[i].1);
        let pair = if dotted && i + 1 < words.len() {
            i += 1;
            (Some(name.clone()), words[i].0.clone())
        } else {
            (None, name.clone())
        };
        if !out.contains(&pair) {
            if out.len() == MAX_NAMES {
                return None;
            }
            out.push(pair);
        }
        i += 1;
    }
    Some(out)
}

/// Identifiers with a flag: followed directly by `.` and another identifier.
fn identifiers(sql: &str) -> Vec<(String, bool)> {
    let b = sql.as_bytes();
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' => i = skip_quoted(b, i, b'\''),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_block_comment(b, i),
            b'$' => i = skip_dollar(b, i),
            b'"' => {
                let end = skip_quoted(b, i, b'"');
                // Closed: the name ends before the closing quote; unclosed: at the end.
                let stop = if end > i + 1 && b[end - 1] == b'"' && end <= b.len() {
                    end - 1
                } else {
                    b.len()
                };
                let inner = &sql[i + 1..stop.max(i + 1)];
                out.push((inner.replace("\"\"", "\""), false));
                i = end;
                mark_dot(b, &mut i, &mut out);
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'_'
                        || b[i] == b'$'
                        || b[i] >= 0x80)
                {
                    i += 1;
                }
                out.push((sql[start..i].to_ascii_lowercase(), false));
                mark_dot(b, &mut i, &mut out);
            }
            c if c.is_ascii_digit() => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// After an identifier: a `.` directly followed by another identifier marks it as a qualifier.
fn mark_dot(b: &[u8], i: &mut usize, out: &mut [(String, bool)]) {
    if b.get(*i) == Some(&b'.')
        && b.get(*i + 1)
            .is_some_and(|n| n.is_ascii_alphabetic() || *n == b'_' || *n == b'"' || *n >= 0x80)
    {
        if let Some(last) = out.last_mut() {
            last.1 = true;
        }
        *i += 1;
    }
}

/// The index after a literal opened by `q` at `i` (a doubled `q` stays inside).
fn skip_quoted(b: &[u8], i: usize, q: u8) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        if b[j] == q {
            if b.get(j + 1) == Some(&q) {
                j += 2;
                continue;
            }
            return j + 1;
        }
        j += 1;
    }
    b.len()
}

fn skip_block_comment(b: &[u8], i: usize) -> usize {
    // Block comments nest in PostgreSQL.
    let (mut depth, mut j) = (0usize, i);
    while j < b.len() {
        if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
            depth += 1;
            j += 2;
        } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return j;
            }
        } else {
            j += 1;
        }
    }
    b.len()
}

/// A dollar-quoted string (`$$…$$`, `$tag$…$tag$`), or a parameter such as `$1`.
fn skip_dollar(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
        j += 1;
    }
    if b.get(j) != Some(&b'$') || b[i + 1..j].first().is_some_and(u8::is_ascii_digit) {
        return j; // a parameter
    }
    let tag = &b[i..=j];
    let mut k = j + 1;
    while k + tag.len() <= b.len() {
        if &b[k..k + tag.len()] == tag {
            return k + tag.len();
        }
        k += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Vec<String> {
        tables_named(sql)
            .unwrap()
            .into_iter()
            .map(|(s, t)| match s {
                Some(s) => format!("{s}.{t}"),
                None => t,
            })
            .collect()
    }

    #[test]
    fn tables_are_found_in_any_statement() {
        let n = names("UPDATE Events SET kind = 'x' WHERE id = $1");
        assert!(n.contains(&"events".to_string()), "{n:?}");
        let n = names("insert into audit.Log (a) values (1)");
        assert!(n.contains(&"audit.log".to_string()), "{n:?}");
        let n = names("DELETE FROM \"Mixed Case\".\"T\"\"q\" WHERE true");
        assert!(n.contains(&"Mixed Case.T\"q".to_string()), "{n:?}");
        let n = names("with x as (delete from a returning *) select * from b");
        assert!(n.contains(&"a".to_string()) && n.contains(&"b".to_string()));
    }

    #[test]
    fn literals_comments_and_parameters_name_nothing() {
        let n = names(
            "SELECT 'from secret' , $$drop table t1$$, $q$ t2 $q$ -- t3\n /* t4 /* t5 */ */ FROM real WHERE a = $12 AND b = 1.5e3",
        );
        for hidden in ["secret", "t1", "t2", "t3", "t4", "t5", "drop"] {
            assert!(!n.contains(&hidden.to_string()), "{hidden} in {n:?}");
        }
        assert!(n.contains(&"real".to_string()), "{n:?}");
        assert_eq!(names("select 1"), vec!["select"]);
    }

    #[test]
    fn unterminated_input_is_not_a_panic() {
        for sql in [
            "'abc",
            "\"abc",
            "/* x",
            "$tag$ x",
            "a.",
            "\"",
            "$",
            "\u{e9}t\u{e9}.x",
        ] {
            let _ = tables_named(sql);
        }
    }

    #[test]
    fn too_many_names_asks_for_everything() {
        let sql: String = (0..=MAX_NAMES).map(|i| format!("t{i} ")).collect();
        assert!(tables_named(&sql).is_none());
    }
}
