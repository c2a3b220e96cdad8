//! The error-code table of `docs/api.md` is the `ErrorCode` enum, row for row: every code with its
//! HTTP status, none missing, none extra, none twice.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;

use heart_shared::ErrorCode;

const START: &str = "<!-- error-codes:start -->";
const END: &str = "<!-- error-codes:end -->";

fn api_doc() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The `code → status` rows between the markers; panics on a malformed or repeated row.
fn table_rows(doc: &str) -> Vec<(String, u16)> {
    let start = doc
        .find(START)
        .expect("docs/api.md lost its error-codes:start marker");
    let end = doc
        .find(END)
        .expect("docs/api.md lost its error-codes:end marker");
    assert!(start < end, "the error-code markers are out of order");
    let mut rows = Vec::new();
    for line in doc[start + START.len()..end].lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert!(
            cells.len() == 3,
            "a row of the error-code table must have three cells: {line}"
        );
        if cells[0] == "code" || cells[0].starts_with("---") {
            continue; // header and separator
        }
        let status = cells[1]
            .parse::<u16>()
            .unwrap_or_else(|_| panic!("not an HTTP status in {line}"));
        assert!(
            !cells[2].is_empty(),
            "{}: the meaning must not be empty",
            cells[0]
        );
        rows.push((cells[0].to_owned(), status));
    }
    rows
}

/// Fails to compile when a variant is added to `ErrorCode` without being listed here, which is the
/// reminder that `ErrorCode::ALL` (and so the documented table) needs the new code.
fn is_listed(code: ErrorCode) -> bool {
    use ErrorCode::*;
    match code {
        NoSuchRoute
        | InvalidInput
        | MethodNotAllowed
        | UnreadableBody
        | InvalidParameter
        | PayloadTooLarge
        | MissingFilePart
        | InvalidAccessToken
        | ExpiredAccessToken
        | Forbidden
        | RateLimited
        | Internal
        | DependencyUnavailable
        | EmailTaken
        | MailNotSent
        | NoVerificationCode
        | WrongVerificationCode
        | VerificationCodeExpired
        | MemberNotFoundAtAuth
        | WrongCredentials
        | InvalidRefreshToken
        | ExpiredRefreshToken
        | MemberGone
        | EmailNotVerified
        | MemberNotFound
        | AvatarUploadFailed
        | AvatarNotAnImage
        | NoSuchMember
        | AlreadyBlocking
        | AvatarDeleteFailed
        | WriterNotFound
        | PostFileNotAnImage
        | PostStorageFailed
        | NoSuchPost
        | MemberSuspended => ErrorCode::ALL.contains(&code),
    }
}

#[test]
fn every_variant_is_in_error_code_all() {
    // One variant per distinct code string: ALL has no duplicates, so its length is the enum's size.
    let distinct: std::collections::HashSet<_> = ErrorCode::ALL.iter().collect();
    assert_eq!(distinct.len(), ErrorCode::ALL.len());
    for code in ErrorCode::ALL {
        assert!(is_listed(code));
    }
}

/// What differs between the documented rows and `ErrorCode::ALL`, one line per difference.
fn differences(rows: &[(String, u16)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut documented = BTreeMap::new();
    for (code, status) in rows {
        if documented.insert(code.clone(), *status).is_some() {
            problems.push(format!("{code} is documented twice"));
        }
    }
    let expected: BTreeMap<String, u16> = ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), c.status()))
        .collect();
    for (code, status) in &expected {
        match documented.get(code) {
            None => problems.push(format!("{code} ({status}) is missing from the table")),
            Some(doc_status) if doc_status != status => problems.push(format!(
                "{code}: the table says {doc_status}, the server answers {status}"
            )),
            Some(_) => {}
        }
    }
    for code in documented.keys() {
        if !expected.contains_key(code) {
            problems.push(format!(
                "{code} is in the table but the server has no such code"
            ));
        }
    }
    problems
}

#[test]
fn the_error_code_table_of_docs_api_md_is_the_error_code_enum() {
    let rows = table_rows(&api_doc());
    let problems = differences(&rows);
    assert!(
        problems.is_empty(),
        "docs/api.md and ErrorCode disagree:\n{}",
        problems.join("\n")
    );
    assert_eq!(rows.len(), ErrorCode::ALL.len());
}

#[test]
fn the_check_notices_a_missing_changed_or_extra_row() {
    let doc = api_doc();
    let row = "| POST_004 | 404 | no such post |\n";
    assert!(doc.contains(row), "the POST_004 row was expected verbatim");

    let without = table_rows(&doc.replacen(row, "", 1));
    assert_eq!(
        differences(&without),
        ["POST_004 (404) is missing from the table"]
    );

    let changed = table_rows(&doc.replacen("| POST_004 | 404 |", "| POST_004 | 410 |", 1));
    assert_eq!(
        differences(&changed),
        ["POST_004: the table says 410, the server answers 404"]
    );

    let extra = table_rows(&doc.replacen(END, &format!("| POST_999 | 404 | made up |\n{END}"), 1));
    assert_eq!(
        differences(&extra),
        ["POST_999 is in the table but the server has no such code"]
    );

    let twice = table_rows(&doc.replacen(END, &format!("{row}{END}"), 1));
    assert_eq!(differences(&twice), ["POST_004 is documented twice"]);
}
