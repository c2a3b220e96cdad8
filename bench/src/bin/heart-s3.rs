//! `heart-s3`: a small S3-compatible server for local runs and the fault script — `s3s-fs` serving a
//! folder, path-style, checking SigV4 signatures against one key pair (the same server the core's
//! tests start in-process: `heart_testkit::s3`).
//!
//! ```sh
//! heart-s3 --listen 127.0.0.1:9000 --root /tmp/heart-s3 --bucket heart-media \
//!          --access-key HEARTLOCALKEY --secret-key heart-local-secret-key
//! # then the core/stack with:
//! HEART_S3_BUCKET=heart-media HEART_S3_ENDPOINT=http://127.0.0.1:9000 HEART_S3_FORCE_PATH_STYLE=true \
//! HEART_S3_ACCESS_KEY_ID=HEARTLOCALKEY HEART_S3_SECRET_ACCESS_KEY=heart-local-secret-key …
//! ```
//!
//! Objects are files under `<root>/<bucket>/`; the bucket folder is created at start. Runs until
//! killed (SIGTERM/SIGINT).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use hyper::body::Incoming;
use hyper::Request;

#[derive(Debug)]
struct Options {
    listen: SocketAddr,
    root: PathBuf,
    bucket: String,
    access_key: String,
    secret_key: String,
}

const HELP: &str = "heart-s3: an S3-compatible server (s3s-fs) on a folder

usage: heart-s3 [--listen 127.0.0.1:9000] [--root DIR] [--bucket heart-media]
                [--access-key KEY] [--secret-key SECRET]
defaults for the keys: $HEART_S3_ACCESS_KEY_ID / $HEART_S3_SECRET_ACCESS_KEY, else HEARTLOCALKEY / heart-local-secret-key";

fn parse_args() -> Result<Options, String> {
    let env = |name: &str, default: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_owned())
    };
    let mut options = Options {
        listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
        root: std::env::temp_dir().join("heart-s3"),
        bucket: env("HEART_S3_BUCKET", "heart-media"),
        access_key: env("HEART_S3_ACCESS_KEY_ID", "HEARTLOCALKEY"),
        secret_key: env("HEART_S3_SECRET_ACCESS_KEY", "heart-local-secret-key"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Err(HELP.into()),
            "--listen" => {
                let v = value()?;
                options.listen = v.parse().map_err(|_| format!("--listen {v}: host:port"))?;
            }
            "--root" => options.root = PathBuf::from(value()?),
            "--bucket" => options.bucket = value()?,
            "--access-key" => options.access_key = value()?,
            "--secret-key" => options.secret_key = value()?,
            other => return Err(format!("unknown flag {other}\n\n{HELP}")),
        }
    }
    Ok(options)
}

async fn serve(options: Options) -> Result<(), String> {
    std::fs::create_dir_all(options.root.join(&options.bucket))
        .map_err(|e| format!("{}: {e}", options.root.display()))?;
    let s3 = heart_testkit::s3::service(&options.root, &options.access_key, &options.secret_key)?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| format!("binding {}: {e}", options.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!(
        "heart-s3: http://{address} bucket {} in {}",
        options.bucket,
        options.root.display()
    );
    let accept = heart_testkit::s3::serve(listener, move |request: Request<Incoming>| {
        let s3 = s3.clone();
        async move { s3.call(request.map(s3s::Body::from)).await }
    });
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        () = accept => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = terminate.recv() => Ok(()),
    }
}

fn main() -> ExitCode {
    let options = heart_bench::args_or_exit(parse_args());
    let result = tokio::runtime::Runtime::new()
        .map_err(|e| e.to_string())
        .and_then(|runtime| runtime.block_on(serve(options)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("heart-s3: {message}");
            ExitCode::FAILURE
        }
    }
}
