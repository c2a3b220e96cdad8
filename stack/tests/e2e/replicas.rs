//! Replicas behave as one service (issue 15): two stacks (each an edge host and a core, in this
//! process) on one MySQL database, one Redis key prefix, one media folder, one signing key and one
//! edge secret. The app talks to a round-robin balancer over both edges; each edge forwards to a
//! round-robin balancer over both cores. Every check is also made on each edge and each core
//! directly, so "on every replica" is shown, not inferred from whichever replica the balancer
//! picked. Only with `HEART_TEST_DATABASE_URL` and `HEART_TEST_REDIS_URL` (skipped otherwise:
//! replicas share state only through MySQL and Redis).
//!
//! The balancers hand out connections, not requests; the test client opens a new connection per
//! request, so consecutive requests through a balancer alternate between the replicas.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use heart_core::auth::tokens::sha256_hex;
use heart_core::db::{Db, MIGRATION_LOCK};
use heart_core::Config;
use heart_testkit::round_robin::RoundRobin;
use serde_json::json;

use crate::helpers::{post_ids, Client, Member, Setup, SharedBackends, TestStack};

/// Two replicas behind balancers, on shared backends.
struct Cluster {
    shared: Arc<SharedBackends>,
    /// The replicas: `replicas[i]` is edge *i* (`Deref` to its client) and `replicas[i].core()`.
    replicas: Vec<TestStack>,
    /// The balancer over the edges: the app's entry point.
    front: Client,
    edges: RoundRobin,
    cores: RoundRobin,
}

impl Cluster {
    /// Two replicas started one after the other (the second finds the schema migrated); `None`
    /// without real MySQL and Redis.
    async fn start(what: &str, setup: Setup) -> Option<Cluster> {
        let shared = SharedBackends::create(what).await?;
        let cores = RoundRobin::start(Vec::new()).await;
        let mut replicas = Vec::new();
        for _ in 0..2 {
            replicas.push(replica(&shared, &setup, &cores).await);
        }
        cores.set_backends(replicas.iter().map(|r| r.core_addr).collect());
        let edges = RoundRobin::start(replicas.iter().map(|r| r.addr).collect()).await;
        let front = Client::new(edges.addr, shared.data_dir.path().join("outbox"));
        Some(Cluster {
            shared,
            replicas,
            front,
            edges,
            cores,
        })
    }

    /// Every way in: the balancer, each edge, each core.
    fn entries(&self) -> Vec<(String, Client)> {
        let mut entries = vec![("balancer".to_owned(), self.front.clone())];
        for (i, replica) in self.replicas.iter().enumerate() {
            entries.push((format!("edge {i}"), replica.client.clone()));
            entries.push((format!("core {i}"), replica.core()));
        }
        entries
    }

    /// Every edge (directly) and the balancer: where cached feed pages are served.
    fn edges(&self) -> Vec<(String, Client)> {
        let mut edges = vec![("balancer".to_owned(), self.front.clone())];
        for (i, replica) in self.replicas.iter().enumerate() {
            edges.push((format!("edge {i}"), replica.client.clone()));
        }
        edges
    }

    /// Both balancers gave each replica some of the traffic.
    fn assert_both_replicas_served(&self) {
        for (name, served) in [
            ("edges", self.edges.served()),
            ("cores", self.cores.served()),
        ] {
            assert!(
                served.len() == 2 && served.iter().all(|n| *n > 0),
                "the {name} balancer served {served:?}"
            );
        }
    }
}

/// One replica on `shared`, its edge forwarding to the cores' balancer.
async fn replica(shared: &Arc<SharedBackends>, setup: &Setup, cores: &RoundRobin) -> TestStack {
    let setup = setup
        .clone()
        .replica_of(shared)
        .edge("core_url", &format!("http://{}", cores.addr));
    TestStack::start_with(setup).await
}

/// Asserts `member`'s access token is refused (`GLOBAL_103`) or accepted at every entry.
async fn assert_token_everywhere(cluster: &Cluster, member: &Member, accepted: bool) {
    for (name, entry) in cluster.entries() {
        let answer = entry
            .with_token("GET", "/auth/verifyAccessToken", &member.access_token)
            .await;
        if accepted {
            assert_eq!(answer.status, 200, "{name}: {}", answer.text());
        } else {
            assert_eq!(answer.status, 401, "{name}: {}", answer.text());
            answer.assert_error("GLOBAL_103");
        }
    }
}

#[tokio::test]
async fn a_logout_on_one_replica_is_refused_on_every_replica_at_once() {
    let Some(cluster) = Cluster::start("the replica tests", Setup::default()).await else {
        return;
    };
    // Sign-up through the balancer: the code is sent by one replica and confirmed on the other.
    let email = crate::helpers::unique_email("kim");
    let id = cluster.front.sign_up(&email, "kim").await;
    let kim = cluster.replicas[0].session(id, &email).await;
    let other_phone = cluster.replicas[1].session(id, &email).await;
    assert_token_everywhere(&cluster, &kim, true).await;

    let logout = cluster.replicas[1]
        .with_token("POST", "/auth/logout", &kim.access_token)
        .await;
    assert_eq!(logout.status, 200, "{}", logout.text());

    // At once: no waiting, no retry.
    assert_token_everywhere(&cluster, &kim, false).await;
    for (name, entry) in cluster.entries() {
        let reissue = entry.reissue(json!(kim.id), &kim.refresh_token).await;
        assert_eq!(reissue.status, 401, "{name}: {}", reissue.text());
        reissue.assert_error("AUTH_007");
    }
    // The member's other session is not touched.
    assert_token_everywhere(&cluster, &other_phone, true).await;
    cluster.assert_both_replicas_served();
}

#[tokio::test]
async fn rate_limits_are_counted_once_for_all_replicas() {
    let setup = Setup::default()
        .core("HEART_RATE_LIMIT_LOGIN_PER_EMAIL", "4/1h")
        .edge("rate_limit_edge_requests_per_member", "4/1h");
    let Some(cluster) = Cluster::start("the replica tests", setup).await else {
        return;
    };
    let [a, b] = [&cluster.replicas[0], &cluster.replicas[1]];
    // One rate-limit window for the whole test, the same second on both replicas.
    a.state.clock.freeze();
    b.state.clock.freeze();
    b.state
        .clock
        .advance(a.state.clock.now() - b.state.clock.now());

    // The core's limit on logins per email: one login by the helper, then three wrong passwords,
    // each on another replica: the fifth attempt is refused whichever replica gets it.
    let guessed = cluster.front.member("guessed").await;
    let wrong = json!({ "email": guessed.email, "password": "wrong-pass-1" });
    for entry in [a.client.clone(), b.client.clone(), a.core()] {
        entry
            .post_json("/auth/login", wrong.clone())
            .await
            .assert_error("AUTH_006");
    }
    for (name, entry) in cluster.entries() {
        let refused = entry.post_json("/auth/login", wrong.clone()).await;
        assert_eq!(refused.status, 429, "{name}: {}", refused.text());
        refused.assert_error("GLOBAL_106");
    }

    // The edge's limit per member: two requests on each edge, then both refuse.
    let busy = cluster.front.member("busy").await;
    let profile = format!("/member/profile?member_id={}", busy.id);
    for edge in [a, b, a, b] {
        let answer = edge.get_as(&busy, &profile).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    for (name, edge) in cluster.edges() {
        let refused = edge.get_as(&busy, &profile).await;
        assert_eq!(refused.status, 429, "{name}: {}", refused.text());
        refused.assert_error("GLOBAL_106");
    }
}

#[tokio::test]
async fn a_write_on_one_replica_is_never_followed_by_a_stale_page_from_another() {
    let Some(cluster) = Cluster::start("the replica tests", Setup::default()).await else {
        return;
    };
    let [a, b] = [&cluster.replicas[0], &cluster.replicas[1]];
    let kim = cluster.front.member("kim").await;
    let feed = format!("/post/posts?member_id={}&page=0&size=10", kim.id);
    let first = a.register_post(&kim, "first", &[]).await;
    assert_eq!(first.status, 201, "{}", first.text());

    // Cached through edge A, and the page is in Redis for edge B too.
    assert_eq!(a.get_as(&kim, &feed).await.cache(), Some("miss"));
    let cached = b.get_as(&kim, &feed).await;
    assert_eq!(
        (cached.status, cached.cache()),
        (200, Some("hit")),
        "{}",
        cached.text()
    );

    for (writer, round) in [(b, 0), (a, 1)] {
        let post = writer
            .register_post(&kim, &format!("write {round}"), &[])
            .await;
        assert_eq!(post.status, 201, "{}", post.text());
        let post_id = post.json()["post_id"].as_i64().expect("post_id");
        // Right after the answer, every edge shows the write (from a fresh page, then cached).
        for (name, edge) in cluster.edges() {
            let page = edge.get_as(&kim, &feed).await;
            assert_eq!(page.status, 200, "{name}: {}", page.text());
            assert_eq!(
                post_ids(&page.json()).first(),
                Some(&post_id),
                "{name} served a page without post {post_id} ({:?})",
                page.cache()
            );
        }
    }
    cluster.assert_both_replicas_served();
}

#[tokio::test]
async fn a_refresh_token_raced_across_replicas_is_rotated_once() {
    let Some(cluster) = Cluster::start("the replica tests", Setup::default()).await else {
        return;
    };
    let [a, b] = [&cluster.replicas[0], &cluster.replicas[1]];
    let kim = cluster.front.member("kim").await;

    // One phone's two requests racing to refresh, landing on different replicas. The contract's
    // grace rule applies across replicas as within one: one request rotates the token, the other
    // (the token was rotated a moment ago) gets a sibling pair, not a logout.
    let (on_a, on_b) = tokio::join!(
        a.reissue(json!(kim.id), &kim.refresh_token),
        b.reissue(json!(kim.id), &kim.refresh_token)
    );
    let pairs: Vec<Member> = [on_a, on_b]
        .iter()
        .map(|answer| {
            let body = answer.ok_json();
            Member {
                id: kim.id,
                email: kim.email.clone(),
                access_token: body["access_token"].as_str().expect("access").to_owned(),
                refresh_token: body["refresh_token"].as_str().expect("refresh").to_owned(),
            }
        })
        .collect();
    let db = cluster.shared.database().await;
    let (children, rotated, grace_used): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM refresh_tokens WHERE parent_hash = t.token_hash), \
         CAST(CASE WHEN t.rotated_at IS NULL THEN 0 ELSE 1 END AS SIGNED), CAST(t.grace_used AS SIGNED) \
         FROM refresh_tokens t WHERE t.token_hash = ?",
    )
    .bind(sha256_hex(&kim.refresh_token))
    .fetch_one(&db)
    .await
    .expect("the presented token's row");
    assert_eq!(
        (children, rotated, grace_used),
        (2, 1, 1),
        "one rotation and one grace use, not two rotations"
    );

    // A third presentation is a replay: the session is revoked, on every replica at once.
    let replay = a.core().reissue(json!(kim.id), &kim.refresh_token).await;
    replay.assert_error("AUTH_007");
    for pair in &pairs {
        assert_token_everywhere(&cluster, pair, false).await;
        b.reissue(json!(kim.id), &pair.refresh_token)
            .await
            .assert_error("AUTH_007");
    }
}

#[tokio::test]
async fn the_storage_sweepers_of_two_replicas_share_the_queue_out() {
    let Some(cluster) = Cluster::start("the replica tests", Setup::default()).await else {
        return;
    };
    let [a, b] = [&cluster.replicas[0], &cluster.replicas[1]];
    let now = a.state.clock.now();
    let mut keys = Vec::new();
    for _ in 0..30 {
        let key = heart_core::storage::object_key("posts", now, "png");
        a.state
            .storage
            .put(&key, Bytes::from_static(b"garbage"), "image/png")
            .await
            .expect("stored");
        sqlx::query("INSERT INTO storage_garbage (object_key, queued_at) VALUES (?, ?)")
            .bind(&key)
            .bind(now)
            .execute(&a.state.db.pool)
            .await
            .expect("queued");
        keys.push(key);
    }

    let (left_a, left_b) = tokio::join!(a.state.cleanup.sweep(), b.state.cleanup.sweep());
    assert_eq!(
        (left_a.expect("sweep on A"), left_b.expect("sweep on B")),
        (0, 0)
    );
    let (queued,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM storage_garbage")
        .fetch_one(&b.state.db.pool)
        .await
        .expect("count");
    assert_eq!(queued, 0, "the queue is empty");
    for key in &keys {
        assert!(
            !b.state.storage.exists(key).await.expect("exists"),
            "{key} is still stored"
        );
    }
}

#[tokio::test]
async fn a_replica_starting_while_others_serve_revives_no_revoked_session() {
    let Some(cluster) = Cluster::start("the replica tests", Setup::default()).await else {
        return;
    };
    let kim = cluster.front.member("kim").await;
    let logged_out = cluster.front.session(kim.id, &kim.email).await;
    let logout = cluster
        .front
        .with_token("POST", "/auth/logout", &logged_out.access_token)
        .await;
    assert_eq!(logout.status, 200, "{}", logout.text());
    // A deleted member's sessions are remembered in `revoked_sessions` (their rows are gone).
    let gone = cluster.front.member("gone").await;
    let deleted = cluster
        .front
        .delete_as(&gone, &format!("/member/delete/{}", gone.id))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());

    // A third replica starts (and refills the revocations from the database) while the two
    // serve: every answer meanwhile keeps the revoked sessions refused and the live one valid.
    let watched = cluster.entries();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watcher = {
        let (kim, logged_out, gone) = (kim.clone(), logged_out.clone(), gone.clone());
        tokio::spawn(async move {
            let mut rounds = 0;
            while !*stopped.borrow() || rounds == 0 {
                for (name, entry) in &watched {
                    for (member, status) in [(&kim, 200), (&logged_out, 401), (&gone, 401)] {
                        let answer = entry
                            .with_token("GET", "/auth/verifyAccessToken", &member.access_token)
                            .await;
                        assert_eq!(answer.status, status, "{name}: {}", answer.text());
                    }
                }
                rounds += 1;
            }
            rounds
        })
    };
    let third = replica(&cluster.shared, &Setup::default(), &cluster.cores).await;
    stop.send(true).expect("the watcher runs");
    let rounds = watcher
        .await
        .expect("no refused-or-revived answer while it started");
    assert!(rounds > 0);

    for entry in [third.client.clone(), third.core()] {
        for (member, status) in [(&kim, 200), (&logged_out, 401), (&gone, 401)] {
            let answer = entry
                .with_token("GET", "/auth/verifyAccessToken", &member.access_token)
                .await;
            assert_eq!(answer.status, status, "the new replica: {}", answer.text());
        }
    }
    assert_token_everywhere(&cluster, &logged_out, false).await;
    assert_token_everywhere(&cluster, &kim, true).await;
}

/// Two cores starting at once on an empty database. sqlx's MySQL migrator would lock with
/// `GET_LOCK(…, -1)`, which MariaDB answers `NULL` at once (no lock, no wait): the core takes a
/// lock of its own, `heart_core::db::MIGRATION_LOCK`, and this test holds it to see both wait.
#[tokio::test]
async fn cores_starting_at_once_on_an_empty_database_apply_the_migrations_once() {
    let Some(shared) = SharedBackends::create("the migration race test").await else {
        return;
    };
    let vars: HashMap<String, String> = [
        ("HEART_DATABASE_URL", shared.database_url.as_str()),
        (
            "HEART_DATA_DIR",
            &shared.data_dir.path().display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = Config::from_vars(&vars).expect("configuration");
    let config_again = config.clone();

    // Hold the migrations' lock, as a core in the middle of migrating would.
    let db = shared.database().await;
    let mut holder = db.acquire().await.expect("a connection");
    let (taken,): (i64,) = sqlx::query_as(&format!(
        "SELECT CAST(GET_LOCK({MIGRATION_LOCK}, 0) AS SIGNED)"
    ))
    .fetch_one(&mut *holder)
    .await
    .expect("GET_LOCK");
    assert_eq!(taken, 1);

    let starting = [config.clone(), config]
        .map(|config| tokio::spawn(async move { Db::connect(&config).await.map(|db| db.kind) }));
    // Both wait on the lock (seen in the server's process list), and neither has created a table.
    let name = shared
        .database_url
        .rsplit('/')
        .next()
        .expect("name")
        .to_owned();
    let mut waiting = 0;
    for _ in 0..200 {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM information_schema.processlist \
             WHERE db = ? AND info LIKE 'SELECT CAST(GET_LOCK(%' AND id <> CONNECTION_ID()",
        )
        .bind(&name)
        .fetch_one(&mut *holder)
        .await
        .expect("process list");
        waiting = n;
        if waiting == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        waiting, 2,
        "both starting cores wait for the migrations' lock"
    );
    assert!(starting.iter().all(|task| !task.is_finished()));
    let (tables,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ?")
            .bind(&name)
            .fetch_one(&mut *holder)
            .await
            .expect("tables");
    assert_eq!(tables, 0, "nothing was migrated while the lock was held");

    sqlx::query(&format!("SELECT RELEASE_LOCK({MIGRATION_LOCK})"))
        .execute(&mut *holder)
        .await
        .expect("RELEASE_LOCK");
    for task in starting {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("the core came up")
            .expect("no panic")
            .expect("migrated and connected");
    }
    let migrations = std::fs::read_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../core-api/migrations/mysql"),
    )
    .expect("the migrations folder")
    .filter(|f| {
        f.as_ref()
            .is_ok_and(|f| f.path().extension().is_some_and(|e| e == "sql"))
    })
    .count();
    let (applied, succeeded): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(success), 0) AS SIGNED) FROM _sqlx_migrations",
    )
    .fetch_one(&mut *holder)
    .await
    .expect("the migrations table");
    assert_eq!(
        (applied, succeeded),
        (migrations as i64, migrations as i64),
        "each migration applied once, successfully"
    );
    // A core that starts later finds nothing to do (and no checksum mismatch).
    Db::connect(&config_again)
        .await
        .expect("a later core starts");
}
