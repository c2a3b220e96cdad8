//! `heart-rr`: a round-robin TCP balancer for trying replicas on one machine (`bench/replicas.sh`).
//! Each new connection goes to the next backend in turn, as an L4 load balancer does; a client that
//! keeps its connection alive stays on one backend (heart-load's virtual users each keep one).
//!
//! ```sh
//! heart-rr --listen 127.0.0.1:8080 --backend 127.0.0.1:8181 --backend 127.0.0.1:8182
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;

use heart_testkit::round_robin::RoundRobin;

const USAGE: &str =
    "usage: heart-rr --listen HOST:PORT --backend HOST:PORT [--backend HOST:PORT ...]";

fn parse_args() -> Result<(SocketAddr, Vec<SocketAddr>), String> {
    let mut listen = None;
    let mut backends = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<SocketAddr, String> {
            let text = args.next().ok_or(format!("{name} needs HOST:PORT"))?;
            text.parse().map_err(|e| format!("{name} {text}: {e}"))
        };
        match arg.as_str() {
            "--listen" => listen = Some(value("--listen")?),
            "--backend" => backends.push(value("--backend")?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let listen = listen.ok_or(format!("--listen is required\n{USAGE}"))?;
    if backends.is_empty() {
        return Err(format!("at least one --backend is required\n{USAGE}"));
    }
    Ok((listen, backends))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (listen, backends) = heart_bench::args_or_exit(parse_args());
    let proxy = match RoundRobin::start_on(listen, backends.clone()).await {
        Ok(proxy) => proxy,
        Err(error) => {
            eprintln!("heart-rr: binding {listen}: {error}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("heart-rr: {} → {backends:?}", proxy.addr);
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
    eprintln!("heart-rr: connections per backend {:?}", proxy.served());
    ExitCode::SUCCESS
}
