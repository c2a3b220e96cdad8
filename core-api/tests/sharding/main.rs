//! The sharding path (docs/scale.md): the VSchema in `deploy/vitess` covers the schema of the
//! migrations, and every SQL statement of the core carries its sharding key — except the ones
//! listed, each with its reason, in `deploy/vitess/scatter-queries.txt`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

mod routing;
mod schema;
mod source;
mod vschema;

use std::collections::{BTreeMap, BTreeSet};

use heart_core::db::DbKind;
use heart_core::paging::Cursor;
use heart_core::post::repo::{feed_page_sql, Blocked, Feed, FeedQuery};

use routing::Verdict;
use schema::{repo_root, table_keys, TableKeys, VSchema};
use source::{normalize, Statement};

/// Where the listed scatter statements are.
const ALLOW_LIST: &str = "deploy/vitess/scatter-queries.txt";

/// Every statement the feed functions make (they assemble them from pieces): each feed, each way
/// of hiding blocked writers, with and without a cursor, at the top and behind an offset (the
/// two forms of [`feed_page_sql`]), in the MySQL dialect.
fn feed_statements() -> Vec<Statement> {
    let blocked_ids = [7, 8];
    let mut out = Vec::new();
    for feed in [
        Feed::Home { viewer: 1 },
        Feed::Writer { writer: 1 },
        Feed::Following { viewer: 1 },
    ] {
        for blocked in [
            Blocked::AntiJoin,
            Blocked::Listed(&[]),
            Blocked::Listed(&blocked_ids),
        ] {
            for (after, offset) in [
                (None, 0),
                (None, 20),
                (
                    Some(Cursor {
                        created_at: 1,
                        id: 1,
                    }),
                    0,
                ),
                (
                    Some(Cursor {
                        created_at: 1,
                        id: 1,
                    }),
                    20,
                ),
            ] {
                let query = FeedQuery {
                    feed,
                    after,
                    blocked,
                    size: 20,
                    offset,
                };
                let (sql, _) = feed_page_sql(&query, DbKind::MySql);
                out.push(Statement {
                    site: format!("core-api/src/post/repo.rs (fn feed_page_sql: {feed:?}, {blocked:?}, after {after:?}, offset {offset})"),
                    sql: normalize(&sql),
                });
            }
        }
    }
    out
}

/// A group of the allow list: `[kind] reason`, then its statements.
#[derive(Debug, Clone)]
pub struct Listed {
    pub kind: String,
    pub reason: String,
    pub statements: Vec<String>,
}

/// The allow list's groups; `#` lines are comments.
pub fn parse_allow_list(text: &str) -> Result<Vec<Listed>, String> {
    let mut groups: Vec<Listed> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let (kind, reason) = rest
                .split_once(']')
                .ok_or_else(|| format!("{ALLOW_LIST}:{}: `[kind] reason` expected", n + 1))?;
            if !["scatter", "fix"].contains(&kind) {
                return Err(format!(
                    "{ALLOW_LIST}:{}: kind is `scatter` or `fix`, not {kind:?}",
                    n + 1
                ));
            }
            if reason.trim().is_empty() {
                return Err(format!("{ALLOW_LIST}:{}: a group needs its reason", n + 1));
            }
            groups.push(Listed {
                kind: kind.to_owned(),
                reason: reason.trim().to_owned(),
                statements: Vec::new(),
            });
        } else {
            let group = groups.last_mut().ok_or_else(|| {
                format!(
                    "{ALLOW_LIST}:{}: statement before any `[kind] reason`",
                    n + 1
                )
            })?;
            group.statements.push(normalize(line));
        }
    }
    Ok(groups)
}

/// What is wrong with `statements` against the allow list: each problem says which statement,
/// where, and what to do.
pub fn audit(
    statements: &[Statement],
    allowed: &[Listed],
    keys: &BTreeMap<String, TableKeys>,
) -> Vec<String> {
    let listed: BTreeMap<&str, &Listed> = allowed
        .iter()
        .flat_map(|g| g.statements.iter().map(move |s| (s.as_str(), g)))
        .collect();
    let mut problems = Vec::new();
    let mut matched: BTreeSet<&str> = BTreeSet::new();
    let mut checked: BTreeSet<&str> = BTreeSet::new();
    for statement in statements {
        if !checked.insert(statement.sql.as_str()) {
            continue;
        }
        let verdict = routing::check(&statement.sql, keys);
        let entry = listed.get_key_value(statement.sql.as_str());
        match (verdict, entry) {
            (Verdict::Keyed, None) => {}
            (Verdict::Keyed, Some((text, group))) => problems.push(format!(
                "{}: this statement carries its sharding key now, but {ALLOW_LIST} still lists it \
                 under [{}] {}: remove it there (and from docs/scale.md, \"Scatter queries\").\n    {text}",
                statement.site, group.kind, group.reason
            )),
            (Verdict::Unkeyed(_), Some((text, _))) => {
                matched.insert(text);
            }
            (Verdict::Unkeyed(why), None) => problems.push(format!(
                "{}: statement without its sharding key under deploy/vitess/vschema.json — {}.\n    {}\n  \
                 Pin a routing column of each table with `=`/`IN` (a bound value, or a join on a \
                 pinned table's column), or, if it has to read every shard, add the line above to \
                 {ALLOW_LIST} under a `[scatter] reason` (or `[fix] …` for a change due before the \
                 cutover) and to docs/scale.md, \"Scatter queries\".",
                statement.site,
                why.join("; "),
                statement.sql
            )),
            (Verdict::Unchecked(why), _) => problems.push(format!(
                "{}: the sharding check cannot read this statement: {why}.\n    {}\n  Write it in \
                 plain MySQL the check understands, or teach core-api/tests/sharding/routing.rs the shape.",
                statement.site, statement.sql
            )),
        }
    }
    for group in allowed {
        for text in &group.statements {
            if !matched.contains(text.as_str()) && !checked.contains(text.as_str()) {
                problems.push(format!(
                    "{ALLOW_LIST} lists under [{}] {} a statement the core no longer sends \
                     (changed or removed): update it to the new text if that still reads every \
                     shard, else remove it (and from docs/scale.md).\n    {text}",
                    group.kind, group.reason
                ));
            }
        }
    }
    problems
}

/// The keys of the proposed VSchema, over the migrations' tables.
pub fn keys() -> BTreeMap<String, TableKeys> {
    table_keys(&VSchema::load("vschema.json"), &schema::migrations())
}

#[test]
fn every_statement_of_the_core_carries_its_sharding_key_or_is_listed_with_its_reason() {
    let scan = source::scan(&repo_root().join("core-api/src"));
    for (file, function) in source::GENERATED {
        assert!(
            scan.generated_seen
                .contains(&((*file).to_owned(), (*function).to_owned())),
            "GENERATED (core-api/tests/sharding/source.rs) names {file} fn {function}, which \
             has no literal any more: update the list and feed_statements()"
        );
    }
    // Today's core has some fifty statements; a scan that finds few has stopped seeing them.
    assert!(
        scan.statements.len() > 40,
        "only {} statements found",
        scan.statements.len()
    );
    let mut statements = scan.statements;
    statements.extend(feed_statements());
    let allowed = parse_allow_list(&schema::read(&repo_root().join(ALLOW_LIST))).unwrap();
    let mut problems = scan.problems;
    problems.extend(audit(&statements, &allowed, &keys()));
    assert!(
        problems.is_empty(),
        "\n{} problem(s):\n\n{}\n",
        problems.len(),
        problems.join("\n\n")
    );
}

#[test]
fn the_docs_name_every_group_of_the_allow_list() {
    let allowed = parse_allow_list(&schema::read(&repo_root().join(ALLOW_LIST))).unwrap();
    let docs = schema::read(&repo_root().join("docs/scale.md"));
    for group in &allowed {
        assert!(
            docs.contains(&group.reason),
            "docs/scale.md (\"Scatter queries\") does not mention the allow-list group [{}] {:?}: \
             copy the reason there",
            group.kind,
            group.reason
        );
    }
}

#[cfg(test)]
mod checker {
    use super::*;

    fn verdict(sql: &str) -> Verdict {
        routing::check(sql, &keys())
    }

    #[test]
    fn statements_pinned_by_a_routing_column_are_keyed() {
        for sql in [
            "SELECT id FROM members WHERE id = ?",
            "SELECT id FROM members WHERE email = ?",
            "UPDATE members SET name = ? WHERE id = ? AND suspended_at IS NULL",
            "DELETE FROM follows WHERE follower_id = ? AND followee_id = ?",
            "SELECT blocker_id FROM blocks WHERE (blocker_id = ? AND blocked_id = ?) OR (blocker_id = ? AND blocked_id = ?)",
            "SELECT p.id FROM posts p JOIN members m ON m.id = p.writer_id WHERE p.id = ?",
            "SELECT p.id FROM posts p LEFT JOIN blocks b ON b.blocker_id = p.writer_id AND b.blocked_id = ? WHERE p.id = ?",
            "SELECT post_id FROM post_images WHERE post_id IN (?, ?)",
            "DELETE FROM post_images WHERE post_id IN (SELECT id FROM posts WHERE writer_id = ?)",
            "INSERT INTO posts (writer_id, content) VALUES (?, ?)",
            "INSERT INTO members (email, name) VALUES (?, ?)",
        ] {
            assert_eq!(verdict(sql), Verdict::Keyed, "{sql}");
        }
    }

    #[test]
    fn statements_without_their_key_are_caught() {
        for (sql, table) in [
            ("SELECT id FROM posts WHERE content = ?", "posts"),
            ("SELECT id FROM posts WHERE writer_id > ?", "posts"),
            ("SELECT id FROM posts WHERE writer_id + 0 = ?", "posts"),
            ("DELETE FROM follows WHERE follower_id = ? OR followee_id = ?", "follows"),
            ("UPDATE blocks SET created_at = ? WHERE blocked_id = ?", "blocks"),
            ("SELECT p.id FROM posts p JOIN members m ON m.nickname = p.content WHERE p.id = ?", "members"),
            ("SELECT p.id FROM posts p WHERE p.writer_id IN (SELECT s.id FROM members s WHERE s.suspended_at IS NOT NULL)", "members"),
            // An outer join's `ON` pins the joined table only: `posts` is read whole.
            ("SELECT p.id FROM posts p LEFT JOIN blocks b ON b.blocker_id = ? AND b.blocked_id = p.writer_id WHERE b.blocker_id IS NULL", "posts"),
            ("INSERT INTO posts (content, created_at) VALUES (?, ?)", "posts"),
            ("INSERT INTO sessions (id, created_at) VALUES (?, ?)", "sessions"),
        ] {
            match verdict(sql) {
                Verdict::Unkeyed(why) => {
                    assert!(why.iter().any(|w| w.contains(&format!("`{table}`"))), "{sql}: {why:?}")
                }
                other => panic!("{sql}: {other:?}"),
            }
        }
    }

    #[test]
    fn statements_it_cannot_read_are_not_waved_through() {
        assert!(matches!(
            verdict("SELECT id FROM no_such_table WHERE id = ?"),
            Verdict::Unchecked(_)
        ));
        assert!(matches!(
            verdict("SELEC id FROM members"),
            Verdict::Unchecked(_)
        ));
    }

    #[test]
    fn a_new_statement_without_its_key_fails_the_audit_and_names_it() {
        let keys = keys();
        let bad = Statement {
            site: "core-api/src/post/repo.rs:1 (fn new_query)".into(),
            sql: "SELECT id FROM posts WHERE content LIKE ?".into(),
        };
        let problems = audit(std::slice::from_ref(&bad), &[], &keys);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("fn new_query") && problems[0].contains(&bad.sql));
        assert!(
            problems[0].contains(ALLOW_LIST),
            "says what to do: {}",
            problems[0]
        );

        // Listed with a reason: accepted; listed but gone or keyed: reported.
        let listed = parse_allow_list(&format!("[scatter] search\n{}\n", bad.sql)).unwrap();
        assert!(audit(std::slice::from_ref(&bad), &listed, &keys).is_empty());
        let stale = audit(&[], &listed, &keys);
        assert!(
            stale.len() == 1 && stale[0].contains("no longer sends"),
            "{stale:?}"
        );
        let keyed = Statement {
            site: "x".into(),
            sql: "SELECT id FROM posts WHERE content LIKE ? AND writer_id = ?".into(),
        };
        let listed = parse_allow_list(&format!("[scatter] search\n{}\n", keyed.sql)).unwrap();
        let now_keyed = audit(std::slice::from_ref(&keyed), &listed, &keys);
        assert!(now_keyed.len() == 1 && now_keyed[0].contains("carries its sharding key now"));
    }

    #[test]
    fn the_allow_list_needs_a_kind_and_a_reason() {
        assert!(parse_allow_list("SELECT 1").is_err());
        assert!(parse_allow_list("[maybe] why\nSELECT 1").is_err());
        assert!(parse_allow_list("[scatter]\nSELECT 1").is_err());
    }
}
