//! The `heart-core` command line: serve (the default), check the configuration, apply migrations,
//! grant or revoke the moderator role. Every `HEART_*` variable is listed in `--help`.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::clock::Clock;
use crate::config::{vars, Config};
use crate::db::Db;
use crate::member::repo as members;
use crate::App;

/// The core API of Heart to Heart. Configured by `HEART_*` environment variables (and a `.env`
/// file in the working directory, if present).
#[derive(Debug, Parser)]
#[command(name = "heart-core", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do; without a command the server runs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API and the admin port until SIGTERM (the default).
    Serve,
    /// Print the effective settings (no secrets) and warnings; exit 2 on a bad setting.
    CheckConfig,
    /// Apply the database migrations and exit (a Helm pre-upgrade hook runs this).
    Migrate,
    /// Manage moderators.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
}

/// Moderator role changes.
#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Give the member with this email the ADMIN role.
    Grant { email: String },
    /// Take the ADMIN role from the member with this email.
    Revoke { email: String },
}

/// The `--help` text after the commands: every variable, from the list the README shows.
pub fn variables_help(title: &str, settings: &[vars::Setting]) -> String {
    format!("{title}:\n{}", vars::plain_text(settings))
}

impl Cli {
    /// Parses the process arguments; `--help` and `--version` print and exit here.
    pub fn parse_args() -> Cli {
        let command =
            Cli::command().after_long_help(variables_help("Environment variables", vars::SETTINGS));
        let matches = command.get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
    }
}

/// Reads `.env` from the working directory into the environment, if there is one (variables
/// already set win). Returns the file's path when one was read.
pub fn load_dotenv() -> Result<Option<std::path::PathBuf>, String> {
    match dotenvy::dotenv() {
        Ok(path) => Ok(Some(path)),
        Err(error) if error.not_found() => Ok(None),
        Err(error) => Err(format!(".env: {error}")),
    }
}

/// Runs `command` (serve when `None`).
pub async fn run(command: Option<Command>) -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("heart-core: {error}");
            return ExitCode::from(2);
        }
    };
    match command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::CheckConfig => {
            print!("{}", config.describe());
            for setting in config.development_settings() {
                println!("warning: using {setting}");
            }
            ExitCode::SUCCESS
        }
        Command::Migrate => match Db::connect(&config).await {
            Ok(db) => {
                println!("migrations applied ({})", db.kind.name());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("heart-core migrate: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Admin { action } => {
            let (email, role) = match &action {
                AdminAction::Grant { email } => (email, "ADMIN"),
                AdminAction::Revoke { email } => (email, "MEMBER"),
            };
            let result = match Db::connect(&config).await {
                Ok(db) => members::set_role(&db, email.trim(), role).await,
                Err(error) => Err(error),
            };
            match result {
                Ok(true) => {
                    println!("{email}: role {role}");
                    ExitCode::SUCCESS
                }
                Ok(false) => {
                    eprintln!("heart-core admin: no member with email {email}");
                    ExitCode::FAILURE
                }
                Err(error) => {
                    eprintln!("heart-core admin: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    crate::telemetry::init_logging(config.log_format);
    let (listen, admin_listen) = (config.listen_addr, config.admin_listen_addr);
    let app = match App::build(config, Clock::system()).await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(error = %crate::error::cause_chain(&error), "startup failed");
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
