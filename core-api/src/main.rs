//! `heart-core`: the core API's command line (`heart-core --help`).

use std::process::ExitCode;

use heart_core::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse_args();
    if let Err(error) = cli::load_dotenv() {
        eprintln!("heart-core: {error}");
        return ExitCode::from(2);
    }
    cli::run(cli.command).await
}
