//! `heart --help` and the README's stack table: one list of the stack's variables.

use std::process::Command;

use heart_core::config::vars;
use heart_stack::settings::STACK_SETTINGS;

#[test]
fn help_lists_the_stacks_and_the_cores_variables_and_starts_nothing() {
    let output = Command::new(env!("CARGO_BIN_EXE_heart"))
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for setting in STACK_SETTINGS.iter().chain(vars::SETTINGS) {
        for name in setting.names {
            assert!(help.contains(name), "heart --help lacks {name}");
        }
    }
}

#[test]
fn readme_stack_table_lists_every_stack_variable() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme
        .find("The stack (`heart`, the README's run command) reads the core's variables and these:")
        .expect("README has the stack table");
    let rows = vars::markdown_rows(STACK_SETTINGS);
    assert!(
        readme[start..].contains(&rows),
        "README's stack table differs from stack/src/settings.rs; it should read:\n{rows}"
    );
}
