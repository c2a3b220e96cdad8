//! Test fixtures shared by the workspace's test suites (`core-api/tests`, `stack/tests`,
//! `edge/host/tests`) and by `heart-s3` in `bench/`. Dev-only: `publish = false`, and no crate
//! depends on it outside `[dev-dependencies]` except the bench tools.
//!
//! It knows nothing of the core's internals: it makes inputs (images, multipart bodies), runs
//! backends (an S3-compatible server, per-test MySQL databases) and reads outputs (mail).
//!
//! - [`fixtures`]: PNG/JPEG images (with GPS EXIF) and multipart bodies as the Android app sends them;
//! - [`log`]: a log writer that keeps the lines, for tests that read them back;
//! - [`s3`]: a real S3-compatible server (s3s-fs) with fault injection, and the service `heart-s3` runs;
//! - [`mail`]: the verification mails from an outbox folder or an SMTP sink's Maildir;
//! - [`mysql`]: a database per test on `HEART_TEST_DATABASE_URL`;
//! - [`fault_proxy`]: a TCP proxy in front of a real backend that a test cuts, slows, stalls or makes
//!   lose or reset packets (the core's and the edge host's fault tests);
//! - [`round_robin`]: a round-robin TCP proxy, the load balancer in front of replicas (the replica tests).

// Fixtures fail the test that uses them: panicking with a message is their error handling.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod fault_proxy;
pub mod fixtures;
pub mod log;
pub mod mail;
pub mod mysql;
pub mod round_robin;
pub mod s3;
