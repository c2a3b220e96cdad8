//! A wasmtime host for the Heart to Heart edge component.
//!
//! Spin and SpinKube run the component in production; this host runs the same `.wasm` locally, in
//! the stack's one run command and in the tests: wasi:http served by hyper, the Spin interfaces
//! the component imports (`fermyon:spin/variables`, `fermyon:spin/redis`), outbound HTTP to the
//! core only, a per-request time limit, pooled instances and the compiled component cached on disk.
//!
//! - [`server`]: the HTTP server and the per-request instance.
//! - [`admin`]: `heart-edge-host`'s admin port, `GET /metrics`.
//! - [`spin`]: Spin's variables and Redis interfaces.
//! - [`store`]: what backs Redis connections: real Redis or an in-process [`store::EdgeStore`].
//! - [`compile`]: the engine and the compiled-component cache.
//! - [`body`]: per-route body limits, JSON bodies read before an instance, upload deadlines.
//! - `deadline`: the request time limit until the answer's head, then while a streamed body moves.
//! - `outbound`: the pooled keep-alive client to the core (the only origin allowed).
//! - [`telemetry`]: request ids, the JSON access line, `heart_edge_*` metrics.
//! - [`threads`]: `heart-edge-host` serves on one thread per core, each with its own runtime.

pub mod admin;
pub mod body;
pub mod compile;
pub(crate) mod deadline;
pub(crate) mod outbound;
pub mod server;
pub mod spin;
pub mod store;
pub mod telemetry;
pub mod threads;

pub use server::{EdgeHost, HostConfig, WallClock};

/// The component `build.rs` built for `wasm32-wasip2` along with this host, if it did.
pub const BUILT_COMPONENT: Option<&str> = option_env!("HEART_EDGE_COMPONENT_WASM");
