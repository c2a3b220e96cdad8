//! `heart`: the local stack — the edge on `HEART_LISTEN_ADDR` (default `127.0.0.1:8080`) in front
//! of the core on `HEART_CORE_LISTEN_ADDR` (default `127.0.0.1:8081`), on the backends the
//! `HEART_*` settings name (embedded defaults when none are set).

use std::process::ExitCode;

use heart_core::clock::Clock;
use heart_core::Config;
use heart_stack::{Stack, StackOptions};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("heart: {error}");
            return ExitCode::from(2);
        }
    };
    heart_core::telemetry::init_logging(config.log_format);
    let options = match StackOptions::from_env(&config) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("heart: {error:#}");
            return ExitCode::from(2);
        }
    };
    let stack = match Stack::build(config, Clock::system(), options).await {
        Ok(stack) => stack,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "startup failed");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        edge = %stack.public_addr,
        core = %stack.core_addr,
        admin = %stack.admin_addr,
        "serving: the app's API on http://{} (edge → core at http://{}), Swagger UI at /swagger-ui/, metrics on http://{}/metrics",
        stack.public_addr,
        stack.core_addr,
        stack.admin_addr,
    );
    match stack.serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "server failed");
            ExitCode::FAILURE
        }
    }
}
