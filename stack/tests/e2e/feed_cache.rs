//! The edge's feed cache with the real core bumping the feed version: a repeated read is a hit,
//! and the first read after any write that changes a feed is a miss showing the change.

use serde_json::json;

use crate::helpers::{png, post_ids, Answer, Member, Part, TestStack};

/// Reads `path` as `member` twice: the first must be `first_cache`, the second a hit with the same
/// body. Returns the post ids.
async fn read_twice(stack: &TestStack, member: &Member, path: &str, first_cache: &str) -> Vec<i64> {
    let first: Answer = stack.get_as(member, path).await;
    assert_eq!(first.status, 200, "{path}: {}", first.text());
    assert_eq!(first.cache(), Some(first_cache), "{path}");
    let second = stack.get_as(member, path).await;
    assert_eq!(second.status, 200, "{path}: {}", second.text());
    assert_eq!(second.cache(), Some("hit"), "{path}: a repeated read");
    assert_eq!(
        second.body, first.body,
        "{path}: the hit is the page the miss stored"
    );
    assert_eq!(
        second.header("content-type"),
        Some("application/json"),
        "{path}"
    );
    post_ids(&first.json())
}

#[tokio::test]
async fn feed_pages_are_cached_until_a_write_changes_them() {
    let stack = TestStack::start().await;
    let ann = stack.member("ann").await;
    let bob = stack.member("bob").await;
    let home = format!("/post/posts?member_id={}&page=0&size=10", ann.id);
    let bobs = format!("/post/posts/{}?page=0&size=10", bob.id);
    let new_post = |member: &Member, text: &str| {
        let (stack, member, text) = (&stack, member.clone(), text.to_owned());
        async move {
            let posted = stack.register_post(&member, &text, &[]).await;
            assert_eq!(posted.status, 201, "{}", posted.text());
            posted.json()["post_id"].as_i64().expect("post_id")
        }
    };

    let ann_1 = new_post(&ann, "ann 1").await;
    assert_eq!(read_twice(&stack, &ann, &home, "miss").await, vec![ann_1]);
    assert_eq!(
        read_twice(&stack, &ann, &bobs, "miss").await,
        Vec::<i64>::new()
    );

    // Another member's new post: Ann's next home read is a miss that shows it.
    let bob_1 = new_post(&bob, "bob 1").await;
    assert_eq!(
        read_twice(&stack, &ann, &home, "miss").await,
        vec![bob_1, ann_1]
    );
    assert_eq!(read_twice(&stack, &ann, &bobs, "miss").await, vec![bob_1]);
    // The member feed is shared by every caller: Bob hits the page Ann's read stored.
    let shared = stack.get_as(&bob, &bobs).await;
    assert_eq!(shared.cache(), Some("hit"));
    assert_eq!(post_ids(&shared.json()), vec![bob_1]);
    // The home feed is per caller (it hides the caller's blocks): Bob's first read is a miss.
    let bob_home = format!("/post/posts?member_id={}&page=0&size=10", bob.id);
    assert_eq!(
        read_twice(&stack, &bob, &bob_home, "miss").await,
        vec![bob_1, ann_1]
    );

    // A deletion.
    let bob_2 = new_post(&bob, "bob 2").await;
    assert_eq!(
        read_twice(&stack, &ann, &home, "miss").await,
        vec![bob_2, bob_1, ann_1]
    );
    let deleted = stack
        .delete_as(&bob, &format!("/post/delete/{bob_2}"))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    assert_eq!(
        read_twice(&stack, &ann, &home, "miss").await,
        vec![bob_1, ann_1]
    );
    assert_eq!(read_twice(&stack, &ann, &bobs, "miss").await, vec![bob_1]);

    // A block hides Bob's posts from Ann's home feed at once; an unblock shows them again.
    let pair = json!({ "member_id": ann.id, "target_id": bob.id });
    assert_eq!(
        stack
            .post_json_as(&ann, "/member/block", pair.clone())
            .await
            .status,
        200
    );
    assert_eq!(read_twice(&stack, &ann, &home, "miss").await, vec![ann_1]);
    assert_eq!(
        stack
            .post_json_as(&ann, "/member/unblock", pair.clone())
            .await
            .status,
        200
    );
    assert_eq!(
        read_twice(&stack, &ann, &home, "miss").await,
        vec![bob_1, ann_1]
    );

    // A follow changes what the app shows too (counts, the following feed): the version moves.
    assert_eq!(
        stack
            .post_json_as(&ann, "/member/follow", pair.clone())
            .await
            .status,
        200
    );
    assert_eq!(
        read_twice(&stack, &ann, &home, "miss").await,
        vec![bob_1, ann_1]
    );

    // A new avatar shows in the posts' avatar_url at once.
    let avatar = stack
        .multipart_as(
            &bob,
            "/member/uploadAvatar",
            &[
                Part::text("member_id", &bob.id.to_string()),
                Part::file("file", "bob.png", png(2, 2)),
            ],
        )
        .await;
    assert_eq!(avatar.status, 201, "{}", avatar.text());
    let avatar_url = avatar.json()["avatar_url"].clone();
    let page = stack.get_as(&ann, &bobs).await;
    assert_eq!(page.cache(), Some("miss"));
    assert_eq!(page.json()["posts"][0]["avatar_url"], avatar_url);

    // Pages are keyed by their query: another page size is its own entry.
    let small = format!("/post/posts?member_id={}&page=0&size=1", ann.id);
    assert_eq!(read_twice(&stack, &ann, &small, "miss").await, vec![bob_1]);
    // Parameters the route does not read do not make entries: the page already cached answers.
    let odd = format!("/post/posts?member_id={}&size=1&utm=x&page=00", ann.id);
    let answer = stack.get_as(&ann, &odd).await;
    assert_eq!(answer.cache(), Some("hit"), "{}", answer.text());
    // Nor does the writer feed's member_id, which the core reads and ignores.
    let first = stack
        .get_as(&ann, &format!("/post/posts/{}?member_id=1", bob.id))
        .await;
    assert_eq!(first.status, 200, "{}", first.text());
    for other in [2, 3] {
        let answer = stack
            .get_as(&ann, &format!("/post/posts/{}?member_id={other}", bob.id))
            .await;
        assert_eq!(answer.cache(), Some("hit"), "{}", answer.text());
    }
    // A parameter the route reads, repeated or malformed: the core's to refuse, never cached.
    let repeated = format!("/post/posts?member_id={}&page=0&page=1", ann.id);
    for _ in 0..2 {
        let answer = stack.get_as(&ann, &repeated).await;
        assert_eq!(answer.cache(), Some("bypass"), "{}", answer.text());
    }
    // Errors are not cached.
    let bad = format!("/post/posts?member_id={}&page=0&size=1000", ann.id);
    for _ in 0..2 {
        let answer = stack.get_as(&ann, &bad).await;
        answer.assert_error("GLOBAL_007");
        assert_ne!(answer.cache(), Some("hit"));
    }
}
