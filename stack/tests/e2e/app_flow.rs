//! The Android app's whole flow, through the edge, against the real core.

use serde_json::{json, Value};

use crate::helpers::{png, post_ids, unique_email, Part, TestStack};

#[tokio::test]
async fn the_apps_whole_flow_works_through_the_edge() {
    let stack = TestStack::start().await;

    // Health is answered by the edge itself.
    let health = stack.get("/healthz").await;
    assert_eq!(health.status, 200, "{}", health.text());

    // Sign-up: code by mail, confirm, join.
    let email = unique_email("kim");
    let sent = stack
        .post_json("/auth/emailVerificationCode", json!({ "email": email }))
        .await;
    assert_eq!(sent.status, 202, "{}", sent.text());
    assert_eq!(sent.json(), json!({ "message": "Email sent." }));
    let code = stack.last_code_for(&email);

    let wrong = stack
        .post_json(
            "/auth/confirmVerificationCode",
            json!({ "email": email, "verification_code": "00000000" }),
        )
        .await;
    wrong.assert_error("AUTH_003");
    let early_join = stack
        .post_json(
            "/auth/join",
            json!({ "email": email, "name": "Kim", "nickname": "kimmy", "password": "passw0rd1" }),
        )
        .await;
    early_join.assert_error("AUTH_012");

    let confirmed = stack
        .post_json(
            "/auth/confirmVerificationCode",
            json!({ "email": email, "verification_code": code }),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text());
    assert_eq!(
        confirmed.json(),
        json!({ "message": "Valid Verification Code." })
    );
    let joined = stack
        .post_json(
            "/auth/join",
            json!({ "email": email, "name": "Kim", "nickname": "kimmy", "password": crate::helpers::PASSWORD }),
        )
        .await;
    assert_eq!(joined.status, 201, "{}", joined.text());
    let kim_id = joined.json()["member_id"].as_i64().expect("member_id");

    // Login: the app reads all five fields.
    let login = stack.login(&email).await;
    let body = login.ok_json();
    assert_eq!(body["member_id"], kim_id);
    assert_eq!(body["name"], "Kim");
    assert_eq!(body["nickname"], "kimmy");
    assert!(body["access_token"]
        .as_str()
        .is_some_and(|t| t.split('.').count() == 3));
    assert!(body["refresh_token"]
        .as_str()
        .is_some_and(|t| t.len() >= 32));
    let mut kim = stack.session(kim_id, &email).await;

    // Splash screen.
    let verified = stack
        .with_token("GET", "/auth/verifyAccessToken", &kim.access_token)
        .await;
    assert_eq!(verified.ok_json(), json!({ "message": "verified" }));

    // Profile with real counts.
    let profile = stack
        .get_as(&kim, &format!("/member/profile?member_id={kim_id}"))
        .await
        .ok_json();
    assert_eq!(profile["member_id"], kim_id);
    assert_eq!(profile["email"], email.as_str());
    assert_eq!(profile["nickname"], "kimmy");
    assert_eq!(profile["avatar_url"], Value::Null);
    assert_eq!(
        (
            &profile["post_size"],
            &profile["follower_size"],
            &profile["following_size"]
        ),
        (&json!(0), &json!(0), &json!(0))
    );

    // Avatar: multipart, a real PNG; the link is absolute and served (through the edge).
    let image = png(3, 2);
    let avatar = stack
        .multipart_as(
            &kim,
            "/member/uploadAvatar",
            &[
                Part::text("member_id", &kim_id.to_string()),
                Part::file("file", "me.png", image.clone()),
            ],
        )
        .await;
    assert_eq!(avatar.status, 201, "{}", avatar.text());
    let avatar_url = avatar.json()["avatar_url"]
        .as_str()
        .expect("avatar_url")
        .to_owned();
    assert_eq!(avatar.json()["member_id"], kim_id);
    let avatar_path = avatar_url
        .strip_prefix(&format!("http://{}", stack.addr))
        .unwrap_or_else(|| panic!("{avatar_url} is not on the edge's address"));
    let fetched = stack.get(avatar_path).await;
    assert_eq!(fetched.status, 200);
    assert!(fetched.body.starts_with(b"\x89PNG"), "the avatar is a PNG");
    // Acting for someone else is refused.
    let as_other = stack
        .multipart_as(
            &kim,
            "/member/uploadAvatar",
            &[
                Part::text("member_id", &(kim_id + 1000).to_string()),
                Part::file("file", "me.png", image.clone()),
            ],
        )
        .await;
    as_other.assert_error("GLOBAL_105");

    // A post with a photo.
    let posted = stack
        .register_post(&kim, "Hello, Heart to Heart", std::slice::from_ref(&image))
        .await;
    assert_eq!(posted.status, 201, "{}", posted.text());
    let post = posted.json();
    let kim_post = post["post_id"].as_i64().expect("post_id");
    assert_eq!(post["writer_id"], kim_id);
    assert_eq!(post["content"], "Hello, Heart to Heart");
    assert_eq!(post["avatar_url"], avatar_url.as_str());
    let image_urls = post["image_urls"].as_array().expect("image_urls");
    assert_eq!(image_urls.len(), 1, "{post}");
    let photo_path = image_urls[0]
        .as_str()
        .and_then(|u| u.strip_prefix(&format!("http://{}", stack.addr)))
        .expect("image on the edge's address")
        .to_owned();
    assert!(stack.get(&photo_path).await.body.starts_with(b"\x89PNG"));
    let not_an_image = stack
        .multipart_as(
            &kim,
            "/post/registerPost",
            &[
                Part::text("member_id", &kim_id.to_string()),
                Part::text("content", "text"),
                Part::file("files", "x.png", b"not an image at all".to_vec()),
            ],
        )
        .await;
    not_an_image.assert_error("POST_001");

    // A second member with eleven posts, so the home feed has two pages.
    let lee = stack.member("lee").await;
    let mut lee_posts = Vec::new();
    for i in 0..11 {
        let posted = stack.register_post(&lee, &format!("post {i}"), &[]).await;
        assert_eq!(posted.status, 201, "{}", posted.text());
        assert_eq!(posted.json()["image_urls"], json!([]));
        lee_posts.push(posted.json()["post_id"].as_i64().expect("post_id"));
    }

    // Home feed as the app pages it: page 0 size 10, then page 1; newest first.
    let mut all: Vec<i64> = lee_posts.clone();
    all.push(kim_post);
    all.sort_unstable_by(|a, b| b.cmp(a));
    let first = stack
        .get_as(
            &kim,
            &format!("/post/posts?member_id={kim_id}&page=0&size=10"),
        )
        .await;
    assert_eq!(first.cache(), Some("miss"));
    let first = first.ok_json();
    assert_eq!(first["size"], 10);
    assert_eq!(post_ids(&first), all[..10].to_vec());
    let second = stack
        .get_as(
            &kim,
            &format!("/post/posts?member_id={kim_id}&page=1&size=10"),
        )
        .await
        .ok_json();
    assert_eq!(second["size"], 2, "the last page is short: the app stops");
    assert_eq!(post_ids(&second), all[10..].to_vec());
    let kims_own = stack
        .get_as(&lee, &format!("/post/posts/{kim_id}?page=0&size=10"))
        .await
        .ok_json();
    assert_eq!(post_ids(&kims_own), vec![kim_post]);
    let post = &kims_own["posts"][0];
    assert_eq!(post["writer_email"], email.as_str());
    assert_eq!(post["writer_nickname"], "kimmy");
    assert!(
        post["created_at"]
            .as_str()
            .is_some_and(|t| t.len() == 19 && t.as_bytes()[10] == b'T'),
        "{post}"
    );
    let bad_page = stack
        .get_as(
            &kim,
            &format!("/post/posts?member_id={kim_id}&page=-1&size=10"),
        )
        .await;
    bad_page.assert_error("GLOBAL_007");

    // Block Lee: Lee's posts leave Kim's home feed; unblock brings them back.
    let target = json!({ "member_id": kim_id, "target_id": lee.id });
    let blocked = stack
        .post_json_as(&kim, "/member/block", target.clone())
        .await;
    assert_eq!(blocked.ok_json(), target);
    stack
        .post_json_as(&kim, "/member/block", target.clone())
        .await
        .assert_error("MEMBER_006");
    let blocking = stack
        .get_as(
            &kim,
            &format!("/member/getBlockingMembers?member_id={kim_id}"),
        )
        .await
        .ok_json();
    assert_eq!(blocking["size"], 1);
    assert_eq!(blocking["members"][0]["id"], lee.id);
    let feed = stack
        .get_as(
            &kim,
            &format!("/post/posts?member_id={kim_id}&page=0&size=10"),
        )
        .await;
    assert_eq!(feed.cache(), Some("miss"));
    assert_eq!(post_ids(&feed.ok_json()), vec![kim_post]);
    let unblocked = stack
        .post_json_as(&kim, "/member/unblock", target.clone())
        .await;
    assert_eq!(unblocked.ok_json(), target);
    let feed = stack
        .get_as(
            &kim,
            &format!("/post/posts?member_id={kim_id}&page=0&size=10"),
        )
        .await;
    assert_eq!(feed.cache(), Some("miss"));
    assert_eq!(post_ids(&feed.ok_json()), all[..10].to_vec());

    // Follow: the counts of both profiles change.
    let followed = stack
        .post_json_as(&kim, "/member/follow", target.clone())
        .await;
    assert_eq!(followed.status, 200, "{}", followed.text());
    let lee_profile = stack
        .get_as(&kim, &format!("/member/profile?member_id={}", lee.id))
        .await
        .ok_json();
    assert_eq!(lee_profile["follower_size"], 1);
    assert_eq!(lee_profile["post_size"], 11);
    let kim_profile = stack
        .get_as(&kim, &format!("/member/profile?member_id={kim_id}"))
        .await
        .ok_json();
    assert_eq!(kim_profile["following_size"], 1);
    assert_eq!(kim_profile["post_size"], 1);
    assert_eq!(kim_profile["avatar_url"], avatar_url.as_str());

    // Delete a post: only its owner may; then it is gone from the feeds.
    stack
        .delete_as(&lee, &format!("/post/delete/{kim_post}"))
        .await
        .assert_error("GLOBAL_105");
    let deleted = stack
        .delete_as(&kim, &format!("/post/delete/{kim_post}"))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    assert!(deleted.body.is_empty());
    stack
        .delete_as(&kim, &format!("/post/delete/{kim_post}"))
        .await
        .assert_error("POST_004");
    let kims_own = stack
        .get_as(&lee, &format!("/post/posts/{kim_id}?page=0&size=10"))
        .await;
    assert_eq!(kims_own.cache(), Some("miss"));
    assert_eq!(kims_own.ok_json()["size"], 0);
    assert_eq!(
        stack.get(&photo_path).await.status,
        404,
        "the photo went with the post"
    );

    // Reissue as the app sends it (member_id as a string): a new pair; the old refresh is spent.
    let reissued = stack
        .reissue(json!(kim_id.to_string()), &kim.refresh_token)
        .await
        .ok_json();
    assert_eq!(reissued["member_id"], kim_id);
    assert_eq!(reissued["email"], email.as_str());
    // (`avatar_url` here: see `reissue_answers_the_members_avatar_url`.)
    assert_ne!(reissued["refresh_token"], kim.refresh_token.as_str());
    kim.access_token = reissued["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    kim.refresh_token = reissued["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert_eq!(
        stack
            .with_token("GET", "/auth/verifyAccessToken", &kim.access_token)
            .await
            .status,
        200
    );

    // Logout: the access token is refused at once, the refresh token too.
    let logout = stack
        .with_token("POST", "/auth/logout", &kim.access_token)
        .await;
    assert_eq!(logout.ok_json(), json!({ "message": "Logged out" }));
    stack
        .with_token("GET", "/auth/verifyAccessToken", &kim.access_token)
        .await
        .assert_error("GLOBAL_103");
    stack
        .get_as(
            &kim,
            &format!("/post/posts?member_id={kim_id}&page=0&size=10"),
        )
        .await
        .assert_error("GLOBAL_103");
    stack
        .reissue(json!(kim_id), &kim.refresh_token)
        .await
        .assert_error("AUTH_007");

    // Delete the account from a new session: everything of it goes, its tokens stop working.
    let kim = stack.session(kim_id, &email).await;
    stack
        .delete_as(&kim, &format!("/member/delete/{}", lee.id))
        .await
        .assert_error("GLOBAL_105");
    let gone = stack
        .delete_as(&kim, &format!("/member/delete/{kim_id}"))
        .await;
    assert_eq!(gone.status, 204, "{}", gone.text());
    assert!(gone.body.is_empty());
    stack
        .with_token("GET", "/auth/verifyAccessToken", &kim.access_token)
        .await
        .assert_error("GLOBAL_103");
    stack.login(&email).await.assert_error("AUTH_006");
    stack
        .get_as(&lee, &format!("/member/profile?member_id={kim_id}"))
        .await
        .assert_error("MEMBER_005");
    assert_eq!(
        stack.get(avatar_path).await.status,
        404,
        "the avatar went with the account"
    );
    let lee_profile = stack
        .get_as(&lee, &format!("/member/profile?member_id={}", lee.id))
        .await
        .ok_json();
    assert_eq!(
        lee_profile["follower_size"], 0,
        "the follow went with the account"
    );
}

#[tokio::test]
async fn errors_from_the_core_and_the_edge_keep_the_contract_format() {
    let stack = TestStack::start().await;
    let member = stack.member("err").await;
    // From the core, forwarded unchanged.
    stack.get("/no/such/route").await.assert_error("GLOBAL_001");
    stack
        .get_as(&member, "/post/no-such-route")
        .await
        .assert_error("GLOBAL_001");
    stack
        .send(
            "POST",
            "/auth/login",
            &[("content-type", "application/json")],
            "{not json",
        )
        .await
        .assert_error("GLOBAL_004");
    // From the edge: no token on an authenticated route.
    stack
        .get("/member/profile?member_id=1")
        .await
        .assert_error("GLOBAL_103");
    // A client cannot pass itself off as the edge.
    let spoofed = stack
        .send(
            "GET",
            &format!("/member/profile?member_id={}", member.id),
            &[
                ("x-heart-member-id", &member.id.to_string()),
                ("x-heart-session-id", "whatever"),
                ("x-heart-edge-secret", "guess"),
            ],
            "",
        )
        .await;
    spoofed.assert_error("GLOBAL_103");
}

/// The reissue answer carries the member's `avatar_url` (the app stores it with the new pair).
#[tokio::test]
async fn reissue_answers_the_members_avatar_url() {
    let stack = TestStack::start().await;
    let member = stack.member("avatar").await;
    let avatar = stack
        .multipart_as(
            &member,
            "/member/uploadAvatar",
            &[
                Part::text("member_id", &member.id.to_string()),
                Part::file("file", "me.png", png(2, 2)),
            ],
        )
        .await;
    assert_eq!(avatar.status, 201, "{}", avatar.text());
    let reissued = stack
        .reissue(json!(member.id.to_string()), &member.refresh_token)
        .await
        .ok_json();
    assert_eq!(reissued["avatar_url"], avatar.json()["avatar_url"]);
}
