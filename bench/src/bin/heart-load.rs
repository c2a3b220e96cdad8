//! `heart-load`: a load harness that plays the Android app's traffic mix at a fixed concurrency
//! against a running stack, and prints latency percentiles and errors per endpoint.
//!
//! # How to run it
//!
//! 1. Fill a database with `heart-datagen` (members `bench<N>@example.com`, password
//!    `benchmark-pass-1`; ids 1..=N in a fresh database).
//! 2. Start the stack on it with the limits out of the way (they are per IP and per member, and
//!    every virtual user comes from 127.0.0.1):
//!
//!    ```sh
//!    export CARGO_TARGET_DIR=/var/tmp/heart-to-heart-target
//!    cargo build --release -p heart-stack -p heart-bench
//!    mariadb -uroot -h127.0.0.1 -e 'CREATE DATABASE heart_load'
//!    export HEART_DATABASE_URL=mysql://root@127.0.0.1:3306/heart_load HEART_REDIS_URL=redis://127.0.0.1:6379
//!    $CARGO_TARGET_DIR/release/heart-datagen --members 1000 --posts 20000
//!    HEART_RATE_LIMITS_ENABLED=false \
//!    HEART_EDGE_VAR_RATE_LIMIT_EDGE_REQUESTS_PER_IP=1000000/60s \
//!    HEART_EDGE_VAR_RATE_LIMIT_EDGE_REQUESTS_PER_MEMBER=1000000/60s \
//!      $CARGO_TARGET_DIR/release/heart &
//!    ```
//!
//! 3. Run the harness (the URL is the edge, the app's entry point):
//!
//!    ```sh
//!    $CARGO_TARGET_DIR/release/heart-load --connections 32 --duration 30s --members 1000
//!    ```
//!
//! Each virtual user logs in once as its own member (`bench<first + i % members>`, not timed), then
//! loops without pause over a weighted mix of what the app does: home feed pages (mostly pages 0–2),
//! its own posts, another member's posts, a profile, a new post with one ~200 KB JPEG (generated
//! once at start: 600×600 noise), a login, and a token reissue (the rotated pair is kept, as the
//! app does). A `401` on an authenticated call triggers a reissue, like the app's interceptor.
//!
//! Options (also `heart-load --help`):
//!
//! | flag | default | meaning |
//! |---|---|---|
//! | `--url` (or `HEART_LOAD_URL`) | `http://127.0.0.1:8080` | base URL of the stack |
//! | `--connections`, `-c` | 32 | virtual users (each with at most one request in flight) |
//! | `--duration`, `-d` | `30s` | `500ms`, `30s`, `2m`, or seconds |
//! | `--members` | 1000 | generated members to log in as and to look at |
//! | `--first-member` | 1 | id of the first generated member |
//! | `--mix` | `feed=60,own_posts=8,member_posts=12,profile=10,post_photo=3,login=1,reissue=6` | weights by endpoint; missing names weigh 0 |
//! | `--size` | 10 | page size, as the app sends |
//! | `--timeout` | `30s` | per request; a timeout counts as an error |
//! | `--allow-5xx` | off | exit 0 even if a 5xx was answered |
//! | `--json FILE` | | also write the summary as JSON |
//! | `--acked-posts FILE` | | write the id of every post that was answered 2xx, one per line |
//! | `--progress` | off | a line per second on stderr: requests, non-2xx, 5xx |
//!
//! Latencies are measured from sending the request to reading the whole body, kept in full
//! (microseconds, sorted at the end: exact percentiles). Errors are listed per endpoint by status
//! and contract `code`; connection failures and timeouts count as status 0. For the feeds the table
//! also counts the edge's `x-heart-cache` header (hit/miss/bypass). The exit status is 1 when a 5xx
//! (or a connection failure/timeout) happened, unless `--allow-5xx`; 2 on bad arguments or a failed
//! setup login.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::distributions::{Distribution as _, WeightedIndex};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{json, Value};

/// The password of every generated member (see `heart-datagen`).
const PASSWORD: &str = "benchmark-pass-1";

/// What a virtual user can do, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Feed,
    OwnPosts,
    MemberPosts,
    Profile,
    PostPhoto,
    Login,
    Reissue,
    Follow,
}

impl Action {
    const ALL: [Action; 8] = [
        Action::Feed,
        Action::OwnPosts,
        Action::MemberPosts,
        Action::Profile,
        Action::PostPhoto,
        Action::Login,
        Action::Reissue,
        Action::Follow,
    ];

    fn name(self) -> &'static str {
        match self {
            Action::Feed => "feed",
            Action::OwnPosts => "own_posts",
            Action::MemberPosts => "member_posts",
            Action::Profile => "profile",
            Action::PostPhoto => "post_photo",
            Action::Login => "login",
            Action::Reissue => "reissue",
            Action::Follow => "follow",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Action::Feed => "GET  /post/posts (home feed)",
            Action::OwnPosts => "GET  /post/posts/{own id}",
            Action::MemberPosts => "GET  /post/posts/{other id}",
            Action::Profile => "GET  /member/profile",
            Action::PostPhoto => "POST /post/registerPost (1 JPEG)",
            Action::Login => "POST /auth/login",
            Action::Reissue => "POST /auth/reissueToken",
            Action::Follow => "POST /member/follow|unfollow",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const DEFAULT_MIX: &str =
    "feed=60,own_posts=8,member_posts=12,profile=10,post_photo=3,login=1,reissue=6";

#[derive(Debug, Clone)]
struct Options {
    url: String,
    connections: usize,
    duration: Duration,
    members: i64,
    first_member: i64,
    weights: [u32; 8],
    size: u32,
    timeout: Duration,
    allow_5xx: bool,
    json: Option<String>,
    acked_posts: Option<String>,
    progress: bool,
}

const HELP: &str = "heart-load: the app's traffic mix at fixed concurrency against a running stack

usage: heart-load [--url URL] [-c N] [-d 30s] [--members N] [--first-member ID] [--mix feed=60,...]
                  [--size 10] [--timeout 30s] [--allow-5xx] [--json FILE] [--acked-posts FILE] [--progress]

mix names: feed own_posts member_posts profile post_photo login reissue follow
default mix: feed=60,own_posts=8,member_posts=12,profile=10,post_photo=3,login=1,reissue=6
The URL defaults to $HEART_LOAD_URL, else http://127.0.0.1:8080. Exit 1 if a 5xx happened (unless --allow-5xx).";

fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?}: not a duration (500ms, 30s, 2m, or seconds)");
    let number = |s: &str| s.trim().parse::<f64>().map_err(|_| bad());
    let secs = if let Some(ms) = text.strip_suffix("ms") {
        number(ms)? / 1000.0
    } else if let Some(s) = text.strip_suffix('s') {
        number(s)?
    } else if let Some(m) = text.strip_suffix('m') {
        number(m)? * 60.0
    } else {
        number(text)?
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_mix(text: &str) -> Result<[u32; 8], String> {
    let mut weights = [0; 8];
    for item in text.split(',').filter(|s| !s.trim().is_empty()) {
        let (name, weight) = item
            .split_once('=')
            .ok_or_else(|| format!("mix item {item:?}: expected name=weight"))?;
        let action = Action::ALL
            .into_iter()
            .find(|a| a.name() == name.trim())
            .ok_or_else(|| format!("mix: unknown endpoint {name:?}"))?;
        weights[action.index()] = weight
            .trim()
            .parse()
            .map_err(|_| format!("mix item {item:?}: weight is not a number"))?;
    }
    if weights.iter().all(|w| *w == 0) {
        return Err("mix: every weight is 0".into());
    }
    Ok(weights)
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        url: std::env::var("HEART_LOAD_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "http://127.0.0.1:8080".into()),
        connections: 32,
        duration: Duration::from_secs(30),
        members: 1000,
        first_member: 1,
        weights: parse_mix(DEFAULT_MIX)?,
        size: 10,
        timeout: Duration::from_secs(30),
        allow_5xx: false,
        json: None,
        acked_posts: None,
        progress: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<i64>()
                .map_err(|_| format!("{flag} {v}: not a number"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Err(HELP.into()),
            "--url" => options.url = value()?,
            "-c" | "--connections" => {
                options.connections = usize::try_from(number(value()?)?.max(1)).unwrap_or(1);
            }
            "-d" | "--duration" => options.duration = parse_duration(&value()?)?,
            "--members" => options.members = number(value()?)?.max(1),
            "--first-member" => options.first_member = number(value()?)?,
            "--mix" => options.weights = parse_mix(&value()?)?,
            "--size" => options.size = u32::try_from(number(value()?)?.clamp(1, 100)).unwrap_or(10),
            "--timeout" => options.timeout = parse_duration(&value()?)?,
            "--allow-5xx" => options.allow_5xx = true,
            "--json" => options.json = Some(value()?),
            "--acked-posts" => options.acked_posts = Some(value()?),
            "--progress" => options.progress = true,
            other => return Err(format!("unknown flag {other}\n\n{HELP}")),
        }
    }
    options.url = options.url.trim_end_matches('/').to_owned();
    Ok(options)
}

/// A noisy 600×600 JPEG of about 200 KB: the quality whose size comes closest.
fn make_jpeg() -> Result<Vec<u8>, image::ImageError> {
    let mut rng = StdRng::seed_from_u64(6);
    let picture = image::RgbImage::from_fn(600, 600, |x, y| {
        let base = [(x * 255 / 600) as i32, (y * 255 / 600) as i32, 128];
        let noise: i32 = rng.gen_range(-40..=40);
        image::Rgb(base.map(|c| u8::try_from((c + noise).clamp(0, 255)).unwrap_or(0)))
    });
    let mut best: Option<Vec<u8>> = None;
    for quality in [95, 90, 85, 80, 70, 60, 50, 40] {
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
            .encode_image(&picture)?;
        let distance = |b: &Vec<u8>| b.len().abs_diff(200 * 1024);
        if best.as_ref().is_none_or(|b| distance(&bytes) < distance(b)) {
            best = Some(bytes);
        }
    }
    Ok(best.unwrap_or_default())
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// One answer, as far as the statistics care.
#[derive(Debug)]
struct Answer {
    /// 0: no answer (connection failure or timeout).
    status: u16,
    /// The contract `code` of an error body, or what went wrong without an answer.
    code: String,
    cache: Option<String>,
    body: Value,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Per-endpoint numbers of one virtual user (merged at the end).
#[derive(Debug, Default, Clone)]
struct Stats {
    latencies_us: Vec<u32>,
    non_2xx: u64,
    /// (status, code) → count, for non-2xx answers.
    errors: BTreeMap<(u16, String), u64>,
    /// `x-heart-cache` value → count.
    cache: BTreeMap<String, u64>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.latencies_us.extend(other.latencies_us);
        self.non_2xx += other.non_2xx;
        for (key, n) in other.errors {
            *self.errors.entry(key).or_default() += n;
        }
        for (key, n) in other.cache {
            *self.cache.entry(key).or_default() += n;
        }
    }
}

#[derive(Debug, Default)]
struct Live {
    requests: AtomicU64,
    non_2xx: AtomicU64,
    server_errors: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    options: Options,
    client: HttpClient,
    jpeg: Bytes,
    live: Live,
    stop: AtomicBool,
    acked_posts: std::sync::Mutex<Vec<i64>>,
}

/// A logged-in virtual user.
#[derive(Debug)]
struct User {
    id: usize,
    email: String,
    member_id: i64,
    access: String,
    refresh: String,
    rng: StdRng,
    stats: Vec<Stats>,
    posts: u64,
    /// The member this user follows now (the `follow` action unfollows them next).
    followed: Option<i64>,
}

async fn send(
    shared: &Shared,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    content_type: Option<&str>,
    body: Bytes,
) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("{}{path}", shared.options.url))
        .header(header::USER_AGENT, "heart-load");
    if let Some(token) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    let request = match request.body(Full::new(body)) {
        Ok(request) => request,
        Err(e) => return no_answer(format!("bad request: {e}")),
    };
    let exchange = async {
        let response = shared.client.request(request).await?;
        let status = response.status();
        let cache = response
            .headers()
            .get("x-heart-cache")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, cache, bytes))
    };
    match tokio::time::timeout(shared.options.timeout, exchange).await {
        Err(_) => no_answer("timeout".into()),
        Ok(Err(e)) => no_answer(format!("connection error: {}", root_cause(e.as_ref()))),
        Ok(Ok((status, cache, bytes))) => {
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let code = if status.is_success() {
                String::new()
            } else {
                body.get("code")
                    .and_then(Value::as_str)
                    .map_or_else(|| "(no code)".to_owned(), str::to_owned)
            };
            Answer {
                status: status.as_u16(),
                code,
                cache,
                body,
            }
        }
    }
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

fn no_answer(code: String) -> Answer {
    Answer {
        status: 0,
        code,
        cache: None,
        body: Value::Null,
    }
}

fn json_body(value: &Value) -> Bytes {
    Bytes::from(value.to_string())
}

/// Logs in; `Ok((member_id, access, refresh))` or the failed answer.
async fn login(shared: &Shared, email: &str) -> (Answer, Option<(i64, String, String)>) {
    let answer = send(
        shared,
        Method::POST,
        "/auth/login",
        None,
        Some("application/json"),
        json_body(&json!({"email": email, "password": PASSWORD})),
    )
    .await;
    let tokens = tokens_of(&answer);
    (answer, tokens)
}

fn tokens_of(answer: &Answer) -> Option<(i64, String, String)> {
    if !answer.ok() {
        return None;
    }
    let body = &answer.body;
    Some((
        body.get("member_id")?.as_i64()?,
        body.get("access_token")?.as_str()?.to_owned(),
        body.get("refresh_token")?.as_str()?.to_owned(),
    ))
}

impl User {
    fn record(&mut self, shared: &Shared, action: Action, started: Instant, answer: &Answer) {
        let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        let stats = &mut self.stats[action.index()];
        stats.latencies_us.push(micros);
        if let Some(cache) = &answer.cache {
            *stats.cache.entry(cache.clone()).or_default() += 1;
        }
        shared.live.requests.fetch_add(1, Ordering::Relaxed);
        if !answer.ok() {
            stats.non_2xx += 1;
            *stats
                .errors
                .entry((answer.status, answer.code.clone()))
                .or_default() += 1;
            shared.live.non_2xx.fetch_add(1, Ordering::Relaxed);
            if answer.status == 0 || answer.status >= 500 {
                shared.live.server_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn other_member(&mut self, shared: &Shared) -> i64 {
        shared.options.first_member + self.rng.gen_range(0..shared.options.members)
    }

    /// Pages as the app reads them: mostly the first three.
    fn page(&mut self) -> u32 {
        match self.rng.gen_range(0..100) {
            0..=54 => 0,
            55..=79 => 1,
            80..=91 => 2,
            _ => self.rng.gen_range(3..10),
        }
    }

    async fn reissue(&mut self, shared: &Shared) {
        let started = Instant::now();
        let answer = send(
            shared,
            Method::POST,
            "/auth/reissueToken",
            None,
            Some("application/json"),
            json_body(&json!({
                "member_id": self.member_id.to_string(),
                "refresh_token": self.refresh,
            })),
        )
        .await;
        self.record(shared, Action::Reissue, started, &answer);
        if let Some((_, access, refresh)) = tokens_of(&answer) {
            self.access = access;
            self.refresh = refresh;
        } else if answer.code == "AUTH_007" || answer.code == "AUTH_008" {
            // The app drops the session and shows the login screen: log in again.
            self.login(shared).await;
        }
    }

    async fn login(&mut self, shared: &Shared) {
        let started = Instant::now();
        let (answer, tokens) = login(shared, &self.email).await;
        self.record(shared, Action::Login, started, &answer);
        if let Some((member_id, access, refresh)) = tokens {
            self.member_id = member_id;
            self.access = access;
            self.refresh = refresh;
        }
    }

    /// An authenticated call; a 401 makes the user reissue (and not replay: the next loop goes on).
    async fn authed(
        &mut self,
        shared: &Shared,
        action: Action,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Answer {
        let started = Instant::now();
        let access = self.access.clone();
        let answer = send(shared, method, path, Some(&access), content_type, body).await;
        self.record(shared, action, started, &answer);
        if answer.status == 401 {
            self.reissue(shared).await;
        }
        answer
    }

    async fn step(&mut self, shared: &Shared, action: Action) {
        let size = shared.options.size;
        match action {
            Action::Feed => {
                let page = self.page();
                let path = format!(
                    "/post/posts?member_id={}&page={page}&size={size}",
                    self.member_id
                );
                self.authed(shared, action, Method::GET, &path, None, Bytes::new())
                    .await;
            }
            Action::OwnPosts => {
                let page = self.page().min(1);
                let path = format!("/post/posts/{}?page={page}&size={size}", self.member_id);
                self.authed(shared, action, Method::GET, &path, None, Bytes::new())
                    .await;
            }
            Action::MemberPosts => {
                let other = self.other_member(shared);
                let page = self.page().min(1);
                let path = format!("/post/posts/{other}?page={page}&size={size}");
                self.authed(shared, action, Method::GET, &path, None, Bytes::new())
                    .await;
            }
            Action::Profile => {
                let member = if self.rng.gen_bool(0.3) {
                    self.member_id
                } else {
                    self.other_member(shared)
                };
                let path = format!("/member/profile?member_id={member}");
                self.authed(shared, action, Method::GET, &path, None, Bytes::new())
                    .await;
            }
            Action::PostPhoto => {
                self.posts += 1;
                let boundary = format!("heart-load-{:016x}", self.rng.gen::<u64>());
                let content = format!(
                    "heart-load post {} of user {} ({}) 💬",
                    self.posts, self.id, self.member_id
                );
                let member = self.member_id.to_string();
                let body = multipart(
                    &boundary,
                    &[
                        ("member_id", member.as_str()),
                        ("content", content.as_str()),
                    ],
                    &shared.jpeg,
                );
                let answer = self
                    .authed(
                        shared,
                        action,
                        Method::POST,
                        "/post/registerPost",
                        Some(&format!("multipart/form-data; boundary={boundary}")),
                        body,
                    )
                    .await;
                if answer.ok() {
                    if let Some(id) = answer.body.get("post_id").and_then(Value::as_i64) {
                        if let Ok(mut acked) = shared.acked_posts.lock() {
                            acked.push(id);
                        }
                    }
                }
            }
            Action::Login => self.login(shared).await,
            Action::Reissue => self.reissue(shared).await,
            Action::Follow => {
                // Follow a member, then unfollow them on the next turn: every call writes.
                let (path, target) = match self.followed.take() {
                    Some(target) => ("/member/unfollow", target),
                    None => {
                        let mut target = self.other_member(shared);
                        if target == self.member_id {
                            // Following yourself is GLOBAL_002: take the next member.
                            target = shared.options.first_member
                                + (target - shared.options.first_member + 1)
                                    % shared.options.members;
                        }
                        self.followed = Some(target);
                        ("/member/follow", target)
                    }
                };
                let body = serde_json::json!({"member_id": self.member_id, "target_id": target});
                self.authed(
                    shared,
                    action,
                    Method::POST,
                    path,
                    Some("application/json"),
                    Bytes::from(body.to_string()),
                )
                .await;
            }
        }
    }
}

/// A multipart body as the app's Retrofit sends it: text parts typed `multipart/form-data`, one
/// `files` part with the JPEG.
fn multipart(boundary: &str, texts: &[(&str, &str)], jpeg: &[u8]) -> Bytes {
    let mut body = Vec::with_capacity(jpeg.len() + 1024);
    for (name, value) in texts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\
                 Content-Type: multipart/form-data; charset=utf-8\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"photo.jpg\"\r\n\
             Content-Type: image/jpeg\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(jpeg);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Bytes::from(body)
}

async fn virtual_user(shared: Arc<Shared>, user: &mut User) {
    let Ok(mix) = WeightedIndex::new(shared.options.weights) else {
        return;
    };
    while !shared.stop.load(Ordering::Relaxed) {
        let action = Action::ALL[mix.sample(&mut user.rng)];
        user.step(&shared, action).await;
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(micros: u32) -> String {
    format!("{:.1}", f64::from(micros) / 1000.0)
}

fn report(options: &Options, stats: &mut [Stats], elapsed: Duration) -> (String, Value, u64) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}  cache hit/miss/bypass",
        "endpoint", "count", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "non-2xx"
    );
    let mut endpoints = serde_json::Map::new();
    let mut all: Vec<u32> = Vec::new();
    let mut server_errors = 0;
    let (mut total, mut total_non_2xx) = (0usize, 0u64);
    for action in Action::ALL {
        let s = &mut stats[action.index()];
        s.latencies_us.sort_unstable();
        let n = s.latencies_us.len();
        if n == 0 && options.weights[action.index()] == 0 {
            continue;
        }
        total += n;
        total_non_2xx += s.non_2xx;
        all.extend_from_slice(&s.latencies_us);
        let cache = if s.cache.is_empty() {
            String::new()
        } else {
            let count = |k: &str| s.cache.get(k).copied().unwrap_or(0);
            format!("{}/{}/{}", count("hit"), count("miss"), count("bypass"))
        };
        let (p50, p95, p99, max) = (
            percentile(&s.latencies_us, 50.0),
            percentile(&s.latencies_us, 95.0),
            percentile(&s.latencies_us, 99.0),
            s.latencies_us.last().copied().unwrap_or(0),
        );
        let _ = writeln!(
            out,
            "{:<34} {:>8} {:>8.1} {:>8} {:>8} {:>8} {:>8} {:>7}  {}",
            action.label(),
            n,
            n as f64 / secs,
            ms(p50),
            ms(p95),
            ms(p99),
            ms(max),
            s.non_2xx,
            cache
        );
        let mut errors = serde_json::Map::new();
        for ((status, code), count) in &s.errors {
            if *status == 0 || *status >= 500 {
                server_errors += count;
            }
            errors.insert(format!("{status} {code}"), json!(count));
        }
        endpoints.insert(
            action.name().to_owned(),
            json!({
                "count": n,
                "rps": n as f64 / secs,
                "p50_ms": f64::from(p50) / 1000.0,
                "p95_ms": f64::from(p95) / 1000.0,
                "p99_ms": f64::from(p99) / 1000.0,
                "max_ms": f64::from(max) / 1000.0,
                "non_2xx": s.non_2xx,
                "errors": errors,
                "cache": s.cache,
            }),
        );
    }
    all.sort_unstable();
    let _ = writeln!(
        out,
        "{:<34} {:>8} {:>8.1} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "all",
        total,
        total as f64 / secs,
        ms(percentile(&all, 50.0)),
        ms(percentile(&all, 95.0)),
        ms(percentile(&all, 99.0)),
        ms(all.last().copied().unwrap_or(0)),
        total_non_2xx
    );
    let mut error_lines = String::new();
    for action in Action::ALL {
        for ((status, code), count) in &stats[action.index()].errors {
            let status = if *status == 0 {
                "---".to_owned()
            } else {
                status.to_string()
            };
            let _ = writeln!(
                error_lines,
                "  {:<34} {status} {code:<24} {count}",
                action.label()
            );
        }
    }
    if error_lines.is_empty() {
        out.push_str("errors: none\n");
    } else {
        out.push_str("errors (endpoint, status, code, count; --- = no answer):\n");
        out.push_str(&error_lines);
    }
    let summary = json!({
        "url": options.url,
        "connections": options.connections,
        "duration_secs": secs,
        "requests": total,
        "rps": total as f64 / secs,
        "non_2xx": total_non_2xx,
        "server_errors": server_errors,
        "endpoints": endpoints,
    });
    (out, summary, server_errors)
}

async fn run(options: Options) -> Result<ExitCode, String> {
    let jpeg = make_jpeg().map_err(|e| format!("encoding the JPEG: {e}"))?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let shared = Arc::new(Shared {
        options: options.clone(),
        client,
        jpeg: Bytes::from(jpeg),
        live: Live::default(),
        stop: AtomicBool::new(false),
        acked_posts: std::sync::Mutex::new(Vec::new()),
    });
    let weights = Action::ALL
        .iter()
        .filter(|a| options.weights[a.index()] > 0)
        .map(|a| format!("{}={}", a.name(), options.weights[a.index()]))
        .collect::<Vec<_>>()
        .join(",");
    eprintln!(
        "heart-load: {} virtual users for {:?} against {} (members {}..={}, mix {weights}, JPEG {} KB)",
        options.connections,
        options.duration,
        options.url,
        options.first_member,
        options.first_member + options.members - 1,
        shared.jpeg.len() / 1024
    );

    // Setup: every user logs in (not timed; logins are Argon2id and would swamp the first seconds).
    let setup_started = Instant::now();
    let mut logins = tokio::task::JoinSet::new();
    for id in 0..options.connections {
        let shared = shared.clone();
        let member = options.first_member + (id as i64 % options.members);
        logins.spawn(async move {
            let email = format!("bench{member}@example.com");
            // The core hashes a bounded number of passwords at once and answers `503` with
            // `Retry-After` beyond its queue, as it should: wait and try again, a few times.
            let mut attempt = 0;
            let (answer, tokens) = loop {
                let (answer, tokens) = login(&shared, &email).await;
                if answer.status != 503 || attempt == 20 {
                    break (answer, tokens);
                }
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            };
            match tokens {
                Some((member_id, access, refresh)) => Ok(User {
                    id,
                    email,
                    member_id,
                    access,
                    refresh,
                    rng: StdRng::seed_from_u64(id as u64),
                    stats: vec![Stats::default(); Action::ALL.len()],
                    posts: 0,
                    followed: None,
                }),
                None => Err(format!(
                    "login as {email} failed: {} {} {}",
                    answer.status, answer.code, answer.body
                )),
            }
        });
    }
    let mut users = Vec::new();
    while let Some(joined) = logins.join_next().await {
        users.push(joined.map_err(|e| e.to_string())??);
    }
    eprintln!(
        "heart-load: {} logins in {:.1} s; running",
        users.len(),
        setup_started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let progress = options.progress.then(|| {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let mut last = 0;
            loop {
                tick.tick().await;
                let requests = shared.live.requests.load(Ordering::Relaxed);
                eprintln!(
                    "heart-load: t={:>4.0}s {:>6} req/s  total {} non-2xx {} 5xx/no-answer {}",
                    started.elapsed().as_secs_f64(),
                    requests - last,
                    requests,
                    shared.live.non_2xx.load(Ordering::Relaxed),
                    shared.live.server_errors.load(Ordering::Relaxed),
                );
                last = requests;
            }
        })
    });
    let mut running = tokio::task::JoinSet::new();
    for mut user in users {
        let shared = shared.clone();
        running.spawn(async move {
            virtual_user(shared, &mut user).await;
            user
        });
    }
    tokio::time::sleep(options.duration).await;
    shared.stop.store(true, Ordering::Relaxed);
    let mut stats = vec![Stats::default(); Action::ALL.len()];
    while let Some(joined) = running.join_next().await {
        let user = joined.map_err(|e| e.to_string())?;
        for (total, mine) in stats.iter_mut().zip(user.stats) {
            total.merge(mine);
        }
    }
    let elapsed = started.elapsed();
    if let Some(progress) = progress {
        progress.abort();
    }

    let (table, mut summary, server_errors) = report(&options, &mut stats, elapsed);
    print!("{table}");
    let acked = shared
        .acked_posts
        .lock()
        .map(|a| a.clone())
        .unwrap_or_default();
    summary["acked_posts"] = json!(acked.len());
    if let Some(path) = &options.acked_posts {
        let mut text = String::new();
        for id in &acked {
            let _ = writeln!(text, "{id}");
        }
        std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))?;
    }
    if let Some(path) = &options.json {
        std::fs::write(path, format!("{summary:#}\n")).map_err(|e| format!("{path}: {e}"))?;
    }
    let _ = std::io::stdout().flush();
    if server_errors > 0 && !options.allow_5xx {
        eprintln!(
            "heart-load: {server_errors} answers were 5xx or missing (use --allow-5xx to accept)"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let options = heart_bench::args_or_exit(parse_args());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("heart-load: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(options)) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("heart-load: {message}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_mixes_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_mix("feed=3,login=1"), Ok([3, 0, 0, 0, 0, 1, 0, 0]));
        assert_eq!(parse_mix("follow=2"), Ok([0, 0, 0, 0, 0, 0, 0, 2]));
        assert!(parse_mix("feed=0").is_err());
        assert!(parse_mix("fed=1").is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), 50);
        assert_eq!(percentile(&sorted, 99.0), 99);
        assert_eq!(percentile(&sorted, 100.0), 100);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn the_jpeg_is_about_200_kb() {
        let jpeg = make_jpeg().unwrap_or_default();
        assert!(jpeg.starts_with(&[0xFF, 0xD8]));
        assert!((120_000..300_000).contains(&jpeg.len()), "{}", jpeg.len());
    }
}
