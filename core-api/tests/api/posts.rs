//! `/post/*`: posts with images, feeds, paging, deletion.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::fixtures;
use crate::helpers::*;

fn ids(page: &Value) -> Vec<i64> {
    page["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_post_with_photos_is_stored_whole_and_answered_like_the_contract() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    let response = app
        .register_post(
            &kim,
            "  first post  ",
            &[fixtures::jpeg(16, 12), fixtures::png(5, 5)],
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    let post = response.json();
    assert!(post["post_id"].as_i64().unwrap() > 0);
    assert!(post.get("id").is_none());
    assert_eq!(post["writer_id"], kim.id);
    assert_eq!(post["writer_email"], kim.email);
    assert_eq!(post["writer_nickname"], "tester");
    assert!(post["avatar_url"].is_null());
    assert_eq!(post["content"], "first post");
    let urls: Vec<&str> = post["image_urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert_eq!(urls.len(), 2);
    assert!(urls[0].contains("/posts/") && urls[0].ends_with(".jpg") && urls[1].ends_with(".png"));
    assert!(
        !urls.iter().any(|u| u.contains("IMG_")),
        "client file names never reach keys"
    );
    let created = post["created_at"].as_str().unwrap();
    assert_eq!(created.len(), 19);
    assert_eq!(&created[10..11], "T");
    assert_eq!(post["updated_at"], post["created_at"]);
    for url in urls {
        assert!(!app.fetch_media(url).await.is_empty());
    }
}

#[tokio::test]
async fn a_post_without_images_has_an_empty_array() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    let post = app.register_post(&kim, "words only", &[]).await.json();
    assert_eq!(post["image_urls"], json!([]));
    let feed = app
        .get_as(
            &kim,
            &format!("/post/posts?member_id={}&page=0&size=10", kim.id),
        )
        .await
        .json();
    assert_eq!(feed["posts"][0]["image_urls"], json!([]));
}

#[tokio::test]
async fn gps_exif_never_reaches_storage() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    let photo = fixtures::jpeg_with_gps(40, 30, 1);
    assert!(fixtures::contains(&photo, b"Exif"));
    let post = app
        .register_post(&kim, "from my phone", &[photo])
        .await
        .json();
    let stored = app
        .fetch_media(post["image_urls"][0].as_str().unwrap())
        .await;
    assert!(!fixtures::contains(&stored, b"Exif"));
    let latitude: Vec<u8> = fixtures::GPS_LATITUDE
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert!(
        !fixtures::contains(&stored, &latitude),
        "GPS coordinates gone"
    );
    assert_eq!(fixtures::dimensions(&stored), (40, 30));
}

/// A 12×8 RGBA APNG of three frames (the last a 4×4 rectangle at (8, 4)), looping twice, with a
/// tEXt chunk.
fn animated_png() -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 12, 8);
    encoder.set_color(png::ColorType::Rgba);
    encoder
        .add_text_chunk("Comment".into(), "secret-comment".into())
        .unwrap();
    encoder.set_animated(3, 2).unwrap();
    let mut writer = encoder.write_header().unwrap();
    writer.set_frame_delay(1, 8).unwrap();
    writer
        .write_image_data(&[255, 0, 0, 255].repeat(12 * 8))
        .unwrap();
    writer
        .write_image_data(&[0, 255, 0, 255].repeat(12 * 8))
        .unwrap();
    writer.set_frame_dimension(4, 4).unwrap();
    writer.set_frame_position(8, 4).unwrap();
    writer
        .write_image_data(&[0, 0, 255, 128].repeat(4 * 4))
        .unwrap();
    writer.finish().unwrap();
    out
}

#[tokio::test]
async fn an_animated_png_is_stored_animated_without_its_text() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    let upload = animated_png();
    let post = app
        .register_post(&kim, "it moves", std::slice::from_ref(&upload))
        .await
        .json();
    let url = post["image_urls"][0].as_str().unwrap();
    assert!(url.ends_with(".png"), "{url}");
    let stored = app.fetch_media(url).await;
    assert!(!fixtures::contains(&stored, b"secret-comment"));
    // Frame by frame what the upload decodes to: size, place, timing and pixels.
    let frames = |bytes: &[u8]| {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes.to_vec()))
            .read_info()
            .unwrap();
        let control = reader.info().animation_control.expect("still animated");
        let mut frames = Vec::new();
        for _ in 0..control.num_frames {
            let mut buf = vec![0; reader.output_buffer_size().unwrap()];
            let info = reader.next_frame(&mut buf).unwrap();
            buf.truncate(info.buffer_size());
            let fc = reader.info().frame_control.unwrap();
            frames.push((
                fc.x_offset,
                fc.y_offset,
                fc.width,
                fc.height,
                fc.delay_num,
                buf,
            ));
        }
        (control.num_plays, frames)
    };
    let (plays, stored_frames) = frames(&stored);
    assert_eq!((plays, stored_frames.len()), (2, 3));
    assert_eq!(frames(&stored), frames(&upload));
}

#[tokio::test]
async fn orientation_is_applied_not_lost() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    // Orientation 6: the camera held sideways; the pixels must come back rotated.
    let post = app
        .register_post(&kim, "portrait", &[fixtures::jpeg_with_gps(40, 30, 6)])
        .await
        .json();
    let stored = app
        .fetch_media(post["image_urls"][0].as_str().unwrap())
        .await;
    assert_eq!(fixtures::dimensions(&stored), (30, 40));
    assert!(!fixtures::contains(&stored, b"Exif"));
}

#[tokio::test]
async fn post_validation_follows_the_contract() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    assert_code(&app.register_post(&kim, "   ", &[]).await, "GLOBAL_002");
    assert_code(
        &app.register_post(&kim, &"x".repeat(5001), &[]).await,
        "GLOBAL_002",
    );
    assert_eq!(
        app.register_post(&kim, &"가".repeat(5000), &[])
            .await
            .status,
        StatusCode::CREATED,
        "5000 characters, not bytes"
    );
    assert_code(
        &app.register_post(&kim, "text", &[b"not an image at all".to_vec()])
            .await,
        "POST_001",
    );
    assert_code(
        &app.multipart_as(
            &kim,
            "/post/registerPost",
            &[Part::text("member_id", &kim.id.to_string())],
        )
        .await,
        "GLOBAL_007",
    );
    assert_code(
        &app.multipart_as(&kim, "/post/registerPost", &[Part::text("content", "hi")])
            .await,
        "GLOBAL_007",
    );
    assert_code(
        &app.post_json_as(&kim, "/post/registerPost", json!({ "content": "hi" }))
            .await,
        "GLOBAL_004",
    );
    assert_eq!(app.count("posts").await, 1);
}

#[tokio::test]
async fn a_bad_file_among_good_ones_stores_nothing() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    let response = app
        .register_post(
            &kim,
            "mixed",
            &[
                fixtures::png(4, 4),
                b"plain text".to_vec(),
                fixtures::png(5, 5),
            ],
        )
        .await;
    assert_code(&response, "POST_001");
    assert_eq!(app.count("posts").await, 0);
    assert_eq!(app.count("post_images").await, 0);
    assert!(app.stored_objects().await.is_empty());
}

#[tokio::test]
async fn too_many_or_too_large_files_are_global_008() {
    let app = TestApp::spawn_with(&[("HEART_MAX_UPLOAD_FILE_BYTES", "4096")]).await;
    let kim = app.member("kim").await;
    let eleven: Vec<Vec<u8>> = (0..11).map(|_| fixtures::png(2, 2)).collect();
    assert_code(
        &app.register_post(&kim, "many", &eleven).await,
        "GLOBAL_008",
    );
    assert_code(
        &app.register_post(&kim, "big", &[fixtures::png(300, 300)])
            .await,
        "GLOBAL_008",
    );
    let ten: Vec<Vec<u8>> = (0..10).map(|_| fixtures::png(2, 2)).collect();
    assert_eq!(
        app.register_post(&kim, "ten", &ten).await.status,
        StatusCode::CREATED
    );
    assert_eq!(app.count("posts").await, 1);
}

#[tokio::test]
async fn a_request_over_the_total_cap_is_global_008() {
    let app = TestApp::spawn_with(&[("HEART_MAX_UPLOAD_REQUEST_BYTES", "8192")]).await;
    let kim = app.member("kim").await;
    let images: Vec<Vec<u8>> = (0..5).map(|_| fixtures::png(40, 40)).collect();
    assert_code(
        &app.register_post(&kim, "too much", &images).await,
        "GLOBAL_008",
    );
    assert!(app.stored_objects().await.is_empty());
}

#[tokio::test]
async fn the_home_feed_is_newest_first_and_pages_like_the_app() {
    let app = TestApp::spawn().await;
    let (kim, lee) = (app.member("kim").await, app.member("lee").await);
    let mut created = Vec::new();
    for i in 0..25 {
        let writer = if i % 2 == 0 { &kim } else { &lee };
        created.push(
            app.register_post(writer, &format!("post {i}"), &[])
                .await
                .json()["post_id"]
                .as_i64()
                .unwrap(),
        );
        if i % 5 == 0 {
            app.clock.advance(1);
        }
    }
    created.reverse();
    let page = |p: i64| format!("/post/posts?member_id={}&page={p}&size=10", kim.id);
    let mut seen = Vec::new();
    for p in 0..3 {
        let body = app.get_as(&kim, &page(p)).await.json();
        assert_eq!(
            body["size"].as_u64().unwrap() as usize,
            body["posts"].as_array().unwrap().len()
        );
        seen.extend(ids(&body));
    }
    assert_eq!(
        seen, created,
        "newest first, ties broken by id, no gaps or repeats"
    );
    assert_eq!(app.get_as(&kim, &page(3)).await.json()["size"], 0);
}

#[tokio::test]
async fn keyset_cursor_walks_the_same_order() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    for i in 0..7 {
        app.register_post(&kim, &format!("p{i}"), &[]).await;
    }
    let first = app
        .get_as(&kim, &format!("/post/posts?member_id={}&size=3", kim.id))
        .await
        .json();
    let mut walked = ids(&first);
    let mut cursor = first["next_cursor"].as_str().unwrap().to_owned();
    loop {
        let next = app
            .get_as(
                &kim,
                &format!("/post/posts?member_id={}&size=3&cursor={cursor}", kim.id),
            )
            .await
            .json();
        walked.extend(ids(&next));
        match next["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let paged: Vec<i64> = ids(&app
        .get_as(&kim, &format!("/post/posts?member_id={}&size=10", kim.id))
        .await
        .json());
    assert_eq!(walked, paged);
    assert_code(
        &app.get_as(
            &kim,
            &format!("/post/posts?member_id={}&cursor=garbage!", kim.id),
        )
        .await,
        "GLOBAL_007",
    );
}

#[tokio::test]
async fn bad_paging_parameters_are_global_007() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    for query in [
        "page=-1&size=10",
        "page=0&size=0",
        "page=0&size=101",
        "page=x&size=10",
        "page=0&size=ten",
    ] {
        assert_code(
            &app.get_as(&kim, &format!("/post/posts?member_id={}&{query}", kim.id))
                .await,
            "GLOBAL_007",
        );
        assert_code(
            &app.get_as(&kim, &format!("/post/posts/{}?{query}", kim.id))
                .await,
            "GLOBAL_007",
        );
    }
    assert_code(
        &app.get_as(&kim, "/post/posts?page=0&size=10").await,
        "GLOBAL_007",
    );
    assert_eq!(
        app.get_as(
            &kim,
            &format!("/post/posts?member_id={}&page=0&size=100", kim.id)
        )
        .await
        .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_feed_hides_members_the_caller_blocks() {
    let app = TestApp::spawn().await;
    let (kim, lee, park) = (
        app.member("kim").await,
        app.member("lee").await,
        app.member("park").await,
    );
    app.register_post(&lee, "by lee", &[]).await;
    app.register_post(&park, "by park", &[]).await;
    app.post_json_as(
        &kim,
        "/member/block",
        json!({ "member_id": kim.id, "target_id": lee.id }),
    )
    .await;
    let feed = app
        .get_as(
            &kim,
            &format!("/post/posts?member_id={}&page=0&size=10", kim.id),
        )
        .await
        .json();
    let writers: Vec<i64> = feed["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["writer_id"].as_i64().unwrap())
        .collect();
    assert_eq!(writers, vec![park.id]);
    // Lee still sees everything; unblocking shows lee again.
    assert_eq!(
        app.get_as(
            &lee,
            &format!("/post/posts?member_id={}&page=0&size=10", lee.id)
        )
        .await
        .json()["size"],
        2
    );
    app.post_json_as(
        &kim,
        "/member/unblock",
        json!({ "member_id": kim.id, "target_id": lee.id }),
    )
    .await;
    assert_eq!(
        app.get_as(
            &kim,
            &format!("/post/posts?member_id={}&page=0&size=10", kim.id)
        )
        .await
        .json()["size"],
        2
    );
}

#[tokio::test]
async fn a_members_posts_are_theirs_only() {
    let app = TestApp::spawn().await;
    let (kim, lee) = (app.member("kim").await, app.member("lee").await);
    app.register_post(&kim, "k1", &[]).await;
    app.register_post(&lee, "l1", &[]).await;
    app.register_post(&kim, "k2", &[]).await;
    let feed = app
        .get_as(&lee, &format!("/post/posts/{}?page=0&size=10", kim.id))
        .await
        .json();
    let contents: Vec<&str> = feed["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["k2", "k1"]);
    assert_eq!(
        app.get_as(&lee, "/post/posts/999999999?page=0&size=10")
            .await
            .json()["size"],
        0
    );
}

#[tokio::test]
async fn the_following_feed_has_followed_members_and_the_callers_own() {
    let app = TestApp::spawn().await;
    let (kim, lee, park) = (
        app.member("kim").await,
        app.member("lee").await,
        app.member("park").await,
    );
    app.register_post(&kim, "mine", &[]).await;
    app.register_post(&lee, "followed", &[]).await;
    app.register_post(&park, "stranger", &[]).await;
    app.post_json_as(
        &kim,
        "/member/follow",
        json!({ "member_id": kim.id, "target_id": lee.id }),
    )
    .await;
    let feed = app
        .get_as(
            &kim,
            &format!("/post/following?member_id={}&page=0&size=10", kim.id),
        )
        .await
        .json();
    let contents: Vec<&str> = feed["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["followed", "mine"]);
}

#[tokio::test]
async fn feed_posts_carry_the_writers_avatar() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    let avatar = app
        .multipart_as(
            &kim,
            "/member/uploadAvatar",
            &[
                Part::text("member_id", &kim.id.to_string()),
                Part::file("file", "a.png", fixtures::png(3, 3)),
            ],
        )
        .await
        .json();
    app.register_post(&kim, "with face", &[]).await;
    let feed = app
        .get_as(
            &kim,
            &format!("/post/posts?member_id={}&page=0&size=10", kim.id),
        )
        .await
        .json();
    assert_eq!(feed["posts"][0]["avatar_url"], avatar["avatar_url"]);
}

#[tokio::test]
async fn the_writer_deletes_a_post_and_its_images() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    let post = app
        .register_post(&kim, "bye", &[fixtures::png(3, 3), fixtures::png(4, 4)])
        .await
        .json();
    let id = post["post_id"].as_i64().unwrap();
    let response = app.delete_as(&kim, &format!("/post/delete/{id}")).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert!(response.body.is_empty());
    assert_eq!(
        (app.count("posts").await, app.count("post_images").await),
        (0, 0)
    );
    assert!(app.stored_objects().await.is_empty());
    assert_code(
        &app.delete_as(&kim, &format!("/post/delete/{id}")).await,
        "POST_004",
    );
    assert_code(
        &app.delete_as(&kim, "/post/delete/nope").await,
        "GLOBAL_007",
    );
}
