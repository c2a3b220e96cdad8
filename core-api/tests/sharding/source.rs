//! Finds the SQL statements of `core-api/src` in the Rust source itself: every string literal
//! (plain, multi-line with `\` continuations, raw `r"…"`/`r#"…"#`) outside comments and
//! `#[cfg(test)]` modules, with the function it is in. A literal that starts like a statement is
//! one; its `format!` placeholders are filled from the file's `&str` constants and from
//! [`EXPANSIONS`] (every value a local variable can take), so each statement the core can send
//! comes out whole. A literal that only looks like a piece of SQL must be one of those values, so
//! a fragment glued in some new way is noticed instead of slipping past.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Values of the local variables that `format!` statements splice in, per file.
/// `names` bound together take one row of `values` at a time (a `match` that sets both).
#[derive(Debug)]
pub struct Expansion {
    pub file: &'static str,
    pub names: &'static [&'static str],
    pub values: &'static [&'static [&'static str]],
}

/// The local variables of today's `format!` statements and every value each can take.
pub const EXPANSIONS: &[Expansion] = &[
    // `vec!["?"; ids.len()].join(", ")`: an IN list of bound ids (two stand for any length).
    Expansion {
        file: "member/repo.rs",
        names: &["placeholders"],
        values: &[&["?, ?"]],
    },
    Expansion {
        file: "post/repo.rs",
        names: &["placeholders"],
        values: &[&["?, ?"]],
    },
    // follow::repo::page: the two directions of the follow list, and the keyset cursor.
    Expansion {
        file: "follow/repo.rs",
        names: &["member_column", "subject_column"],
        values: &[
            &["f.follower_id", "f.followee_id"],
            &["f.followee_id", "f.follower_id"],
        ],
    },
    Expansion {
        file: "follow/repo.rs",
        names: &["after"],
        values: &[
            &[""],
            &[" AND (f.created_at < ? OR (f.created_at = ? AND m.id < ?))"],
        ],
    },
    // moderation::repo::page: the report list's status filter.
    Expansion {
        file: "moderation/repo.rs",
        names: &["filter"],
        values: &[
            &[""],
            &["WHERE resolved_at IS NULL"],
            &["WHERE resolved_at IS NOT NULL"],
        ],
    },
];

/// Functions whose statements are assembled piece by piece: their literals are skipped here and
/// the test asks the functions themselves for every statement they make (`feed_statements`).
pub const GENERATED: &[(&str, &str)] = &[
    ("post/repo.rs", "feed_ids_sql"),
    ("post/repo.rs", "feed_page_sql"),
    ("post/repo.rs", "page_columns"),
    ("post/repo.rs", "listed_blocks"),
];

/// Words that mark a literal as a piece of SQL.
const SQL_WORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "JOIN", "AND", "OR", "NOT", "EXISTS", "IN", "ORDER", "LIMIT",
    "OFFSET", "SET", "VALUES", "UNION", "IS", "NULL", "INSERT", "UPDATE", "DELETE",
];

/// First words of a statement.
const STATEMENT_WORDS: &[&str] = &[
    "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "PRAGMA",
];

/// A string literal of the source.
#[derive(Debug, Clone)]
pub struct Literal {
    /// Path under `core-api/src`, with `/`.
    pub file: String,
    pub line: usize,
    /// The function it is in (empty at file level).
    pub function: String,
    pub text: String,
    /// The first argument of `format!`.
    pub format: bool,
    /// The `DbKind::Sqlite =>` arm of a dialect `match`.
    pub sqlite_arm: bool,
    /// `const NAME: &str = "…"`.
    pub const_name: Option<String>,
}

impl Literal {
    /// Where it is, for messages: `core-api/src/file.rs:line (fn name)`.
    pub fn site(&self) -> String {
        format!(
            "core-api/src/{}:{} (fn {})",
            self.file,
            self.line,
            if self.function.is_empty() {
                "-"
            } else {
                &self.function
            }
        )
    }
}

/// A whole statement the core can send, and where it comes from.
#[derive(Debug, Clone)]
pub struct Statement {
    pub site: String,
    pub sql: String,
}

/// What the scan found.
#[derive(Debug, Default)]
pub struct Scan {
    pub statements: Vec<Statement>,
    /// Statements only SQLite runs (`DbKind::Sqlite` arms, `PRAGMA`), not checked.
    pub sqlite_only: Vec<Statement>,
    /// Everything the scan could not account for, each with what to do.
    pub problems: Vec<String>,
    /// Literals seen per generated function (a function that vanished leaves a stale entry).
    pub generated_seen: BTreeSet<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Punct(char),
    Str(String),
}

/// Tokens of Rust source: identifiers, punctuation and string literals (unescaped), each with its
/// line; comments, char literals and lifetimes dropped.
fn tokens(src: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let at = |k: usize| chars.get(k).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if let Some(start) = raw_string_start(&chars, i) {
            // r"…", r#"…"#, br"…": up to the quote followed by as many `#`.
            let hashes = start - i - usize::from(c == 'b') - 1;
            let start_line = line;
            let mut j = start + 1;
            let mut text = String::new();
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|h| at(j + 1 + h) == '#') {
                    j += 1 + hashes;
                    break;
                }
                if chars[j] == '\n' {
                    line += 1;
                }
                text.push(chars[j]);
                j += 1;
            }
            out.push((Tok::Str(text), start_line));
            i = j;
        } else if c == '"' || (c == 'b' && at(i + 1) == '"') {
            let start_line = line;
            let mut j = i + if c == 'b' { 2 } else { 1 };
            let mut raw = String::new();
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' {
                    raw.push(chars[j]);
                    j += 1;
                }
                if j < chars.len() {
                    if chars[j] == '\n' {
                        line += 1;
                    }
                    raw.push(chars[j]);
                    j += 1;
                }
            }
            out.push((Tok::Str(unescape(&raw)), start_line));
            i = j + 1;
        } else if c == '\'' {
            if at(i + 1) == '\\' {
                // '\n', '\'', '\u{…}'
                let mut j = i + 2;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1; // a lifetime: its name follows as an identifier
            }
        } else if c.is_alphanumeric() || c == '_' {
            let mut j = i;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            out.push((Tok::Ident(chars[i..j].iter().collect()), line));
            i = j;
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

/// Where the opening quote of a raw string starting at `i` is, if one starts there.
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some(j)
}

/// The value of a plain string literal's body.
fn unescape(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\n') => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('u') => {
                let code: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let code = code.trim_start_matches('{');
                if let Some(c) = u32::from_str_radix(code, 16).ok().and_then(char::from_u32) {
                    out.push(c);
                }
            }
            Some('x') => {
                let code: String = chars.by_ref().take(2).collect();
                if let Ok(b) = u8::from_str_radix(&code, 16) {
                    out.push(char::from(b));
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Every string literal of `src` (file `file` under `core-api/src`) outside `#[cfg(test)]` modules.
pub fn literals(file: &str, src: &str) -> Vec<Literal> {
    let toks = tokens(src);
    let is = |k: usize, t: &Tok| toks.get(k).map(|(x, _)| x) == Some(t);
    let ident = |k: usize| match toks.get(k) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let punct = |k: usize, c: char| is(k, &Tok::Punct(c));
    let mut out = Vec::new();
    let mut function = String::new();
    let mut i = 0;
    while i < toks.len() {
        // #[cfg(test)] (more attributes, `pub`) mod name { … }: skipped whole.
        if punct(i, '#')
            && punct(i + 1, '[')
            && ident(i + 2) == Some("cfg")
            && punct(i + 3, '(')
            && ident(i + 4) == Some("test")
            && punct(i + 5, ')')
            && punct(i + 6, ']')
        {
            let mut j = i + 7;
            while punct(j, '#') {
                while j < toks.len() && !punct(j, ']') {
                    j += 1;
                }
                j += 1;
            }
            if ident(j) == Some("pub") {
                j += 1;
            }
            if ident(j) == Some("mod") {
                while j < toks.len() && !punct(j, '{') && !punct(j, ';') {
                    j += 1;
                }
                if punct(j, '{') {
                    let mut depth = 0;
                    while j < toks.len() {
                        if punct(j, '{') {
                            depth += 1;
                        } else if punct(j, '}') {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        j += 1;
                    }
                }
                i = j + 1;
                continue;
            }
        }
        match &toks[i].0 {
            Tok::Ident(word) if word == "fn" => {
                if let Some(name) = ident(i + 1) {
                    function = name.to_owned();
                }
            }
            Tok::Str(text) => {
                let format = i >= 3
                    && ident(i - 3) == Some("format")
                    && punct(i - 2, '!')
                    && punct(i - 1, '(');
                // DbKind::Sqlite => "…" or DbKind::Sqlite => { "…" }
                let arm = if punct(i.wrapping_sub(1), '{') {
                    i - 1
                } else {
                    i
                };
                let sqlite_arm = arm >= 6
                    && ident(arm - 6) == Some("DbKind")
                    && punct(arm - 5, ':')
                    && punct(arm - 4, ':')
                    && ident(arm - 3) == Some("Sqlite")
                    && punct(arm - 2, '=')
                    && punct(arm - 1, '>');
                // const NAME: &str = "…"; (`const`, the name, the type, `=`, within one item)
                let mut const_name = None;
                if i >= 2 && punct(i - 1, '=') {
                    let mut k = i - 1;
                    while k > 0 && i - k < 8 {
                        k -= 1;
                        if punct(k, ';') || punct(k, '{') || punct(k, '}') {
                            break;
                        }
                        if ident(k) == Some("const") {
                            const_name = ident(k + 1).map(str::to_owned);
                            break;
                        }
                    }
                }
                out.push(Literal {
                    file: file.to_owned(),
                    line: toks[i].1,
                    function: function.clone(),
                    text: text.clone(),
                    format,
                    sqlite_arm,
                    const_name,
                });
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Whitespace collapsed to single spaces, trimmed: how statements are compared and listed.
pub fn normalize(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

/// Whether the literal starts like a statement (an upper-case statement word and more).
pub fn is_statement(text: &str) -> bool {
    let mut parts = text.split_whitespace();
    matches!(parts.next(), Some(first) if STATEMENT_WORDS.contains(&first))
        && parts.next().is_some()
}

/// Whether the literal reads like a piece of SQL: an upper-case SQL word among two words or
/// more (a lone `SET` or `EXISTS` is a Redis command).
pub fn looks_like_sql(text: &str) -> bool {
    words(text).count() > 1 && words(text).any(|w| SQL_WORDS.contains(&w))
}

/// The `{name}` placeholders of a `format!` string, in order, without duplicates; `{}` is "".
fn placeholders(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
            }
            '{' => {
                let inner: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let name = inner.split(':').next().unwrap_or("").trim().to_owned();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            _ => {}
        }
    }
    names
}

/// `text` with its placeholders replaced from `values` and `{{`/`}}` unescaped.
fn fill(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let inner: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let name = inner.split(':').next().unwrap_or("").trim();
                out.push_str(values.get(name).map(String::as_str).unwrap_or(""));
            }
            _ => out.push(c),
        }
    }
    out
}

/// Every statement of the `.rs` files under `src` (core-api/src), per the rules of this module.
pub fn scan(src: &Path) -> Scan {
    let mut files = Vec::new();
    collect_rs(src, &mut files);
    files.sort();
    let mut scan = Scan::default();
    let mut used_values: BTreeSet<&'static str> = BTreeSet::new();
    for path in files {
        let rel = path
            .strip_prefix(src)
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        let Ok(text) = std::fs::read_to_string(&path) else {
            scan.problems
                .push(format!("cannot read {}", path.display()));
            continue;
        };
        let lits = literals(&rel, &text);
        let consts: BTreeMap<String, String> = lits
            .iter()
            .filter_map(|l| l.const_name.clone().map(|n| (n, l.text.clone())))
            .collect();
        for lit in &lits {
            if GENERATED.contains(&(rel.as_str(), lit.function.as_str())) {
                scan.generated_seen
                    .insert((rel.clone(), lit.function.clone()));
                continue;
            }
            if lit.const_name.is_some() {
                continue; // spliced in by name where it is used
            }
            // A `format!` statement may open with a const (`{SELECT_POSTS} WHERE …`).
            let expanded = lit.format.then(|| expand(&rel, &lit.text, &consts));
            let statement_like = match &expanded {
                Some(Ok(all)) => all.iter().any(|s| is_statement(s)),
                Some(Err(_)) => is_statement(&lit.text) || looks_like_sql(&lit.text),
                None => is_statement(&lit.text),
            };
            if !statement_like {
                if looks_like_sql(&lit.text) {
                    match EXPANSIONS
                        .iter()
                        .filter(|e| rel.ends_with(e.file))
                        .flat_map(|e| e.values.iter().flat_map(|row| row.iter()))
                        .find(|v| **v == lit.text)
                    {
                        Some(v) => {
                            used_values.insert(v);
                        }
                        None => scan.problems.push(format!(
                            "{}: the SQL fragment {:?} is not a whole statement, a `const`, or a value \
                             listed in EXPANSIONS (core-api/tests/sharding/source.rs). Add it to the \
                             EXPANSIONS entry of the variable it is assigned to (or a new one), or, if \
                             a function assembles statements from pieces, list it in GENERATED and \
                             have the test call it for every statement it makes.",
                            lit.site(),
                            lit.text
                        )),
                    }
                }
                continue;
            }
            let statement = |sql: String| Statement {
                site: lit.site(),
                sql: normalize(&sql),
            };
            if lit.sqlite_arm || lit.text.trim_start().starts_with("PRAGMA") {
                scan.sqlite_only.push(statement(lit.text.clone()));
                continue;
            }
            match expanded.unwrap_or_else(|| Ok(vec![lit.text.clone()])) {
                Ok(all) => scan.statements.extend(all.into_iter().map(statement)),
                Err(name) => scan.problems.push(format!(
                    "{}: `format!` statement {:?} splices in {{{name}}}, which is neither a `&str` \
                     const of the file nor listed in EXPANSIONS (core-api/tests/sharding/source.rs): \
                     add every value it can take there, so the test sees each statement whole.",
                    lit.site(),
                    normalize(&lit.text)
                )),
            }
        }
    }
    for e in EXPANSIONS {
        for v in e.values.iter().flat_map(|row| row.iter()) {
            if looks_like_sql(v) && !used_values.contains(v) {
                scan.problems.push(format!(
                    "EXPANSIONS (core-api/tests/sharding/source.rs) lists {v:?} for {:?} in {}, \
                     but no such literal is in that file any more: update or remove it.",
                    e.names, e.file
                ));
            }
        }
    }
    scan
}

/// Every statement a `format!` literal of `file` makes, or the placeholder that cannot be filled.
pub fn expand(
    file: &str,
    text: &str,
    consts: &BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    let mut choices: Vec<Vec<BTreeMap<String, String>>> = Vec::new();
    let mut bound: BTreeSet<String> = BTreeSet::new();
    for name in placeholders(text) {
        if bound.contains(&name) {
            continue;
        }
        if let Some(value) = consts.get(&name) {
            // A const may itself splice consts (`{SUSPENDED}` in a const is not used today).
            choices.push(vec![BTreeMap::from([(name.clone(), value.clone())])]);
            bound.insert(name);
            continue;
        }
        let Some(e) = EXPANSIONS
            .iter()
            .find(|e| file.ends_with(e.file) && e.names.contains(&name.as_str()))
        else {
            return Err(name);
        };
        choices.push(
            e.values
                .iter()
                .map(|row| {
                    e.names
                        .iter()
                        .zip(row.iter())
                        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                        .collect()
                })
                .collect(),
        );
        bound.extend(e.names.iter().map(|n| (*n).to_owned()));
    }
    let mut combos: Vec<BTreeMap<String, String>> = vec![BTreeMap::new()];
    for options in choices {
        combos = combos
            .into_iter()
            .flat_map(|base| {
                options.iter().map(move |o| {
                    let mut merged = base.clone();
                    merged.extend(o.clone());
                    merged
                })
            })
            .collect();
    }
    Ok(combos.iter().map(|values| fill(text, values)).collect())
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r####"
const COLUMNS: &str = "id, email";
// sqlx::query("SELECT * FROM members") in a comment is not a statement
/* nor "DELETE FROM posts" in a block comment */
fn find(db: &Db) {
    let c = '"'; let life: &'static str = "x";
    sqlx::query(&format!("SELECT {COLUMNS} FROM members WHERE id = ?"));
    sqlx::query("UPDATE members \
                 SET name = ? WHERE id = ?");
    sqlx::query(r#"DELETE FROM "members" WHERE id = ?"#);
    let sql = match kind {
        DbKind::Sqlite => "INSERT OR IGNORE INTO follows (follower_id) VALUES (?)",
        DbKind::MySql => "INSERT IGNORE INTO follows (follower_id) VALUES (?)",
    };
}
#[cfg(test)]
mod tests {
    fn t() { sqlx::query("SELECT secret FROM members"); }
}
"####;

    #[test]
    fn literals_are_found_with_their_function_and_form() {
        let lits = literals("member/repo.rs", SAMPLE);
        let texts: Vec<&str> = lits.iter().map(|l| l.text.as_str()).collect();
        assert!(
            texts.contains(&"UPDATE members SET name = ? WHERE id = ?"),
            "{texts:?}"
        );
        assert!(
            texts.contains(&r#"DELETE FROM "members" WHERE id = ?"#),
            "{texts:?}"
        );
        assert!(
            !texts.iter().any(|t| t.contains("secret")),
            "cfg(test) module skipped"
        );
        assert!(
            !texts.iter().any(|t| t.contains("SELECT *")),
            "comments skipped"
        );
        let format = lits.iter().find(|l| l.format).unwrap();
        assert_eq!(format.function, "find");
        assert_eq!(format.line, 7);
        let sqlite: Vec<&str> = lits
            .iter()
            .filter(|l| l.sqlite_arm)
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(
            sqlite,
            ["INSERT OR IGNORE INTO follows (follower_id) VALUES (?)"]
        );
        let consts: Vec<_> = lits
            .iter()
            .filter_map(|l| l.const_name.as_deref())
            .collect();
        assert_eq!(consts, ["COLUMNS"]);
    }

    #[test]
    fn format_statements_are_filled_from_consts_and_expansions() {
        let consts = BTreeMap::from([("COLUMNS".to_owned(), "id, email".to_owned())]);
        let all = expand(
            "moderation/repo.rs",
            "SELECT {COLUMNS} FROM reports {filter} LIMIT ?",
            &consts,
        )
        .unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.contains(
            &"SELECT id, email FROM reports WHERE resolved_at IS NULL LIMIT ?".to_owned()
        ));
        assert_eq!(
            expand("member/repo.rs", "SELECT x FROM t WHERE {unknown}", &consts),
            Err("unknown".to_owned())
        );
    }

    #[test]
    fn statements_and_fragments_are_told_apart() {
        assert!(is_statement("SELECT id FROM members"));
        assert!(!is_statement("DELETE"), "an HTTP method");
        assert!(!is_statement("Select a member"));
        assert!(looks_like_sql(" AND m.id < ?"));
        assert!(!looks_like_sql("f.follower_id"));
        assert!(!looks_like_sql("MEMBER_NOT_FOUND"));
    }
}
