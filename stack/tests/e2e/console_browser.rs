//! The moderation console in a real browser: headless Chromium (Debian's `chromium` with its
//! `chromedriver`, driven by Selenium in `stack/tests/browser/console_round.py`) signs in through
//! the edge, pages through the open reports to the one it is after, suspends the member; then the
//! app's feed, read through the edge's cache, no longer shows their posts.
//!
//! Needs `chromium`, `chromedriver` and Python's `selenium`. Without them the test says it is
//! skipped, unless `HEART_TEST_BROWSER=1` (as in `.ci/run`), which makes their absence a failure.
//! `HEART_SCREENSHOTS_DIR=docs/images` also saves the console's pages at a phone's size there.

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;

use crate::helpers::{png, post_ids, TestStack, PASSWORD};
use crate::moderation::{cached_page, make_admin};

/// What is missing to run a browser here, if anything.
fn missing_browser() -> Option<String> {
    let missing: Vec<&str> = ["chromium", "chromedriver"]
        .into_iter()
        .filter(|tool| {
            !std::env::var_os("PATH").is_some_and(|path| {
                std::env::split_paths(&path).any(|dir| dir.join(tool).is_file())
            })
        })
        .collect();
    let selenium = Command::new("python3")
        .args(["-c", "import selenium"])
        .status()
        .is_ok_and(|status| status.success());
    match (missing.is_empty(), selenium) {
        (true, true) => None,
        _ => Some(format!(
            "missing: {}{}",
            missing.join(", "),
            if selenium { "" } else { " python3 selenium" }
        )),
    }
}

/// Reports a page of the console's list holds.
const REPORTS_PER_PAGE: usize = heart_core::console::REPORTS_PER_PAGE as usize;

/// Files `REPORTS_PER_PAGE + 5` reports about `target`, newer than every report so far, each by a
/// member of its own (written straight into the database: these members never sign in). Returns
/// how many.
async fn bury_under_newer_reports(stack: &TestStack, target: i64) -> usize {
    use heart_core::member::repo::{self as members, NewMember};
    use heart_core::moderation::repo as reports;
    let db = &stack.state.db;
    let now = stack.state.clock.now();
    let count = REPORTS_PER_PAGE + 5;
    let mut conn = db.pool.acquire().await.expect("a connection");
    for n in 0..count {
        let (email, name, nickname) = (
            format!("filler-{n}-{}@example.com", std::process::id()),
            format!("Filler {n}"),
            format!("filler{n}"),
        );
        let filler = NewMember {
            email: &email,
            name: &name,
            nickname: &nickname,
            password_hash: "not-a-hash",
        };
        let reporter = members::insert(&mut conn, &filler, now)
            .await
            .expect("a filler member");
        reports::insert_once(
            db,
            reporter,
            target,
            Some(&format!("Filler report {n}")),
            now + 1,
        )
        .await
        .expect("a filler report");
    }
    count
}

#[tokio::test]
async fn a_moderator_suspends_a_member_in_a_real_browser_and_the_feed_drops_their_posts() {
    if let Some(missing) = missing_browser() {
        assert!(
            std::env::var("HEART_TEST_BROWSER").as_deref() != Ok("1"),
            "HEART_TEST_BROWSER=1 but {missing}"
        );
        eprintln!("skipped: no browser here ({missing}); HEART_TEST_BROWSER=1 requires one");
        return;
    }
    let stack = TestStack::start().await;
    let (admin, spammer, reader) = (
        stack.member("moderator").await,
        stack.member("spammer").await,
        stack.member("reader").await,
    );
    make_admin(&stack, &admin).await;
    for text in ["Cheap pills, today only!", "Click my link for free coins"] {
        let posted = stack
            .register_post(&spammer, text, &[png(320, 200), png(200, 200)])
            .await;
        assert_eq!(posted.status, 201, "{}", posted.text());
    }
    stack
        .register_post(&reader, "Lovely walk by the river", &[])
        .await;
    let reported = stack
        .post_json_as(
            &reader,
            "/member/report",
            json!({ "member_id": reader.id, "target_id": spammer.id, "reason": "Spam in my feed, twice today" }),
        )
        .await;
    assert_eq!(reported.status, 200, "{}", reported.text());
    // Newer reports than a page holds, so the moderator finds this one on the list's second page.
    let newer = bury_under_newer_reports(&stack, reader.id).await;
    let home = format!("/post/posts?member_id={}&page=0&size=10", reader.id);
    assert_eq!(cached_page(&stack, &reader, &home).await.len(), 3);

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/console_round.py");
    let mut command = Command::new("python3");
    command.arg(&script).args([
        "--url",
        &format!("http://{}", stack.addr),
        "--email",
        &admin.email,
        "--password",
        PASSWORD,
        "--member",
        &spammer.id.to_string(),
        "--on-page",
        &(newer / REPORTS_PER_PAGE).to_string(),
    ]);
    if let Ok(dir) = std::env::var("HEART_SCREENSHOTS_DIR") {
        command.args(["--screenshots", &dir]);
    }
    let run = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the browser run")
        .expect("python3 starts");
    assert!(
        run.status.success(),
        "the browser round failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );

    // The app's feed, through the edge that had the page cached: only the reader's post is left.
    let page = stack.get_as(&reader, &home).await;
    assert_ne!(page.cache(), Some("hit"));
    let contents: Vec<String> = page.ok_json()["posts"]
        .as_array()
        .expect("posts")
        .iter()
        .map(|p| p["content"].as_str().expect("content").to_owned())
        .collect();
    assert_eq!(contents, ["Lovely walk by the river"]);
    assert_eq!(post_ids(&page.json()).len(), 1);
    stack.login(&spammer.email).await.assert_error("AUTH_013");
}
