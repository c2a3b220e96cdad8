//! The documents that must agree with the code: the committed OpenAPI snapshot and the README's
//! configuration table. `UPDATE_SNAPSHOTS=1 cargo test -p heart-core --test api docs` rewrites both
//! files' generated parts; review the diff like any API change.

use std::path::PathBuf;

use heart_core::config::vars;

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn updating() -> bool {
    std::env::var_os("UPDATE_SNAPSHOTS").is_some()
}

#[test]
fn openapi_document_matches_the_committed_snapshot() {
    let document = heart_core::router::openapi_document();
    let generated = serde_json::to_string_pretty(&document).unwrap() + "\n";
    let path = repo_file("openapi.json");
    if updating() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "the API changed: {} differs from the generated document; rerun with UPDATE_SNAPSHOTS=1 and review the diff",
        path.display()
    );
}

#[test]
fn openapi_names_every_error_code() {
    let document = serde_json::to_value(heart_core::router::openapi_document()).unwrap();
    let codes = &document["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"];
    let codes: Vec<&str> = codes
        .as_array()
        .expect("ErrorBody.code is an enum")
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let expected: Vec<&str> = heart_shared::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(codes, expected);
}

const CORE_TABLE_START: &str = "<!-- core settings: generated from core-api/src/config/vars.rs -->";
const TABLE_END: &str = "<!-- end of settings -->";

#[test]
fn readme_configuration_table_lists_every_core_variable() {
    let path = repo_file("../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(CORE_TABLE_START)
        .expect("README has the core settings marker")
        + CORE_TABLE_START.len();
    let end = start
        + readme[start..]
            .find(TABLE_END)
            .expect("README has the end marker");
    let generated = format!(
        "\n| variable | default | meaning |\n|---|---|---|\n{}",
        vars::markdown_rows(vars::SETTINGS)
    );
    if updating() {
        let updated = format!("{}{generated}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert!(
        readme[start..end] == generated,
        "README's core configuration table differs from config::vars::SETTINGS; rerun with UPDATE_SNAPSHOTS=1"
    );
}

#[test]
fn every_setting_is_documented_with_a_meaning() {
    for setting in vars::SETTINGS {
        assert!(!setting.names.is_empty());
        assert!(
            setting.names.iter().all(|n| n.starts_with("HEART_")),
            "{:?}",
            setting.names
        );
    }
}
