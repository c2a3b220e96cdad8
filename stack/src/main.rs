//! `heart`: the local stack — the edge on `HEART_LISTEN_ADDR` (default `127.0.0.1:8080`) in front
//! of the core on `HEART_CORE_LISTEN_ADDR` (default `127.0.0.1:8081`), on the backends the
//! `HEART_*` settings name (embedded defaults when none are set).

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};
use heart_core::cli::variables_help;
use heart_core::clock::Clock;
use heart_core::config::vars;
use heart_core::Config;
use heart_stack::settings::STACK_SETTINGS;
use heart_stack::{Stack, StackOptions};

/// The whole Heart to Heart stack in one process: the edge (the Spin component on our wasmtime
/// host) on the public port in front of the core. Configured by `HEART_*` environment variables
/// (and a `.env` file in the working directory, if present).
#[derive(Debug, Parser)]
#[command(name = "heart", version, about)]
struct Cli {}

#[tokio::main]
async fn main() -> ExitCode {
    let help = format!(
        "{}\n{}",
        variables_help("The stack's own variables", STACK_SETTINGS),
        variables_help("The core's variables", vars::SETTINGS)
    );
    let matches = Cli::command().after_long_help(help).get_matches();
    if let Err(error) = Cli::from_arg_matches(&matches) {
        error.exit();
    }
    if let Err(error) = heart_core::cli::load_dotenv() {
        eprintln!("heart: {error}");
        return ExitCode::from(2);
    }
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
