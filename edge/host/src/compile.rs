//! The wasmtime engine (pooling allocator, epoch interruption) and the component compiled once,
//! cached on disk between starts.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Largest linear memory of one instance: the edge buffers request bodies of up to 128 MiB.
const MAX_MEMORY_BYTES: usize = 512 << 20;

/// Bytes of each pooled linear memory kept resident between instances (about what one request
/// touches: the component's data, stack and a request's heap).
const KEEP_RESIDENT_BYTES: usize = 2 << 20;

/// The engine the host runs components on: instances come from a pool sized for
/// `max_concurrent_requests`, and guests can be interrupted by epoch (the per-request time limit).
pub fn engine(max_concurrent_requests: u32) -> anyhow::Result<Engine> {
    let keep_resident = std::env::var("HEART_EDGE_KEEP_RESIDENT_KIB")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(KEEP_RESIDENT_BYTES, |kib| kib << 10);
    let mut pool = PoolingAllocationConfig::default();
    let n = max_concurrent_requests.max(1);
    pool.total_component_instances(n)
        // wit-bindgen components are one core module plus a few adapter shims.
        .total_core_instances(n * 8)
        .total_memories(n * 2)
        .total_tables(n * 4)
        .total_stacks(n)
        .max_memory_size(MAX_MEMORY_BYTES)
        // A fresh instance per request: reset the first pages of a reused slot with memset rather
        // than `madvise`, so the next instance does not page-fault its heap back in.
        .linear_memory_keep_resident(keep_resident)
        // Linux 6.7+: find the pages an instance actually touched (PAGEMAP_SCAN) and reset only
        // those, instead of `memset`ting the whole resident prefix (a fifth of a cached page's
        // CPU when measured). Older kernels fall back to the prefix.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .table_keep_resident(64 << 10);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // `HEART_EDGE_PERF_MAP=1`: name the component's compiled functions in /tmp/perf-<pid>.map, so
    // `perf record`/`perf report` show where the guest spends its time (bench/profile-edge.sh).
    if std::env::var_os("HEART_EDGE_PERF_MAP").is_some_and(|v| v == "1") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config).map_err(|e| anyhow::anyhow!("wasmtime engine: {e}"))
}

/// The file a compiled `wasm` is cached in under `dir`: named by a hash of the wasm and of
/// everything in the engine that affects compiled code, so a new component or a new wasmtime
/// never loads a stale file.
pub fn cache_file(engine: &Engine, wasm: &[u8], dir: &Path) -> PathBuf {
    let mut engine_hasher = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hasher);
    let mut digest = Sha256::new();
    digest.update(wasm);
    digest.update(engine_hasher.finish().to_le_bytes());
    let name: String = digest
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    dir.join(format!("heart-edge-{name}.cwasm"))
}

/// Loads the component at `path`, from the compiled cache in `cache_dir` when it is there, else
/// compiling it (seconds) and writing the cache.
pub fn load_component(
    engine: &Engine,
    path: &Path,
    cache_dir: Option<&Path>,
) -> anyhow::Result<Component> {
    let wasm = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let Some(dir) = cache_dir else {
        return compile(engine, &wasm);
    };
    let cached = cache_file(engine, &wasm, dir);
    if cached.exists() {
        match deserialize(engine, &cached) {
            Ok(component) => {
                tracing::info!(file = %cached.display(), "compiled component loaded from the cache");
                return Ok(component);
            }
            Err(e) => tracing::warn!(error = %e, "ignoring an unusable compiled component"),
        }
    }
    let component = compile(engine, &wasm)?;
    if let Err(e) = write_cache(&component, dir, &cached) {
        tracing::warn!(error = %e, "could not cache the compiled component");
    }
    Ok(component)
}

fn compile(engine: &Engine, wasm: &[u8]) -> anyhow::Result<Component> {
    let started = std::time::Instant::now();
    let component = Component::new(engine, wasm)
        .map_err(|e| anyhow::anyhow!("compiling the component: {e:?}"))?;
    tracing::info!(
        millis = started.elapsed().as_millis() as u64,
        "component compiled"
    );
    Ok(component)
}

fn write_cache(component: &Component, dir: &Path, file: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = component
        .serialize()
        .map_err(|e| anyhow::anyhow!("serialising: {e}"))?;
    // Write then rename, so a concurrent start never reads half a file.
    let partial = file.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, file)?;
    Ok(())
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, file: &Path) -> anyhow::Result<Component> {
    // SAFETY: wasmtime requires the file to be its own trusted output. This one was written by
    // `write_cache` with `Component::serialize` into the host's cache directory, under a name that
    // includes the engine's compatibility hash; wasmtime still checks its header and version.
    unsafe { Component::deserialize_file(engine, file) }
        .map_err(|e| anyhow::anyhow!("loading {}: {e}", file.display()))
}
