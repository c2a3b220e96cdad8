//! Real Redis going bad under a running edge (only with `HEART_TEST_REDIS_URL`): the core's fault
//! proxy between the host and Redis is stalled, made to lose packets, or cut, and restored. While
//! Redis is bad, feed reads are forwarded (`x-heart-cache: bypass`) after at most one call
//! timeout, and every later one without waiting for Redis at all; once it is good again the edge
//! caches again by itself.

use std::time::{Duration, Instant};

use heart_edge_host::store::RedisTimeouts;

use crate::fault_proxy::{proxy_to, Mode, Proxy};
use crate::helpers::{Backend, Options, TestEdge};

/// What happens to Redis.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Connections accepted, nothing answered (open ones hang too).
    Stall,
    /// Half the chunks lost; a connection that lost one hangs.
    Lossy,
    /// Stopped: connections dropped, new ones refused.
    Stopped,
}

const FEED: &str = "/post/posts/4?page=0&size=10";

/// The most a request may take while the breaker is open: far below one call timeout (500 ms),
/// so a request that waited for Redis at all fails this. Generous for a debug build on a busy
/// machine; a forwarded feed read takes a few milliseconds here.
const BYPASSED_WITHIN: Duration = Duration::from_millis(250);

async fn edge_behind_proxy() -> Option<(Proxy, TestEdge)> {
    let redis = crate::helpers::real_redis_url()?;
    let (proxy, via) = proxy_to(&redis).await;
    let edge = TestEdge::start_with(Options::on(Backend::Redis).redis_url(&via)).await;
    Some((proxy, edge))
}

/// One feed read: its cache header and how long it took (always `200`: Redis never costs one).
async fn feed(edge: &TestEdge, token: &str) -> (String, Duration) {
    let started = Instant::now();
    let answer = edge.get_as(token, FEED).await;
    let took = started.elapsed();
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let cache = answer.header("x-heart-cache").unwrap_or("none").to_owned();
    (cache, took)
}

async fn bypassed_then_recovered(fault: Fault) {
    let Some((proxy, edge)) = edge_behind_proxy().await else {
        return;
    };
    let token = edge.signer.token(4, "s4");
    assert_eq!(feed(&edge, &token).await.0, "miss");
    assert_eq!(feed(&edge, &token).await.0, "hit");

    match fault {
        Fault::Stall => proxy.set(Mode::Stall),
        Fault::Lossy => proxy.set(Mode::Drop(0.5)),
        Fault::Stopped => proxy.cut().await,
    }
    // The first reads find Redis gone: at most one call timeout (500 ms), all at once.
    let started = Instant::now();
    let first = tokio::join!(
        feed(&edge, &token),
        feed(&edge, &token),
        feed(&edge, &token),
        feed(&edge, &token)
    );
    let detected = started.elapsed();
    for (cache, _) in [first.0, first.1, first.2, first.3] {
        assert_eq!(cache, "bypass", "{fault:?}");
    }
    let call = RedisTimeouts::default().call;
    assert!(
        detected < call + Duration::from_millis(700),
        "{fault:?}: the first reads took {detected:?} (one call timeout is {call:?})"
    );
    // From then on, no request waits for Redis.
    let mut took = Vec::new();
    for _ in 0..20 {
        let (cache, elapsed) = feed(&edge, &token).await;
        assert_eq!(cache, "bypass", "{fault:?}");
        took.push(elapsed);
    }
    took.sort();
    let worst = took[took.len() - 1];
    eprintln!(
        "{fault:?}: first reads {detected:?}, then median {:?}, worst {worst:?}",
        took[took.len() / 2]
    );
    assert!(
        worst < BYPASSED_WITHIN,
        "{fault:?}: a read took {worst:?} while the breaker was open: {took:?}"
    );

    match fault {
        Fault::Stall | Fault::Lossy => proxy.set(Mode::Pass),
        Fault::Stopped => proxy.restore().await,
    }
    // Back without a restart: the page cached before the fault is served again.
    let back = Instant::now();
    loop {
        let (cache, _) = feed(&edge, &token).await;
        if cache == "hit" {
            break;
        }
        assert_eq!(cache, "bypass", "{fault:?}");
        assert!(
            back.elapsed() < Duration::from_secs(3),
            "{fault:?}: the edge did not use Redis again within 3 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "{fault:?}: cached again {:?} after the fault",
        back.elapsed()
    );
}

#[tokio::test]
async fn a_stalled_redis_is_bypassed_within_milliseconds_and_used_again_when_back() {
    bypassed_then_recovered(Fault::Stall).await;
}

#[tokio::test]
async fn a_packet_losing_redis_is_bypassed_within_milliseconds_and_used_again_when_back() {
    bypassed_then_recovered(Fault::Lossy).await;
}

#[tokio::test]
async fn a_stopped_redis_is_bypassed_within_milliseconds_and_used_again_when_back() {
    bypassed_then_recovered(Fault::Stopped).await;
}
