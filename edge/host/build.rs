//! Builds the edge component (`heart-edge`, wasm32-wasip2) along with the host, so `cargo test` and
//! `cargo run` always serve the component of the same commit. The path of the `.wasm` reaches the
//! host as `HEART_EDGE_COMPONENT_WASM`.
//!
//! The nested cargo uses its own target directory (next to this build's, so it survives build-script
//! reruns), which keeps it clear of the outer cargo's build lock; it shares the outer jobserver, so
//! the machine is not oversubscribed. `HEART_EDGE_SKIP_COMPONENT_BUILD=1` skips it (then set
//! `HEART_EDGE_COMPONENT` at run time).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=HEART_EDGE_SKIP_COMPONENT_BUILD");
    if env::var_os("HEART_EDGE_SKIP_COMPONENT_BUILD").is_some_and(|v| v == "1") {
        return;
    }
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let edge_dir = manifest_dir.parent().unwrap_or(&manifest_dir).to_path_buf();
    // Relative to this package (edge/host), so cargo looks in the checkout being built: with
    // absolute paths, a second checkout of the repository (a git worktree) built into the same
    // target directory would be checked against the first one's files and keep its component.
    for watched in [
        "../component/src",
        "../component/Cargo.toml",
        "../../Cargo.toml",
        "../../Cargo.lock",
        "../../shared/src",
        "../../shared/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={watched}");
    }

    ensure_wasm_target();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    let target_dir = component_target_dir(&out_dir);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&edge_dir)
        .args([
            "build",
            "--package",
            "heart-edge",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "component",
            "--locked",
        ])
        .env("CARGO_TARGET_DIR", &target_dir);
    // What the outer build set for itself must not leak into the wasm build (clippy's wrapper,
    // host-only flags, the outer target).
    for var in [
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_LLVM_COV",
        "LLVM_PROFILE_FILE",
    ] {
        command.env_remove(var);
    }
    let status = command.status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("building the edge component failed ({status}); see the output above"),
        Err(e) => panic!("could not run cargo to build the edge component: {e}"),
    }
    let wasm = target_dir.join("wasm32-wasip2/component/heart_edge.wasm");
    assert!(
        wasm.exists(),
        "the component was not built at {}",
        wasm.display()
    );
    println!(
        "cargo:rustc-env=HEART_EDGE_COMPONENT_WASM={}",
        wasm.display()
    );
}

/// Adds the `wasm32-wasip2` target with rustup when the toolchain lacks it. `rust-toolchain.toml`
/// lists it, but rustup only installs listed targets with the toolchain itself, so a machine that
/// already had the toolchain would otherwise fail here on a fresh clone.
fn ensure_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = sysroot
        .as_deref()
        .is_some_and(|root| root.join("lib/rustlib/wasm32-wasip2").is_dir());
    if installed {
        return;
    }
    println!("cargo:warning=installing the wasm32-wasip2 target with rustup (rust-toolchain.toml lists it)");
    let added = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status();
    if !added.is_ok_and(|s| s.success()) {
        println!("cargo:warning=`rustup target add wasm32-wasip2` failed; the component build will say why");
    }
}

/// `<outer target dir>/heart-edge-component`: found from `OUT_DIR`
/// (`<target>[/<triple>]/<profile>/build/<package>-<hash>/out`).
fn component_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map_or_else(|| out_dir.join("component"), Path::to_path_buf)
        .join("heart-edge-component")
}
