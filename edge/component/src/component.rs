//! The Spin entry point: the I/O of the edge's steps (wasi:http in and out, Spin variables,
//! Redis). Every decision is made by the native modules ([`crate::decide`], [`crate::page`],
//! [`crate::route`], `heart_shared::edge`).

// `#[http_component]` expands to the component's `export_name`d entry point and handle conversions.
#![allow(unsafe_code)]

use futures::{SinkExt as _, StreamExt as _};
use heart_shared::edge::{
    self, RouteMatch, CACHE_STATUS_HEADER, EDGE_MEMBER_HEADER, EDGE_OUTCOME_HEADER,
};
use heart_shared::token::{bearer_token, read_unverified, TokenVerifier};
use heart_shared::ErrorCode;
use spin_sdk::http::{
    Fields, IncomingRequest, IncomingResponse, OutgoingRequest, OutgoingResponse, ResponseOutparam,
    Scheme,
};
use spin_sdk::http_component;
use spin_sdk::redis::Connection;

use crate::config::EdgeConfig;
use crate::decide::{self, Decision, TokenCheck};
use crate::gate::{self, GateAnswer, GateQuery};
use crate::page;
use crate::route::{self, Header, Identity};
use crate::Reply;

/// The largest core answer read whole to be cached (feed pages); larger ones are passed through.
const MAX_CACHED_PAGE_BYTES: usize = 1024 * 1024;

/// Answers up to this size are handed to the host whole (body before head, so they leave in one
/// write with a `content-length`), the core's too when its `content-length` says they fit: well
/// within the one buffered chunk (1 MiB) the host's outgoing body holds before its head is sent.
const WHOLE_ANSWER_BYTES: usize = 64 * 1024;

#[http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    let telemetry = variable(crate::config::var::HOST_TELEMETRY).is_some_and(|v| v == "on");
    let mut done = Done {
        outcome: "forward",
        member: None,
        telemetry,
    };
    match serve(request, &mut done).await {
        Answer::Reply(reply) => send(response_out, done.annotate(reply)).await,
        Answer::Stream(response, status, mut headers) => {
            done.headers(&mut headers);
            stream_answer(response, status, &headers, response_out).await;
        }
    }
}

/// How the request is answered.
enum Answer {
    /// A whole answer.
    Reply(Reply),
    /// The core's answer, streamed: its status and the headers to send.
    Stream(IncomingResponse, u16, Vec<Header>),
}

/// What the host's access log and metrics learn about the request (only with `host_telemetry`).
struct Done {
    outcome: &'static str,
    member: Option<i64>,
    telemetry: bool,
}

impl Done {
    fn annotate(&self, reply: Reply) -> Reply {
        if !self.telemetry {
            return reply;
        }
        let reply = reply.with_header(EDGE_OUTCOME_HEADER, self.outcome);
        match self.member {
            Some(id) => reply.with_header(EDGE_MEMBER_HEADER, &id.to_string()),
            None => reply,
        }
    }

    fn headers(&self, headers: &mut Vec<Header>) {
        if self.telemetry {
            headers.push((EDGE_OUTCOME_HEADER.into(), self.outcome.as_bytes().to_vec()));
            if let Some(id) = self.member {
                headers.push((EDGE_MEMBER_HEADER.into(), id.to_string().into_bytes()));
            }
        }
    }
}

/// Writes `reply` with its `content-length`; if its headers are refused, answers a bare
/// `GLOBAL_500` instead. A body of at most [`WHOLE_ANSWER_BYTES`] is written and finished before
/// the head is handed over, so the host has the whole answer when it writes the head: one write
/// to the client, its length known (no chunked framing). A larger body follows the head.
async fn send(response_out: ResponseOutparam, reply: Reply) {
    let (response, body) = match to_response(&reply.headers, reply.status, Some(reply.body.len())) {
        Some(response) => (response, reply.body),
        None => {
            eprintln!("heart-edge: could not build the response headers");
            let fallback = Reply::error(ErrorCode::Internal, ErrorCode::Internal.default_message());
            match to_response(
                &fallback.headers,
                fallback.status,
                Some(fallback.body.len()),
            ) {
                Some(response) => (response, fallback.body),
                None => return,
            }
        }
    };
    if body.len() > WHOLE_ANSWER_BYTES {
        if let Err(e) = response_out.set_with_body(response, body).await {
            eprintln!("heart-edge: could not write the response: {e:?}");
        }
        return;
    }
    let mut sink = response.take_body();
    let written = if body.is_empty() {
        Ok(())
    } else {
        sink.send(body).await
    };
    // Dropping the sink finishes the body (the host's buffer holds it until the head is sent).
    drop(sink);
    match written {
        Ok(()) => response_out.set(response),
        // The host ends a request whose component set no response with its own `GLOBAL_500`.
        Err(e) => eprintln!("heart-edge: could not write the response: {e:?}"),
    }
}

/// The head of an answer with `headers` and `status`; with `length`, its `content-length`
/// (except where HTTP forbids one: `204` and `304`).
fn to_response(headers: &[Header], status: u16, length: Option<usize>) -> Option<OutgoingResponse> {
    let headers = Fields::from_list(headers).ok()?;
    if let Some(length) = length.filter(|_| !matches!(status, 204 | 304)) {
        headers
            .append("content-length", length.to_string().as_bytes())
            .ok()?;
    }
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).ok()?;
    Some(response)
}

/// Seconds since the Unix epoch, from the wasi wall clock.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// Handles the request.
async fn serve(request: IncomingRequest, done: &mut Done) -> Answer {
    match decide_and_forward(request, done).await {
        Ok(answer) => answer,
        Err(reply) => Answer::Reply(reply),
    }
}

async fn decide_and_forward(request: IncomingRequest, done: &mut Done) -> Result<Answer, Reply> {
    let method = request.method().to_string().to_ascii_uppercase();
    let path_with_query = request.path_with_query().unwrap_or_else(|| "/".to_owned());
    let (path, query) = route::split_path_and_query(&path_with_query);
    let (path, query) = (path.to_owned(), query.to_owned());
    done.outcome = "refused";
    if path == "/healthz" && matches!(method.as_str(), "GET" | "HEAD") {
        done.outcome = "edge";
        return Ok(Answer::Reply(Reply::json(
            200,
            br#"{"status":"ok"}"#.to_vec(),
        )));
    }
    let matched = edge::match_route(&method, &path);
    match matched {
        RouteMatch::NoSuchRoute => {
            return Err(Reply::error(ErrorCode::NoSuchRoute, "No such route"))
        }
        RouteMatch::MethodNotAllowed(_) => {
            return Err(Reply::error(
                ErrorCode::MethodNotAllowed,
                "Method not allowed",
            ))
        }
        RouteMatch::Found(_) | RouteMatch::Unknown => {}
    }
    let config = match EdgeConfig::read(variable) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("heart-edge: {e}");
            return Err(Reply::error(
                ErrorCode::DependencyUnavailable,
                "The edge is not configured",
            ));
        }
    };
    let headers: Vec<Header> = request.headers().entries();
    let body_limit = config.body_limit(matched.body());
    let declared =
        route::header_value(&headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > body_limit) {
        return Err(too_large(body_limit));
    }
    let peer = route::header_value(&headers, "spin-client-addr")
        .map_or("unknown", edge::strip_port)
        .to_owned();
    let forwarded_for: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .collect();
    let client_ip = edge::client_ip(forwarded_for, &peer, config.trusted_proxy_hops).to_owned();
    let now = now();

    // The token: either refused outright (the full check's exact reason), or its claims, read
    // without the signature check, which the gate's verified mark or the check below confirms.
    let presented = if route::requires_token(&method, &path) {
        match read_token(&config, &headers, now) {
            Ok(presented) => presented,
            Err(TokenRefusal::Misconfigured(reply)) => return Err(reply),
            Err(TokenRefusal::Reply(reply)) => Presented::Refused(reply),
        }
    } else {
        Presented::NotNeeded
    };
    let claimed = match &presented {
        Presented::Claims { identity, .. } => Some(identity.clone()),
        _ => None,
    };

    let feed = claimed
        .as_ref()
        .and_then(|id| edge::feed_kind(&method, &path, id.member_id));
    let feed_query = feed.and_then(|feed| {
        edge::feed_cache_query(feed, &query).map(|q| {
            let scope = match feed {
                edge::FeedKind::Home { viewer } => format!("home:{viewer}"),
                edge::FeedKind::Member { member_id } => format!("member:{member_id}"),
            };
            (config.keys.feed_page(feed, &q), format!("{scope}|{q}"))
        })
    });

    let redis = config
        .redis_url
        .as_deref()
        .and_then(|url| match Connection::open(url) {
            Ok(connection) => Some(connection),
            Err(e) => {
                eprintln!("heart-edge: cache unavailable, forwarding: {e:?}");
                None
            }
        });
    let caller = match &presented {
        Presented::Claims {
            identity, token, ..
        } => Some(gate::Caller {
            session_id: identity.session_id.clone(),
            member_id: identity.member_id,
            mark: config.keys.verified_token(token),
        }),
        _ => None,
    };
    let mut answer: Option<GateAnswer> = redis.as_ref().and_then(|connection| {
        let query = GateQuery {
            client_ip: client_ip.clone(),
            caller: caller.clone(),
            page: feed_query.as_ref().map(|(key, _)| key.clone()),
        };
        match gate::run(connection, &config, &query, now) {
            Ok(answer) => Some(answer),
            Err(e) => {
                eprintln!("heart-edge: {e}, forwarding");
                None
            }
        }
    });
    let token = settle_token(
        &config,
        presented,
        redis.as_ref().zip(caller.as_ref()),
        answer.as_mut(),
        now,
    );
    let identity = match &token {
        TokenCheck::Valid(identity) => Some(identity.clone()),
        _ => None,
    };
    done.member = identity.as_ref().map(|id| id.member_id);

    let gzip = page::accepts_gzip(route::header_value(&headers, "accept-encoding"));
    let cached = feed_query
        .as_ref()
        .zip(answer.as_ref())
        .map(|((_, feed_and_query), answer)| page::etag(answer.feed_version, feed_and_query));
    match decide::decide(&config, &token, answer.as_ref(), now) {
        Decision::Refuse { reply, outcome } => {
            done.outcome = outcome;
            return Err(reply);
        }
        Decision::Hit(stored) => {
            let etag = cached.unwrap_or_default();
            if page::not_modified(route::header_value(&headers, "if-none-match"), &etag) {
                done.outcome = "not_modified";
                return Ok(Answer::Reply(not_modified(&etag)));
            }
            done.outcome = "hit";
            let send_gzip = gzip && page::is_gzip(&stored);
            let body = if send_gzip || !page::is_gzip(&stored) {
                stored
            } else {
                page::decode(&stored).ok_or_else(|| {
                    Reply::error(ErrorCode::Internal, ErrorCode::Internal.default_message())
                })?
            };
            return Ok(Answer::Reply(feed_answer(&etag, body, send_gzip, "hit")));
        }
        Decision::Forward => {}
    }
    // A page the client already has, at the current version: no body, no core.
    if let Some(etag) = &cached {
        if page::not_modified(route::header_value(&headers, "if-none-match"), etag) {
            done.outcome = "not_modified";
            return Ok(Answer::Reply(not_modified(etag)));
        }
    }

    // The gate answered, and `decide` refused revoked sessions: the core need not ask Redis again.
    let forwarded = route::forwarded_request_headers(
        &headers,
        identity.as_ref(),
        answer.is_some(),
        &config.edge_secret,
        &client_ip,
        &peer,
    );
    let response = match forward(&config, request, &path_with_query, forwarded, body_limit).await {
        Ok(response) => response,
        Err(Forwarding::Refused(reply)) => return Err(reply),
        Err(Forwarding::Failed(e)) => {
            eprintln!("heart-edge: forwarding {method} {path} failed: {e}");
            return Err(Reply::error(
                ErrorCode::DependencyUnavailable,
                "The core is unavailable",
            ));
        }
    };

    let status = response.status();
    let core_headers = response.headers().entries();
    let mut response_headers = route::forwarded_response_headers(&core_headers);
    let cacheable_answer = status == 200
        && route::header_value(&response_headers, "content-type")
            .is_some_and(|v| v.starts_with("application/json"))
        && route::header_value(&response_headers, "content-encoding").is_none();
    if feed.is_none() || !cacheable_answer {
        done.outcome = if feed.is_some() { "bypass" } else { "forward" };
        if feed.is_some() {
            response_headers.push((CACHE_STATUS_HEADER.into(), b"bypass".to_vec()));
        }
        // A `HEAD` answer has the length of the body it does not carry: passed on as it is.
        let small = method != "HEAD"
            && route::header_value(&core_headers, "content-length")
                .and_then(|v| v.trim().parse::<usize>().ok())
                .is_some_and(|length| length <= WHOLE_ANSWER_BYTES);
        if !small {
            return Ok(Answer::Stream(response, status, response_headers));
        }
        let body = read_bounded(&response, WHOLE_ANSWER_BYTES).await?;
        return Ok(Answer::Reply(Reply {
            status,
            headers: response_headers,
            body,
        }));
    }
    // A feed page: read it whole (bounded), store it, answer it with its ETag.
    let body = read_bounded(&response, MAX_CACHED_PAGE_BYTES).await?;
    match (&redis, &answer, &feed_query, &cached) {
        (Some(connection), Some(answer), Some((key, _)), Some(etag)) => {
            done.outcome = "miss";
            let stored = page::encode(&body);
            let key = key.with_version(answer.feed_version);
            if let Err(e) = gate::store_page(connection, &key, &stored, config.feed_page_ttl_secs) {
                eprintln!("heart-edge: could not store a feed page: {e}");
            }
            let body = if gzip { stored } else { body };
            Ok(Answer::Reply(feed_answer(etag, body, gzip, "miss")))
        }
        _ => {
            done.outcome = "bypass";
            let mut reply = Reply {
                status,
                headers: response_headers,
                body,
            };
            reply
                .headers
                .push((CACHE_STATUS_HEADER.into(), b"bypass".to_vec()));
            Ok(Answer::Reply(reply))
        }
    }
}

/// `304`: the client's copy (tag `etag`) is current; no body.
fn not_modified(etag: &str) -> Reply {
    let mut reply = Reply::json(304, Vec::new());
    reply.headers = page::headers(etag, false);
    reply.headers.retain(|(n, _)| n != "content-type");
    reply.with_header(CACHE_STATUS_HEADER, "hit")
}

/// A feed page answer: `body` is gzip when `gzip`.
fn feed_answer(etag: &str, body: Vec<u8>, gzip: bool, cache: &str) -> Reply {
    let mut reply = Reply::json(200, body);
    reply.headers = page::headers(etag, gzip);
    reply.with_header(CACHE_STATUS_HEADER, cache)
}

fn too_large(limit: u64) -> Reply {
    Reply::error(
        ErrorCode::PayloadTooLarge,
        &format!("Request body over this route's limit of {limit} bytes"),
    )
}

enum TokenRefusal {
    /// The contract's 401 (counted against the address by the gate).
    Reply(Reply),
    /// The edge cannot check tokens at all.
    Misconfigured(Reply),
}

/// A token as read from the request, before its signature is settled.
enum Presented {
    /// The route needs no token.
    NotNeeded,
    /// Refused by the full check: its `401`.
    Refused(Reply),
    /// Well formed, of a known key, unexpired: who it says it is. Its signature is checked (with
    /// `verifier`, the JWKS read once) unless the gate finds the exact bytes marked as verified.
    Claims {
        identity: Identity,
        token: String,
        exp: i64,
        verifier: TokenVerifier,
    },
}

/// Reads the bearer token: a token that is not well formed, of a known key and unexpired gets the
/// full check at once (and its exact refusal).
fn read_token(
    config: &EdgeConfig,
    headers: &[Header],
    now: i64,
) -> Result<Presented, TokenRefusal> {
    let token = route::header_value(headers, "authorization")
        .and_then(bearer_token)
        .ok_or_else(|| {
            TokenRefusal::Reply(Reply::error(
                ErrorCode::InvalidAccessToken,
                "Missing access token",
            ))
        })?;
    let verifier = verifier(config)?;
    let (identity, exp) = match read_unverified(&verifier, token, now) {
        Some(claims) => {
            let member_id = claims.member_id().ok_or_else(invalid)?;
            let identity = Identity {
                member_id,
                session_id: claims.sid,
            };
            (identity, claims.exp)
        }
        // Not expected (what verifies also reads), but never refuse a valid token.
        None => (verify(&verifier, token, now)?, now + 1),
    };
    Ok(Presented::Claims {
        identity,
        token: token.to_owned(),
        exp,
        verifier,
    })
}

/// Settles the token after the gate: marked as verified → valid; else its signature is checked
/// here and, when it holds and Redis answered, marked (the second round trip, once per token,
/// which also counts the member). Not checked when the address is over its limit: that answer
/// (`429`) comes before the token's in the decision, so a flood of bad tokens costs no signature
/// checks once limited.
fn settle_token(
    config: &EdgeConfig,
    presented: Presented,
    redis: Option<(&Connection, &gate::Caller)>,
    answer: Option<&mut GateAnswer>,
    now: i64,
) -> TokenCheck {
    let (identity, token, exp, verifier) = match presented {
        Presented::NotNeeded => return TokenCheck::NotNeeded,
        Presented::Refused(reply) => return TokenCheck::Refused(reply),
        Presented::Claims {
            identity,
            token,
            exp,
            verifier,
        } => (identity, token, exp, verifier),
    };
    if let Some(answer) = &answer {
        if answer.marked {
            return TokenCheck::Valid(identity);
        }
        if decide::address_over_limit(config, answer) {
            return TokenCheck::Refused(Reply::error(
                ErrorCode::InvalidAccessToken,
                "Invalid access token",
            ));
        }
    }
    match verify(&verifier, &token, now) {
        Err(TokenRefusal::Reply(reply) | TokenRefusal::Misconfigured(reply)) => {
            TokenCheck::Refused(reply)
        }
        Ok(_) => {
            if let (Some((connection, caller)), Some(answer)) = (redis, answer) {
                match gate::mark_verified(connection, config, caller, exp - now, now) {
                    Ok(member_count) => answer.member_count = member_count,
                    Err(e) => eprintln!("heart-edge: could not mark a verified token: {e}"),
                }
            }
            TokenCheck::Valid(identity)
        }
    }
}

fn invalid() -> TokenRefusal {
    TokenRefusal::Reply(Reply::error(
        ErrorCode::InvalidAccessToken,
        "Invalid access token",
    ))
}

fn verifier(config: &EdgeConfig) -> Result<TokenVerifier, TokenRefusal> {
    TokenVerifier::from_jwks_json(&config.jwks).map_err(|e| {
        eprintln!("heart-edge: variable jwks: {e}");
        TokenRefusal::Misconfigured(Reply::error(
            ErrorCode::DependencyUnavailable,
            "The edge is not configured",
        ))
    })
}

/// The full check (signature included): the verified identity, or the contract's 401.
fn verify(verifier: &TokenVerifier, token: &str, now: i64) -> Result<Identity, TokenRefusal> {
    let claims = verifier.verify(token, now).map_err(|e| {
        let code = e.error_code();
        let message = if code == ErrorCode::ExpiredAccessToken {
            code.default_message().to_owned()
        } else {
            format!("Invalid access token: {e}")
        };
        TokenRefusal::Reply(Reply::error(code, &message))
    })?;
    let member_id = claims.member_id().ok_or_else(invalid)?;
    Ok(Identity {
        member_id,
        session_id: claims.sid,
    })
}

enum Forwarding {
    /// Answered by the edge (body over the limit, unreadable body).
    Refused(Reply),
    /// The core could not be reached or answered badly.
    Failed(String),
}

/// Sends the request to the core, streaming the client's body to it (at most `limit` bytes;
/// beyond, the request to the core is abandoned, so the core never sees a cut body, and the
/// client gets `GLOBAL_008`). Answers the core's response head; its body is read by the caller.
async fn forward(
    config: &EdgeConfig,
    request: IncomingRequest,
    path_with_query: &str,
    headers: Vec<Header>,
    limit: u64,
) -> Result<IncomingResponse, Forwarding> {
    let failed = |what: &str| Forwarding::Failed(what.to_owned());
    let fields = Fields::from_list(&headers).map_err(|e| Forwarding::Failed(format!("{e:?}")))?;
    let outgoing = OutgoingRequest::new(fields);
    let (scheme, authority) = config.core_scheme_and_authority();
    let scheme = if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    outgoing
        .set_method(&request.method())
        .map_err(|()| failed("method refused"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| failed("scheme refused"))?;
    outgoing
        .set_authority(Some(authority))
        .map_err(|()| failed("authority refused"))?;
    outgoing
        .set_path_with_query(Some(path_with_query))
        .map_err(|()| failed("path refused"))?;
    let sink = outgoing.take_body();
    let sent = spin_sdk::http::send::<_, IncomingResponse>(outgoing);
    let pump = async move {
        let mut sink = sink;
        let mut stream = request.into_body_stream();
        let mut total: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    eprintln!("heart-edge: reading the request body: {e:?}");
                    let reply =
                        Reply::error(ErrorCode::UnreadableBody, "Request body could not be read");
                    return Err((reply, sink));
                }
            };
            total += chunk.len() as u64;
            if total > limit {
                return Err((too_large(limit), sink));
            }
            if let Err(e) = sink.send(chunk).await {
                let reply = Reply::error(
                    ErrorCode::DependencyUnavailable,
                    &format!("The core is unavailable ({e:?})"),
                );
                return Err((reply, sink));
            }
        }
        Ok(sink)
    };
    futures::pin_mut!(sent);
    futures::pin_mut!(pump);
    // The core may answer before the whole body is sent (an early error); then stop sending.
    match futures::future::select(sent, pump).await {
        futures::future::Either::Left((response, _)) => {
            response.map_err(|e| Forwarding::Failed(e.to_string()))
        }
        futures::future::Either::Right((Ok(sink), sent)) => {
            drop(sink);
            sent.await.map_err(|e| Forwarding::Failed(e.to_string()))
        }
        futures::future::Either::Right((Err((reply, sink)), _unsent)) => {
            // Abandon the request without finishing its body: dropping the sink would finish
            // it and the core could read a cut chunked body as whole. The instance ends with
            // this request, which frees what is forgotten here; the request itself is dropped
            // with this function's frame, where it is pinned.
            std::mem::forget(sink);
            Err(Forwarding::Refused(reply))
        }
    }
}

/// Streams the core's answer to the client. When the core's answer breaks off (or the client's
/// side fails), the body is dropped unfinished, which makes the host abort it: the client sees
/// the answer break off, never a truncated body that looks complete. (spin-sdk's body sink
/// finishes the body when dropped, so it is not used here.)
async fn stream_answer(
    response: IncomingResponse,
    status: u16,
    headers: &[Header],
    response_out: ResponseOutparam,
) {
    let Some(outgoing) = to_response(headers, status, None) else {
        eprintln!("heart-edge: could not build the response headers");
        return;
    };
    let Ok(body) = outgoing.body() else {
        eprintln!("heart-edge: the response body was already taken");
        return;
    };
    let Ok(sink) = body.write() else {
        eprintln!("heart-edge: the response body is not writable");
        return;
    };
    response_out.set(outgoing);
    // Writes all of `bytes`, waiting (in the host) while the client's side is full.
    let write_all = |mut bytes: &[u8]| -> Result<(), String> {
        while !bytes.is_empty() {
            let permitted = sink
                .check_write()
                .map_err(|e| format!("writing the answer: {e:?}"))?;
            if permitted == 0 {
                sink.subscribe().block();
                continue;
            }
            let n = usize::try_from(permitted)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            sink.write(&bytes[..n])
                .map_err(|e| format!("writing the answer: {e:?}"))?;
            bytes = &bytes[n..];
        }
        Ok(())
    };
    let mut stream = response.take_body_stream();
    let mut complete = true;
    while let Some(chunk) = stream.next().await {
        let written = chunk
            .map_err(|e| format!("reading the core's answer: {e:?}"))
            .and_then(|chunk| write_all(&chunk));
        if let Err(why) = written {
            eprintln!("heart-edge: {why}; the answer is cut off");
            complete = false;
            break;
        }
    }
    drop(stream);
    if complete {
        let flushed = sink.flush();
        drop(sink);
        if let Err(e) = flushed.map_err(|e| format!("{e:?}")).and_then(|()| {
            spin_sdk::http::OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))
        }) {
            eprintln!("heart-edge: finishing the answer: {e}");
        }
    } else {
        // Unfinished: the host aborts the body.
        drop(sink);
        drop(body);
    }
    drop(response);
}

/// The whole body of `response`, at most `max` bytes; past that, or when it breaks off, the
/// client's `GLOBAL_503` (logged).
async fn read_bounded(response: &IncomingResponse, max: usize) -> Result<Vec<u8>, Reply> {
    let unavailable = |why: String| {
        eprintln!("heart-edge: reading the core's answer: {why}");
        Reply::error(ErrorCode::DependencyUnavailable, "The core is unavailable")
    };
    let mut stream = response.take_body_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| unavailable(format!("{e:?}")))?;
        if body.len() + chunk.len() > max {
            return Err(unavailable(format!("answer over {max} bytes")));
        }
        body.extend(chunk);
    }
    Ok(body)
}
