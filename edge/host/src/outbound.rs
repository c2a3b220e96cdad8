//! Outbound HTTP from the component: only to the core's origin, over a pool of keep-alive
//! connections (hyper-util's client), with time limits; the forward latency is measured here.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

/// The scheme and authority the component may send HTTP requests to (the core).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    authority: String,
}

impl Origin {
    pub(crate) fn parse(url: &str) -> anyhow::Result<Origin> {
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("core_url {url:?} is not a URL"))?;
        match (uri.scheme_str(), uri.authority()) {
            (Some(scheme @ ("http" | "https")), Some(authority)) => Ok(Origin {
                scheme: scheme.to_owned(),
                authority: authority.as_str().to_owned(),
            }),
            _ => anyhow::bail!("core_url {url:?} must be an http(s) origin"),
        }
    }

    pub(crate) fn allows(&self, uri: &http::Uri) -> bool {
        uri.scheme_str() == Some(self.scheme.as_str())
            && uri.authority().map(|a| a.as_str()) == Some(self.authority.as_str())
    }
}

/// The pooled client to the core: keep-alive HTTP/1.1 connections, reused across requests and
/// instances (the component's instance lives for one request; the pool lives with the host).
pub(crate) type CorePool = Client<HttpConnector, WasiBody>;

/// A pool with at most `max_idle` idle connections, each dropped after 60 s unused.
pub(crate) fn core_pool(max_idle: usize, connect_timeout: Duration) -> CorePool {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_keepalive(Some(Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(max_idle)
        .build(connector)
}

/// Outbound HTTP policy: only the core, with time limits, over the pool.
pub(crate) struct OutboundPolicy {
    pub(crate) core: Origin,
    pub(crate) timeout: Duration,
    pub(crate) pool: CorePool,
}

type IoFuture = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: IoFuture,
    ) -> Box<
        dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), wasmtime_wasi_http::Error>>
            + Send,
    > {
        drop(fut);
        let allowed = self.core.allows(request.uri());
        let timeout = self.timeout;
        let pooled = self.core.scheme == "http";
        let pool = self.pool.clone();
        Box::new(async move {
            if !allowed {
                tracing::warn!(uri = %request.uri(), "component sent a request outside the core; refused");
                return Err(wasmtime_wasi_http::Error::HttpRequestDenied);
            }
            let started = Instant::now();
            let options = options.unwrap_or_default();
            let first_byte = options.first_byte_timeout.unwrap_or(timeout).min(timeout);
            let result = if pooled {
                match tokio::time::timeout(first_byte, pool.request(request)).await {
                    Ok(Ok(response)) => Ok((
                        response.map(|body| {
                            body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync()
                        }),
                        Box::new(async { Ok(()) }) as IoFuture,
                    )),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "forwarding to the core failed");
                        Err(if e.is_connect() {
                            wasmtime_wasi_http::Error::ConnectionRefused
                        } else {
                            wasmtime_wasi_http::Error::HttpProtocolError
                        })
                    }
                    Err(_) => Err(wasmtime_wasi_http::Error::ConnectionReadTimeout),
                }
            } else {
                let options = RequestOptions {
                    connect_timeout: Some(options.connect_timeout.unwrap_or(timeout).min(timeout)),
                    first_byte_timeout: Some(first_byte),
                    between_bytes_timeout: Some(
                        options
                            .between_bytes_timeout
                            .unwrap_or(timeout)
                            .min(timeout),
                    ),
                };
                wasmtime_wasi_http::default_send_request(request, Some(options))
                    .await
                    .map(|(response, io)| {
                        (
                            response.map(|body| body.boxed_unsync()),
                            Box::new(io) as IoFuture,
                        )
                    })
            };
            metrics::histogram!("heart_edge_forward_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_cores_origin_is_reachable() {
        let core = Origin::parse("http://heart-core:8080").unwrap();
        let allowed = |uri: &str| core.allows(&uri.parse().unwrap());
        assert!(allowed("http://heart-core:8080/post/posts?page=0"));
        assert!(!allowed("https://heart-core:8080/post/posts"));
        assert!(!allowed("http://heart-core:8081/"));
        assert!(!allowed("http://evil.example.com/"));
        assert!(!allowed("http://heart-core/"));
        assert!(Origin::parse("heart-core:8080").is_err());
        assert!(Origin::parse("ftp://heart-core").is_err());
    }
}
