//! The moderation console at `/admin/`: its own cookie session, CSRF tokens on every form,
//! rate-limited sign-in, and the moderation actions behind its forms.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::json;

use crate::helpers::*;
use crate::moderation::make_admin;

/// A browser of the console: its cookies, kept as `Set-Cookie` says.
#[derive(Default)]
struct Browser {
    cookies: Vec<(String, String)>,
    forwarded_proto: Option<&'static str>,
}

impl Browser {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, response: &TestResponse) {
        for value in response.headers.get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !text.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    async fn get(&mut self, app: &TestApp, path: &str) -> TestResponse {
        let mut request = Request::get(path).header(header::COOKIE, self.cookie_header());
        if let Some(proto) = self.forwarded_proto {
            request = request.header("x-forwarded-proto", proto);
        }
        let response = app.send(request.body(Body::empty()).unwrap()).await;
        self.keep(&response);
        response
    }

    async fn post_form(
        &mut self,
        app: &TestApp,
        ip: [u8; 4],
        path: &str,
        form: &[(&str, &str)],
    ) -> TestResponse {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let request = Request::post(path)
            .header(header::COOKIE, self.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let response = app.send_from(ip, request).await;
        self.keep(&response);
        response
    }

    fn has(&self, name: &str) -> bool {
        self.cookies.iter().any(|(k, _)| k == name)
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of the first `name="csrf"` hidden field of a page.
fn csrf_of(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[start..][..page[start..].find('"').unwrap()].to_owned()
}

/// Signs `email` in from `ip`: the form's page first (its sign-in CSRF cookie), then the post.
async fn sign_in(
    app: &TestApp,
    browser: &mut Browser,
    ip: [u8; 4],
    email: &str,
    password: &str,
) -> TestResponse {
    let form = browser.get(app, "/admin/").await;
    let csrf = csrf_of(&form.text());
    browser
        .post_form(
            app,
            ip,
            "/admin/signin",
            &[("email", email), ("password", password), ("csrf", &csrf)],
        )
        .await
}

#[tokio::test]
async fn the_console_signs_an_admin_in_with_its_own_strict_cookie() {
    let app = TestApp::spawn().await;
    let admin = app.member("admin").await;
    let mut browser = Browser::default();
    let page = browser.get(&app, "/admin/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
    assert!(page.text().contains("name=\"viewport\""), "phone-sized");
    let signin_cookie = page.header("set-cookie").unwrap();
    for part in [
        "h2h_console_signin=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/admin/",
    ] {
        assert!(signin_cookie.contains(part), "{signin_cookie}");
    }
    assert!(
        !signin_cookie.contains("Secure"),
        "local profile over plain HTTP"
    );

    // Not an admin yet: the right password is not enough.
    let refused = sign_in(&app, &mut browser, [10, 0, 0, 1], &admin.email, PASSWORD).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.text().contains("not a moderator"));
    assert!(!browser.has("h2h_console"));

    make_admin(&app, &admin).await;
    let wrong = sign_in(
        &app,
        &mut browser,
        [10, 0, 0, 1],
        &admin.email,
        "wrong-password-1",
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text().contains("Wrong email or password"));

    let signed_in = sign_in(&app, &mut browser, [10, 0, 0, 1], &admin.email, PASSWORD).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.text()
    );
    assert_eq!(signed_in.header("location").as_deref(), Some("/admin/"));
    let session_cookie = signed_in
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("h2h_console="))
        .unwrap();
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/admin/",
        "Max-Age=43200",
    ] {
        assert!(session_cookie.contains(part), "{session_cookie}");
    }
    let home = browser.get(&app, "/admin/").await;
    assert!(home.text().contains("Open reports"), "{}", home.text());
    assert!(
        !home.text().contains(&admin.access_token),
        "never the app's tokens"
    );

    // Sign-out needs the CSRF token too, and ends the session.
    let csrf = csrf_of(&home.text());
    let forged = browser
        .post_form(&app, [10, 0, 0, 1], "/admin/signout", &[("csrf", "forged")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(browser
        .get(&app, "/admin/")
        .await
        .text()
        .contains("Open reports"));
    let out = browser
        .post_form(&app, [10, 0, 0, 1], "/admin/signout", &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(browser
        .get(&app, "/admin/")
        .await
        .text()
        .contains("Sign in"));
}

#[tokio::test]
async fn a_sign_in_without_the_forms_token_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.member("admin").await;
    make_admin(&app, &admin).await;
    let mut browser = Browser::default();
    browser.get(&app, "/admin/").await;
    let forged = browser
        .post_form(
            &app,
            [10, 0, 0, 2],
            "/admin/signin",
            &[
                ("email", &admin.email),
                ("password", PASSWORD),
                ("csrf", "guess"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let mut stranger = Browser::default();
    let no_cookie = stranger
        .post_form(
            &app,
            [10, 0, 0, 2],
            "/admin/signin",
            &[
                ("email", &admin.email),
                ("password", PASSWORD),
                ("csrf", ""),
            ],
        )
        .await;
    assert_eq!(no_cookie.status, StatusCode::FORBIDDEN);
    assert!(!browser.has("h2h_console") && !stranger.has("h2h_console"));
}

#[tokio::test]
async fn console_sign_in_shares_the_login_rate_limits() {
    let app = TestApp::spawn_with(&[("HEART_RATE_LIMIT_LOGIN_PER_EMAIL", "2/10m")]).await;
    let admin = app.member("admin").await;
    make_admin(&app, &admin).await;
    let mut browser = Browser::default();
    let ip = [10, 0, 0, 3];
    for _ in 0..2 {
        let wrong = sign_in(&app, &mut browser, ip, &admin.email, "wrong-password-1").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let limited = sign_in(&app, &mut browser, ip, &admin.email, PASSWORD).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.header("retry-after").is_some());
    assert!(limited.text().contains("Too many sign-in attempts"));
    assert!(!browser.has("h2h_console"));
}

#[tokio::test]
async fn cookies_are_secure_behind_tls() {
    let app = TestApp::spawn().await;
    let mut browser = Browser {
        forwarded_proto: Some("https"),
        ..Browser::default()
    };
    let page = browser.get(&app, "/admin/").await;
    assert!(page.header("set-cookie").unwrap().contains("; Secure"));
}

#[tokio::test]
async fn a_moderator_resolves_a_report_and_suspends_from_the_console() {
    let app = TestApp::spawn().await;
    let (admin, kim, lee) = (
        app.member("admin").await,
        app.member("kim").await,
        app.member("lee").await,
    );
    make_admin(&app, &admin).await;
    app.register_post(
        &lee,
        "buy <b>cheap</b> pills",
        &[heart_testkit::fixtures::png(4, 4)],
    )
    .await;
    app.post_json_as(
        &kim,
        "/member/report",
        json!({ "member_id": kim.id, "target_id": lee.id, "reason": "spam <script>" }),
    )
    .await;
    let mut browser = Browser::default();
    sign_in(&app, &mut browser, [10, 0, 0, 4], &admin.email, PASSWORD).await;
    let home = browser.get(&app, "/admin/").await;
    let text = home.text();
    assert!(text.contains("spam &lt;script&gt;"), "escaped: {text}");
    assert!(text.contains(&format!("/admin/members/{}", lee.id)));
    let member = browser
        .get(&app, &format!("/admin/members/{}", lee.id))
        .await;
    assert_eq!(member.status, StatusCode::OK);
    assert!(
        member.text().contains("buy &lt;b&gt;cheap&lt;"),
        "escaped: {}",
        member.text()
    );
    assert!(member.text().contains("<img src=\""), "the post's image");

    let report_id = app
        .get_as(&admin, "/admin/reports?status=open")
        .await
        .json()["reports"][0]["id"]
        .as_i64()
        .unwrap();
    let path = format!("/admin/console/reports/{report_id}/resolve");
    let forged = browser
        .post_form(
            &app,
            [10, 0, 0, 4],
            &path,
            &[("csrf", "x"), ("action", "suspend"), ("note", "")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.verify_token(&lee.access_token).await.status,
        StatusCode::OK
    );

    let csrf = csrf_of(&home.text());
    let done = browser
        .post_form(
            &app,
            [10, 0, 0, 4],
            &path,
            &[("csrf", &csrf), ("action", "suspend"), ("note", "spam run")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    assert_code(&app.verify_token(&lee.access_token).await, "GLOBAL_103");
    assert_code(&app.login(&lee.email, PASSWORD).await, "AUTH_013");
    assert!(browser
        .get(&app, "/admin/")
        .await
        .text()
        .contains("No open reports"));
    let suspended = browser.get(&app, "/admin/suspended").await;
    assert!(suspended.text().contains("spam run"));

    let unsuspend = format!("/admin/console/members/{}/unsuspend", lee.id);
    let lifted = browser
        .post_form(&app, [10, 0, 0, 4], &unsuspend, &[("csrf", &csrf)])
        .await;
    assert_eq!(lifted.status, StatusCode::SEE_OTHER);
    assert_eq!(app.login(&lee.email, PASSWORD).await.status, StatusCode::OK);

    // A blank reason is refused with a page that says why.
    let suspend = format!("/admin/console/members/{}/suspend", lee.id);
    let blank = browser
        .post_form(
            &app,
            [10, 0, 0, 4],
            &suspend,
            &[("csrf", &csrf), ("reason", " ")],
        )
        .await;
    assert_eq!(blank.status, StatusCode::BAD_REQUEST);
    assert!(blank.text().contains("reason: must not be blank"));
}

#[tokio::test]
async fn suspending_or_demoting_a_moderator_ends_their_console_session() {
    let app = TestApp::spawn().await;
    let (boss, other) = (app.member("boss").await, app.member("other").await);
    make_admin(&app, &boss).await;
    make_admin(&app, &other).await;
    let mut browser = Browser::default();
    sign_in(&app, &mut browser, [10, 0, 0, 5], &other.email, PASSWORD).await;
    assert!(browser
        .get(&app, "/admin/")
        .await
        .text()
        .contains("Open reports"));
    heart_core::member::repo::set_role(&app.state.db, &other.email, "USER")
        .await
        .unwrap();
    assert!(browser
        .get(&app, "/admin/")
        .await
        .text()
        .contains("Sign in"));
    make_admin(&app, &other).await;
    assert!(browser
        .get(&app, "/admin/")
        .await
        .text()
        .contains("Open reports"));
    app.post_json_as(
        &boss,
        &format!("/admin/members/{}/suspend", other.id),
        json!({ "reason": "rogue" }),
    )
    .await;
    assert!(browser
        .get(&app, "/admin/")
        .await
        .text()
        .contains("Sign in"));
    let after = browser
        .get(&app, &format!("/admin/members/{}", boss.id))
        .await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_report_list_pages_past_a_full_page() {
    let app = TestApp::spawn().await;
    let admin = app.member("admin").await;
    make_admin(&app, &admin).await;
    let mut members = Vec::new();
    for n in 0..8 {
        members.push(app.member(&format!("m{n}")).await.id);
    }
    // 52 open reports (one per ordered pair of members), the newest with the highest time.
    let pairs: Vec<(i64, i64)> = members
        .iter()
        .flat_map(|&a| members.iter().map(move |&b| (a, b)))
        .filter(|(a, b)| a != b)
        .take(52)
        .collect();
    for (at, (reporter, target)) in pairs.iter().enumerate() {
        sqlx::query(
            "INSERT INTO reports (reporter_id, target_id, reason, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(reporter)
        .bind(target)
        .bind(format!("reason number {at:02}"))
        .bind(1_700_000_000 + at as i64)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    }
    let mut browser = Browser::default();
    sign_in(&app, &mut browser, [10, 0, 0, 9], &admin.email, PASSWORD).await;
    let count = |text: &str| text.matches("class=\"card report\"").count();

    let first = browser.get(&app, "/admin/").await.text();
    assert_eq!(count(&first), 50, "a full first page");
    assert!(first.contains("reason number 51") && !first.contains("reason number 01"));
    assert!(
        first.contains("href=\"/admin/?status=open&amp;page=1\""),
        "{first}"
    );
    assert!(!first.contains("Newer reports"));

    let second = browser.get(&app, "/admin/?status=open&page=1").await.text();
    assert_eq!(count(&second), 2, "the two oldest");
    assert!(second.contains("reason number 00") && second.contains("reason number 01"));
    assert!(second.contains("href=\"/admin/?status=open&amp;page=0\""));
    assert!(!second.contains("Older reports"));

    let past = browser.get(&app, "/admin/?page=9").await.text();
    assert_eq!(count(&past), 0);
    assert!(past.contains("No open reports on this page."), "{past}");

    for bad in ["-1", "x", "99999999999"] {
        let page = browser.get(&app, &format!("/admin/?page={bad}")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "page={bad}");
        assert!(
            page.text().contains("GLOBAL_007"),
            "page={bad}: {}",
            page.text()
        );
    }

    let resolved = browser.get(&app, "/admin/?status=resolved").await.text();
    assert!(resolved.contains("No resolved reports."));
    assert!(!resolved.contains("Older reports"));
}
