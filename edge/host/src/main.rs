//! `heart-edge-host`: serves the edge component on `HEART_EDGE_LISTEN` (default `127.0.0.1:3000`).
//!
//! Variables come from `HEART_EDGE_VAR_<NAME>` (e.g. `HEART_EDGE_VAR_CORE_URL`); see the README.

use anyhow::Context as _;
use heart_edge_host::{EdgeHost, HostConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = HostConfig::from_env()?;
    tracing::info!(?config, "starting the edge host");
    let host = EdgeHost::new(config)?;
    let listen = std::env::var("HEART_EDGE_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!(address = %listener.local_addr()?, "edge listening");
    host.serve(listener, shutdown_signal()).await?;
    Ok(())
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
