//! Moderation through the edge: a suspension takes effect at the edge the moment the core answers
//! (cached feed pages, tokens), and the console's pages pass through uncached with their cookies.

use serde_json::json;

use crate::helpers::{png, post_ids, Member, TestStack};

/// Gives `member` the ADMIN role, as `heart-core admin grant` does.
pub async fn make_admin(stack: &TestStack, member: &Member) {
    heart_core::member::repo::set_role(&stack.state.db, &member.email, "ADMIN")
        .await
        .expect("role granted");
}

/// Reads `path` as `member` until the edge answers it from its cache; returns the post ids.
pub async fn cached_page(stack: &TestStack, member: &Member, path: &str) -> Vec<i64> {
    stack.get_as(member, path).await.ok_json();
    let hit = stack.get_as(member, path).await;
    assert_eq!(hit.cache(), Some("hit"), "{path}");
    post_ids(&hit.ok_json())
}

#[tokio::test]
async fn a_suspension_clears_cached_feeds_and_tokens_at_the_edge_at_once() {
    let stack = TestStack::start().await;
    let (admin, spammer, reader) = (
        stack.member("admin").await,
        stack.member("spammer").await,
        stack.member("reader").await,
    );
    make_admin(&stack, &admin).await;
    let spam = stack
        .register_post(&spammer, "spam", &[png(4, 4)])
        .await
        .json()["post_id"]
        .as_i64()
        .expect("post_id");
    let home = format!("/post/posts?member_id={}&page=0&size=10", reader.id);
    let theirs = format!("/post/posts/{}?page=0&size=10", spammer.id);
    assert_eq!(cached_page(&stack, &reader, &home).await, vec![spam]);
    assert_eq!(cached_page(&stack, &reader, &theirs).await, vec![spam]);
    // The spammer's token passes the edge before.
    stack
        .get_as(&spammer, "/auth/verifyAccessToken")
        .await
        .ok_json();

    let suspended = stack
        .post_json_as(
            &admin,
            &format!("/admin/members/{}/suspend", spammer.id),
            json!({ "reason": "spam" }),
        )
        .await;
    assert_eq!(suspended.ok_json()["suspended"], true);

    // Right after the answer: no cached page shows the post, and the edge refuses the tokens.
    for path in [&home, &theirs] {
        let page = stack.get_as(&reader, path).await;
        assert_ne!(page.cache(), Some("hit"), "{path}: the old page is gone");
        assert!(post_ids(&page.ok_json()).is_empty(), "{path}");
    }
    stack
        .get_as(&spammer, "/auth/verifyAccessToken")
        .await
        .assert_error("GLOBAL_103");
    stack.login(&spammer.email).await.assert_error("AUTH_013");
    stack
        .get_as(
            &reader,
            &format!("/member/profile?member_id={}", spammer.id),
        )
        .await
        .assert_error("MEMBER_005");

    let lifted = stack
        .post_json_as(
            &admin,
            &format!("/admin/members/{}/unsuspend", spammer.id),
            json!({}),
        )
        .await;
    assert_eq!(lifted.ok_json()["suspended"], false);
    assert_eq!(
        post_ids(&stack.get_as(&reader, &home).await.ok_json()),
        vec![spam]
    );
}

#[tokio::test]
async fn the_console_passes_the_edge_with_its_cookies_and_is_never_cached() {
    let stack = TestStack::start().await;
    let first = stack.get("/admin/").await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(first
        .header("content-type")
        .is_some_and(|v| v.starts_with("text/html")));
    assert_eq!(first.header("cache-control"), Some("no-store"));
    assert_eq!(first.cache(), None, "the edge does not cache the console");
    let cookie = first.header("set-cookie").expect("the sign-in cookie");
    assert!(cookie.starts_with("h2h_console_signin="), "{cookie}");
    // A second read is a fresh page with a fresh token: nothing was cached.
    let second = stack.get("/admin/").await;
    assert_ne!(second.header("set-cookie"), Some(cookie));

    // The cookie reaches the core: a forged form token is refused, the real one accepted (the
    // member is no admin, which only the core can tell after it read the cookie and the form).
    let member = stack.member("plain").await;
    let pair = cookie.split(';').next().expect("name=value");
    let token = pair.split_once('=').expect("=").1;
    let form = |csrf: &str| {
        format!(
            "email={}&password={}&csrf={csrf}",
            member.email.replace('@', "%40"),
            crate::helpers::PASSWORD
        )
    };
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("cookie", pair),
    ];
    let forged = stack
        .send("POST", "/admin/signin", &headers, form("forged"))
        .await;
    assert_eq!(forged.status, 403);
    assert!(forged.text().contains("form expired"));
    let checked = stack
        .send("POST", "/admin/signin", &headers, form(token))
        .await;
    assert_eq!(checked.status, 403);
    assert!(
        checked.text().contains("not a moderator"),
        "{}",
        checked.text()
    );
}
