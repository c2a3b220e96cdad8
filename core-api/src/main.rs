//! `heart-core`: reads `HEART_*` settings, connects the backends and serves until SIGTERM.

use std::process::ExitCode;

use heart_core::clock::Clock;
use heart_core::{App, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("heart-core: {error}");
            return ExitCode::from(2);
        }
    };
    heart_core::telemetry::init_logging(config.log_format);
    let (listen, admin_listen) = (config.listen_addr, config.admin_listen_addr);

    let app = match App::build(config, Clock::system()).await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(error = %heart_core::error::cause_chain(&error), "startup failed");
            return ExitCode::FAILURE;
        }
    };
    let listeners = tokio::try_join!(
        tokio::net::TcpListener::bind(listen),
        tokio::net::TcpListener::bind(admin_listen)
    );
    let (listener, admin_listener) = match listeners {
        Ok(pair) => pair,
        Err(error) => {
            tracing::error!(%error, %listen, %admin_listen, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%listen, %admin_listen, "serving: API on http://{listen}/ (Swagger UI at /swagger-ui/), metrics on http://{admin_listen}/metrics");
    match app.serve(listener, admin_listener).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}
