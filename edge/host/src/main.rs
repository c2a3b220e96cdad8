//! `heart-edge-host`: serves the edge component on `HEART_EDGE_LISTEN` (default `127.0.0.1:3000`),
//! on `HEART_EDGE_THREADS` threads (default: one per core), each with a runtime of its own.
//!
//! Variables come from `HEART_EDGE_VAR_<NAME>` (e.g. `HEART_EDGE_VAR_CORE_URL`); see the README.
//! `HEART_EDGE_ADMIN_LISTEN` (unset: none) is the admin port, `GET /metrics`; the log is JSON on
//! stderr (`HEART_LOG_FORMAT`, `RUST_LOG`).

use std::net::ToSocketAddrs as _;

use anyhow::Context as _;
use heart_edge_host::threads::{serve_on_threads, thread_count};
use heart_edge_host::{telemetry, EdgeHost, HostConfig};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

fn main() -> anyhow::Result<()> {
    init_logging()?;
    let config = HostConfig::from_env()?;
    let threads = thread_count(std::env::var("HEART_EDGE_THREADS").ok())?;
    tracing::info!(?config, threads, "starting the edge host");
    // This thread's runtime waits for the shutdown signal; the serving threads have their own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _entered = runtime.enter();
    let host = EdgeHost::new(config)?;
    let listen = std::env::var("HEART_EDGE_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let address = resolve(&listen)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // The admin port first: a bad address fails before the edge takes requests.
    match std::env::var("HEART_EDGE_ADMIN_LISTEN")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        Some(admin) => {
            let admin = resolve(&admin)?;
            let listener = runtime
                .block_on(tokio::net::TcpListener::bind(admin))
                .with_context(|| format!("binding the admin port {admin}"))?;
            let metrics = heart_edge_host::admin::install_recorder()?;
            tracing::info!(address = %listener.local_addr()?, "admin listening: GET /metrics");
            runtime.spawn(heart_edge_host::admin::serve(
                listener,
                metrics,
                stopped.clone(),
            ));
        }
        None => tracing::info!("no admin port: metrics off (set HEART_EDGE_ADMIN_LISTEN)"),
    }
    let serving = serve_on_threads(&host, address, threads, stopped)?;
    tracing::info!(address = %serving.address, threads, "edge listening");
    runtime.block_on(shutdown_signal());
    stop.send_replace(true);
    serving.join()
}

/// The first address `listen` (`host:port`) names.
fn resolve(listen: &str) -> anyhow::Result<std::net::SocketAddr> {
    listen
        .to_socket_addrs()
        .with_context(|| format!("resolving {listen}"))?
        .next()
        .with_context(|| format!("{listen} names no address"))
}

/// Resolves on SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// The log on stderr: JSON lines (as the core writes them) unless `HEART_LOG_FORMAT` says
/// `pretty` or, by default, stderr is a terminal. `RUST_LOG` filters (default `info`).
fn init_logging() -> anyhow::Result<()> {
    let json = telemetry::log_is_json(std::env::var("HEART_LOG_FORMAT").ok().as_deref())?;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry
            .with(telemetry::json_layer(std::io::stderr))
            .try_init()?;
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init()?;
    }
    Ok(())
}
