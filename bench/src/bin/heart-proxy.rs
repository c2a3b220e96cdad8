//! `heart-proxy`: the least a proxy in front of the core can do, as a reference for the edge's
//! forwarded rows (`bench/proxy-floor.sh`). Native code, no component, no token check, no limits:
//! each request is passed to the core as it came (its body streamed, the answer streamed back)
//! over pooled keep-alive connections, served as the edge host serves, on one thread per core
//! with a runtime of its own, every thread listening on the address (`SO_REUSEPORT`).
//!
//! With `--redis host:port` it also makes one Redis round trip per request before forwarding,
//! over one connection per client connection: a `GET` of a key that does not exist (the one trip
//! the edge must make, at its cheapest) or, with `--redis-work gate`, the edge's own gate script
//! with the keys of a forwarded request whose token is already marked as verified.
//!
//! With `--redis-work page --page-file F` it is a native cache hit instead: the gate script with
//! the keys of a cacheable feed read, whose answer carries the page (`F`'s bytes, stored in Redis
//! under this proxy's own keys when the connection opens), answered as gzip JSON without the core.
//!
//! ```sh
//! heart-proxy --listen 127.0.0.1:8082 --core 127.0.0.1:8081 [--redis 127.0.0.1:6379 [--redis-work gate]]
//! heart-proxy --listen 127.0.0.1:8085 --redis 127.0.0.1:6379 --redis-work page --page-file page.json.gz
//! ```
//!
//! Not a product: it exists to be measured beside the edge. Runs until killed.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use heart_shared::edge::{GATE_SCRIPT, GATE_SCRIPT_SHA1};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufStream};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Mutex;

const HELP: &str = "heart-proxy: a bare native proxy in front of the core (a benchmark reference)

usage: heart-proxy [--listen 127.0.0.1:8082] [--core 127.0.0.1:8081] [--redis HOST:PORT]
                   [--redis-work get|gate|page] [--page-file FILE] [--threads N]
--redis: one Redis round trip per request before forwarding: a GET (get, the default) or the
edge's gate script with a verified token's keys (gate); page: the gate script of a cached feed
read, answering FILE's bytes (gzip JSON) from Redis without the core;
--threads: serving threads (default: cores)";

#[derive(Debug, Clone)]
struct Options {
    listen: SocketAddr,
    core: SocketAddr,
    redis: Option<SocketAddr>,
    redis_work: RedisWork,
    page: Option<Bytes>,
    threads: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        listen: SocketAddr::from(([127, 0, 0, 1], 8082)),
        core: SocketAddr::from(([127, 0, 0, 1], 8081)),
        redis: None,
        redis_work: RedisWork::Get,
        page: None,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n\n{HELP}"));
        let address = |v: String| {
            v.parse::<SocketAddr>()
                .map_err(|_| format!("{flag} {v}: host:port"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Err(HELP.into()),
            "--listen" => options.listen = address(value?)?,
            "--core" => options.core = address(value?)?,
            "--redis" => options.redis = Some(address(value?)?),
            "--redis-work" => {
                options.redis_work = match value?.as_str() {
                    "get" => RedisWork::Get,
                    "gate" => RedisWork::Gate,
                    "page" => RedisWork::Page,
                    v => return Err(format!("--redis-work {v}: get, gate or page")),
                }
            }
            "--page-file" => {
                let v = value?;
                let bytes = std::fs::read(&v).map_err(|e| format!("--page-file {v}: {e}"))?;
                options.page = Some(Bytes::from(bytes));
            }
            "--threads" => {
                let v = value?;
                options.threads = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--threads {v}: a positive number"))?;
            }
            other => return Err(format!("unknown argument {other}\n\n{HELP}")),
        }
    }
    match (options.redis_work, &options.page, options.redis) {
        (RedisWork::Page, None, _) => Err("--redis-work page needs --page-file".into()),
        (RedisWork::Page, _, None) => Err("--redis-work page needs --redis".into()),
        (RedisWork::Get | RedisWork::Gate, Some(_), _) => {
            Err("--page-file is for --redis-work page".into())
        }
        _ => Ok(options),
    }
}

type CoreClient = Client<HttpConnector, Incoming>;

fn core_client() -> CoreClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build(connector)
}

/// One client connection's Redis connection, opened at its first request.
type RedisSlot = Arc<Mutex<Option<BufStream<TcpStream>>>>;

/// What the proxy asks Redis per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RedisWork {
    /// A `GET` of a key nobody sets: the cheapest round trip.
    Get,
    /// The edge's own gate script (`heart_shared::edge::GATE_SCRIPT`) by `EVALSHA`, with the keys
    /// of a forwarded request whose token is marked as verified (the edge's steady state): the
    /// address counted, the revocation flag and the mark read, the member counted.
    Gate,
    /// The gate script with the keys of a cacheable feed read (the above, then the feed version
    /// and the page stored under it): the answer carries the page.
    Page,
}

/// This proxy's page key is `PAGE_HEAD` + the feed version (none is set: 0) + `PAGE_TAIL`.
const PAGE_HEAD: &str = "heart-proxy:page:";
const PAGE_TAIL: &str = ":gzip";

/// A command in Redis' protocol.
fn command(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// What Redis answered: an error line, or the longest string in the answer (the gate's page).
#[derive(Debug, Default)]
struct Answer {
    error: Option<String>,
    longest: Option<Vec<u8>>,
}

/// Reads one whole answer (arrays included).
async fn read_answer(redis: &mut BufStream<TcpStream>) -> std::io::Result<Answer> {
    let mut answer = Answer::default();
    let mut pending = 1usize;
    let mut line = String::new();
    while pending > 0 {
        pending -= 1;
        line.clear();
        if redis.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::other("Redis closed the connection"));
        }
        let length = line.get(1..).and_then(|n| n.trim().parse::<i64>().ok());
        match (line.as_bytes().first(), length) {
            (Some(b'-'), _) => {
                answer.error = Some(line.trim().to_owned());
                return Ok(answer);
            }
            (Some(b'*'), Some(n)) if n > 0 => pending += n as usize,
            (Some(b'$'), Some(n)) if n >= 0 => {
                let mut value = vec![0; n as usize + 2];
                redis.read_exact(&mut value).await?;
                value.truncate(n as usize);
                if answer
                    .longest
                    .as_ref()
                    .is_none_or(|l| l.len() < value.len())
                {
                    answer.longest = Some(value);
                }
            }
            (Some(b'*' | b'$' | b':' | b'+'), _) => {}
            _ => return Err(std::io::Error::other(format!("Redis answered {line:?}"))),
        }
    }
    Ok(answer)
}

/// Sends `request` and reads its answer.
async fn call(redis: &mut BufStream<TcpStream>, request: &[u8]) -> std::io::Result<Answer> {
    redis.write_all(request).await?;
    redis.flush().await?;
    read_answer(redis).await
}

/// `EVALSHA` of the gate script as the edge sends it (`edge/component/src/gate.rs`), with this
/// proxy's keys and limits no load reaches: four keys for a forward, five for a feed read.
fn gate_arguments(work: RedisWork) -> Vec<&'static [u8]> {
    let mut gate: Vec<&[u8]> = vec![
        b"EVALSHA",
        GATE_SCRIPT_SHA1.as_bytes(),
        b"4",
        b"heart-proxy:ip",
        b"heart-proxy:revoked",
        b"heart-proxy:member",
        b"heart-proxy:mark",
    ];
    if work == RedisWork::Page {
        gate[2] = b"5";
        gate.push(b"heart-proxy:feed-version");
    }
    gate.extend([
        b"60".as_slice(),
        b"60",
        PAGE_HEAD.as_bytes(),
        PAGE_TAIL.as_bytes(),
        b"1000000000",
        b"1000000000",
    ]);
    gate
}

/// One round trip of `work` (the gate's script loaded first when Redis does not know it);
/// the page, for [`RedisWork::Page`].
async fn redis_round_trip(
    slot: &RedisSlot,
    address: SocketAddr,
    work: RedisWork,
    page: Option<&Bytes>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut slot = slot.lock().await;
    if slot.is_none() {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let mut redis = BufStream::new(stream);
        if work != RedisWork::Get {
            // The token's verified mark, as the edge finds it after a token's first request.
            call(&mut redis, &command(&[b"SET", b"heart-proxy:mark", b"1"])).await?;
        }
        if let Some(page) = page {
            let key = format!("{PAGE_HEAD}0{PAGE_TAIL}");
            call(&mut redis, &command(&[b"SET", key.as_bytes(), page])).await?;
        }
        *slot = Some(redis);
    }
    let Some(redis) = slot.as_mut() else {
        return Err(std::io::Error::other("no Redis connection"));
    };
    let request = match work {
        RedisWork::Get => command(&[b"GET", b"heart-proxy:no-such-key"]),
        RedisWork::Gate | RedisWork::Page => command(&gate_arguments(work)),
    };
    let mut answer = call(redis, &request).await?;
    if work != RedisWork::Get
        && answer
            .error
            .as_ref()
            .is_some_and(|e| e.starts_with("-NOSCRIPT"))
    {
        call(
            redis,
            &command(&[b"SCRIPT", b"LOAD", GATE_SCRIPT.as_bytes()]),
        )
        .await?;
        answer = call(redis, &request).await?;
    }
    match (answer.error, work) {
        (Some(error), _) => Err(std::io::Error::other(error)),
        (None, RedisWork::Page) => match answer.longest {
            Some(page) => Ok(Some(page)),
            None => Err(std::io::Error::other("the gate found no page")),
        },
        (None, _) => Ok(None),
    }
}

/// Serves one request: the Redis round trip, if any; then the page (a native hit) or the
/// request forwarded to the core; `502` with an empty body when Redis or the core fails.
async fn forward(
    mut request: Request<Incoming>,
    client: CoreClient,
    core: SocketAddr,
    redis: Option<(RedisSlot, SocketAddr, RedisWork, Option<Bytes>)>,
) -> Result<Response<Either<Incoming, Full<Bytes>>>, std::convert::Infallible> {
    let bad_gateway = || {
        let mut answer = Response::new(Either::Right(Full::default()));
        *answer.status_mut() = StatusCode::BAD_GATEWAY;
        answer
    };
    if let Some((slot, address, work, page)) = &redis {
        match redis_round_trip(slot, *address, *work, page.as_ref()).await {
            Ok(None) => {}
            Ok(Some(page)) => {
                let mut answer = Response::new(Either::Right(Full::new(Bytes::from(page))));
                let headers = answer.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                return Ok(answer);
            }
            Err(e) => {
                eprintln!("heart-proxy: Redis: {e}");
                *slot.lock().await = None;
                return Ok(bad_gateway());
            }
        }
    }
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("http://{core}{path}").parse() else {
        return Ok(bad_gateway());
    };
    *request.uri_mut() = uri;
    match client.request(request).await {
        Ok(answer) => Ok(answer.map(Either::Left)),
        Err(e) => {
            eprintln!("heart-proxy: core: {e}");
            Ok(bad_gateway())
        }
    }
}

fn serve_thread(options: Options) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let socket = if options.listen.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(options.listen)?;
        let listener = socket.listen(1024)?;
        let client = core_client();
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let client = client.clone();
            let core = options.core;
            let redis = options.redis.map(|address| {
                let page = options.page.clone();
                (RedisSlot::default(), address, options.redis_work, page)
            });
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    forward(request, client.clone(), core, redis.clone())
                });
                if let Err(e) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    eprintln!("heart-proxy: connection: {e}");
                }
            });
        }
    })
}

fn main() -> ExitCode {
    let options = heart_bench::args_or_exit(parse_args());
    eprintln!(
        "heart-proxy on {} → core {}{}, {} threads",
        options.listen,
        options.core,
        options.redis.map_or(String::new(), |r| format!(
            ", one Redis round trip ({:?}) per request on {r}",
            options.redis_work
        )),
        options.threads
    );
    let threads: Vec<_> = (0..options.threads)
        .map(|_| {
            let options = options.clone();
            std::thread::spawn(move || serve_thread(options))
        })
        .collect();
    for thread in threads {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("heart-proxy: {e}");
                return ExitCode::FAILURE;
            }
            Err(_) => return ExitCode::FAILURE,
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_written_in_redis_protocol() {
        assert_eq!(
            command(&[b"GET", b"k\r\n"]),
            b"*2\r\n$3\r\nGET\r\n$3\r\nk\r\n\r\n".to_vec()
        );
        assert_eq!(
            command(&[b"SET", b"k", b""]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn the_gate_is_called_with_the_edges_shape_of_arguments() {
        // EVALSHA <sha> <numkeys> <keys…> then six ARGV: two windows, the page key's head and
        // tail, two limits (the order of heart_shared::edge::GATE_SCRIPT's doc).
        for (work, keys) in [(RedisWork::Gate, 4), (RedisWork::Page, 5)] {
            let args = gate_arguments(work);
            assert_eq!(args[1], GATE_SCRIPT_SHA1.as_bytes());
            assert_eq!(args[2], keys.to_string().as_bytes());
            assert_eq!(args.len(), 3 + keys + 6);
            assert_eq!(args[3 + keys + 2], PAGE_HEAD.as_bytes());
        }
    }

    /// `read_answer` on what a server sent over a real socket, then closed.
    async fn answer_to(sent: &'static [u8]) -> std::io::Result<Answer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await?;
            socket.write_all(sent).await?;
            socket.shutdown().await
        });
        let mut client = BufStream::new(TcpStream::connect(address).await?);
        let answer = read_answer(&mut client).await;
        server.await.map_err(std::io::Error::other)??;
        answer
    }

    #[tokio::test]
    async fn the_gates_answer_is_read_whole_with_its_page() -> std::io::Result<()> {
        // {ip count, revoked, member count, version, page, marked}: the page holds a CRLF.
        let answer = answer_to(b"*6\r\n:1\r\n:0\r\n:7\r\n:0\r\n$7\r\nab\r\ncde\r\n:1\r\n").await?;
        assert_eq!(answer.error, None);
        assert_eq!(answer.longest.as_deref(), Some(b"ab\r\ncde".as_slice()));
        // No page: a nil in its place.
        let answer = answer_to(b"*6\r\n:1\r\n:0\r\n:7\r\n:0\r\n$-1\r\n:1\r\n").await?;
        assert_eq!((answer.error, answer.longest), (None, None));
        Ok(())
    }

    #[tokio::test]
    async fn errors_and_cut_answers_are_told_apart() -> std::io::Result<()> {
        let answer = answer_to(b"-NOSCRIPT No matching script.\r\n").await?;
        assert_eq!(
            answer.error.as_deref(),
            Some("-NOSCRIPT No matching script.")
        );
        // An array whose elements never come, and garbage, are failures, not answers.
        assert!(answer_to(b"*2\r\n:1\r\n").await.is_err());
        assert!(answer_to(b"?what\r\n").await.is_err());
        Ok(())
    }
}
