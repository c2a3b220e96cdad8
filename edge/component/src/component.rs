//! The Spin entry point: reads the request through wasi:http, runs the edge's steps, answers.

// `#[http_component]` expands to the component's `export_name`d entry point and handle conversions.
#![allow(unsafe_code)]

use futures::StreamExt as _;
use heart_shared::edge::{self, CACHE_STATUS_HEADER};
use heart_shared::token::{bearer_token, TokenVerifier};
use heart_shared::ErrorCode;
use spin_sdk::http::{
    Fields, IncomingRequest, IncomingResponse, OutgoingResponse, ResponseOutparam,
};
use spin_sdk::http_component;
use spin_sdk::redis::Connection;

use crate::config::EdgeConfig;
use crate::gate::{self, GateAnswer, GateQuery};
use crate::route::{self, Header, Identity};
use crate::{Reply, MAX_REQUEST_BODY_BYTES};

#[http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    let reply = serve(request).await;
    send(response_out, reply).await;
}

/// Writes `reply`; if its headers are refused, answers a bare `GLOBAL_500` instead.
async fn send(response_out: ResponseOutparam, reply: Reply) {
    let (response, body) = match to_response(&reply) {
        Some(response) => (response, reply.body),
        None => {
            eprintln!("heart-edge: could not build the response headers");
            let fallback = Reply::error(ErrorCode::Internal, ErrorCode::Internal.default_message());
            match to_response(&fallback) {
                Some(response) => (response, fallback.body),
                None => return,
            }
        }
    };
    if let Err(e) = response_out.set_with_body(response, body).await {
        eprintln!("heart-edge: could not write the response: {e:?}");
    }
}

fn to_response(reply: &Reply) -> Option<OutgoingResponse> {
    let headers = Fields::from_list(&reply.headers).ok()?;
    let response = OutgoingResponse::new(headers);
    response.set_status_code(reply.status).ok()?;
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

async fn serve(request: IncomingRequest) -> Reply {
    let method = request.method().to_string();
    let path_with_query = request.path_with_query().unwrap_or_else(|| "/".to_owned());
    let (path, query) = route::split_path_and_query(&path_with_query);
    let (path, query) = (path.to_owned(), query.to_owned());
    if path == "/healthz" {
        return Reply::json(200, br#"{"status":"ok"}"#.to_vec());
    }
    let config = match EdgeConfig::read(variable) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("heart-edge: {e}");
            return Reply::error(
                ErrorCode::DependencyUnavailable,
                "The edge is not configured",
            );
        }
    };
    let headers: Vec<Header> = request.headers().entries();
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

    let identity = if route::requires_token(&method, &path) {
        match verify(&config, &headers, now) {
            Ok(identity) => Some(identity),
            Err(reply) => return reply,
        }
    } else {
        None
    };

    let feed = identity
        .as_ref()
        .and_then(|id| edge::feed_kind(&method, &path, id.member_id));
    let page_key = feed.and_then(|feed| {
        edge::canonical_feed_query(&query).map(|q| config.keys.feed_page(feed, &q))
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
    let answer: Option<GateAnswer> = redis.as_ref().and_then(|connection| {
        let query = GateQuery {
            client_ip: client_ip.clone(),
            caller: identity
                .as_ref()
                .map(|id| (id.session_id.clone(), id.member_id)),
            page: page_key.clone(),
        };
        match gate::run(connection, &config, &query, now) {
            Ok(answer) => Some(answer),
            Err(e) => {
                eprintln!("heart-edge: {e}, forwarding");
                None
            }
        }
    });

    if let Some(answer) = &answer {
        if answer.revoked {
            return Reply::error(ErrorCode::InvalidAccessToken, "Revoked access token");
        }
        if !config.per_ip.allows(answer.ip_count.max(0) as u64) {
            return Reply::rate_limited(config.per_ip.retry_after(now));
        }
        if identity.is_some() && !config.per_member.allows(answer.member_count.max(0) as u64) {
            return Reply::rate_limited(config.per_member.retry_after(now));
        }
        if let Some(page) = &answer.page {
            return Reply::json(200, page.clone()).with_header(CACHE_STATUS_HEADER, "hit");
        }
    }

    let body = match read_body(request).await {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let forwarded = route::forwarded_request_headers(
        &headers,
        identity.as_ref(),
        &config.edge_secret,
        &client_ip,
        &peer,
    );
    let url = format!("{}{path_with_query}", config.core_url);
    let mut reply = match forward(&method, &url, forwarded, body).await {
        Ok(reply) => reply,
        Err(e) => {
            eprintln!("heart-edge: forwarding {method} {path} failed: {e}");
            return Reply::error(ErrorCode::DependencyUnavailable, "The core is unavailable");
        }
    };

    if feed.is_some() {
        let status = match (&redis, &answer, &page_key) {
            (Some(connection), Some(answer), Some(key)) => {
                if is_cacheable(&reply) {
                    let key = key.with_version(answer.feed_version);
                    if let Err(e) =
                        gate::store_page(connection, &key, &reply.body, config.feed_page_ttl_secs)
                    {
                        eprintln!("heart-edge: could not store a feed page: {e}");
                    }
                }
                "miss"
            }
            _ => "bypass",
        };
        reply = reply.with_header(CACHE_STATUS_HEADER, status);
    }
    reply
}

/// The verified identity, or the contract's 401.
fn verify(config: &EdgeConfig, headers: &[Header], now: i64) -> Result<Identity, Reply> {
    let token = route::header_value(headers, "authorization")
        .and_then(bearer_token)
        .ok_or_else(|| Reply::error(ErrorCode::InvalidAccessToken, "Missing access token"))?;
    let verifier = TokenVerifier::from_jwks_json(&config.jwks).map_err(|e| {
        eprintln!("heart-edge: variable jwks: {e}");
        Reply::error(
            ErrorCode::DependencyUnavailable,
            "The edge is not configured",
        )
    })?;
    let claims = verifier.verify(token, now).map_err(|e| {
        let code = e.error_code();
        let message = if code == ErrorCode::ExpiredAccessToken {
            code.default_message().to_owned()
        } else {
            format!("Invalid access token: {e}")
        };
        Reply::error(code, &message)
    })?;
    let member_id = claims
        .member_id()
        .ok_or_else(|| Reply::error(ErrorCode::InvalidAccessToken, "Invalid access token"))?;
    Ok(Identity {
        member_id,
        session_id: claims.sid,
    })
}

fn is_cacheable(reply: &Reply) -> bool {
    reply.status == 200
        && route::header_value(&reply.headers, "content-type")
            .is_some_and(|v| v.starts_with("application/json"))
}

/// The whole request body, at most [`MAX_REQUEST_BODY_BYTES`] (`GLOBAL_008` beyond).
async fn read_body(request: IncomingRequest) -> Result<Vec<u8>, Reply> {
    let mut stream = request.into_body_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            eprintln!("heart-edge: reading the request body: {e:?}");
            Reply::error(ErrorCode::UnreadableBody, "Request body could not be read")
        })?;
        if body.len() + chunk.len() > MAX_REQUEST_BODY_BYTES {
            return Err(Reply::error(
                ErrorCode::PayloadTooLarge,
                "Request too large",
            ));
        }
        body.extend(chunk);
    }
    Ok(body)
}

/// Sends the request to the core and reads its whole answer.
async fn forward(
    method: &str,
    url: &str,
    headers: Vec<Header>,
    body: Vec<u8>,
) -> Result<Reply, String> {
    let mut builder = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let request = builder.body(body).map_err(|e| e.to_string())?;
    let response: IncomingResponse = spin_sdk::http::send(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let headers = route::forwarded_response_headers(&response.headers().entries());
    let body = response
        .into_body()
        .await
        .map_err(|e| format!("reading the core's answer: {e:?}"))?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}
