//! The `heart-core` command line, run as the built binary.

use std::process::Command;

use axum::http::StatusCode;
use secrecy::ExposeSecret;

use crate::helpers::TestApp;

fn heart_core() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_heart-core"));
    // Only what a test sets: no HEART_* of the developer's shell, no .env of the checkout.
    command.env_clear().current_dir(std::env::temp_dir());
    command
}

#[test]
fn help_lists_every_variable_and_starts_no_server() {
    let output = heart_core().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for setting in heart_core::config::vars::SETTINGS {
        for name in setting.names {
            assert!(help.contains(name), "--help lacks {name}");
        }
    }
    for command in ["check-config", "migrate", "admin"] {
        assert!(help.contains(command), "--help lacks {command}");
    }
}

#[test]
fn version_prints_the_crate_version() {
    let output = heart_core().arg("--version").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
}

#[test]
fn check_config_prints_settings_without_secrets_and_fails_on_a_bad_value() {
    let output = heart_core()
        .arg("check-config")
        .env("HEART_DATABASE_URL", "mysql://heart:hunter2@db:3306/heart")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("database = mysql://heart:***@db:3306/heart"),
        "{text}"
    );
    assert!(
        text.contains("warning: using the development JWT signing key"),
        "{text}"
    );
    assert!(!text.contains("hunter2"));

    let bad = heart_core()
        .arg("check-config")
        .env("HEART_SMTP_HOST", "mail")
        .env("HEART_SMTP_PORT", "lots")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8(bad.stderr)
        .unwrap()
        .contains("HEART_SMTP_PORT"));
}

#[tokio::test]
async fn admin_grant_and_revoke_change_the_moderator_role() {
    let app = TestApp::spawn().await;
    let member = app.member("cli-admin").await;
    let run = |action: &str, email: &str| {
        heart_core()
            .args(["admin", action, email])
            .env(
                "HEART_DATABASE_URL",
                app.state.config.database_url.expose_secret(),
            )
            .env("HEART_DATA_DIR", &app.state.config.data_dir)
            .output()
            .unwrap()
    };
    assert_eq!(
        app.get_as(&member, "/admin/reports").await.status,
        StatusCode::FORBIDDEN
    );

    let granted = run("grant", &member.email);
    assert!(granted.status.success(), "{granted:?}");
    assert_eq!(
        app.get_as(&member, "/admin/reports").await.status,
        StatusCode::OK
    );

    let revoked = run("revoke", &member.email);
    assert!(revoked.status.success(), "{revoked:?}");
    assert_eq!(
        app.get_as(&member, "/admin/reports").await.status,
        StatusCode::FORBIDDEN
    );

    let unknown = run("grant", "nobody@example.com");
    assert_eq!(unknown.status.code(), Some(1));
}

#[test]
fn migrate_applies_the_migrations_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/m.db?mode=rwc", dir.path().display());
    let output = heart_core()
        .arg("migrate")
        .env("HEART_DATABASE_URL", &url)
        .env("HEART_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(dir.path().join("m.db").exists());
}
