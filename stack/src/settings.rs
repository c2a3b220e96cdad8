//! The variables the stack reads besides the core's: one list for `heart --help` and the README's
//! stack table (a test keeps them equal).

use heart_core::config::vars::Setting;

/// Every `HEART_*` variable only the stack reads, in the README's order.
pub const STACK_SETTINGS: &[Setting] = &[
    Setting {
        names: &["HEART_CORE_LISTEN_ADDR"],
        default: "`127.0.0.1:8081`",
        meaning: "the core behind the edge (stack only)",
    },
    Setting {
        names: &["HEART_EDGE_VAR_<NAME>"],
        default: "",
        meaning: "overrides an edge variable (`edge/README.md`), e.g. `HEART_EDGE_VAR_RATE_LIMIT_EDGE_REQUESTS_PER_IP=600/60s`",
    },
    Setting {
        names: &["HEART_EDGE_CACHE_DIR"],
        default: "`data/edge-cache`",
        meaning: "compiled component kept between starts (stack)",
    },
    Setting {
        names: &["HEART_EDGE_REQUEST_TIMEOUT_SECS", "HEART_EDGE_MAX_CONCURRENCY"],
        default: "`30`, `64`",
        meaning: "the edge host's time limit per request until its answer's head (uploads included), and after it per stall of a streamed answer; pooled instances",
    },
    Setting {
        names: &["HEART_EDGE_STREAM_TIMEOUT_SECS"],
        default: "`1800`",
        meaning: "how long a streamed answer (a data export) may go on through the edge while it moves, from the request's start; a stream that stands still for the request time limit is cut sooner",
    },
    Setting {
        names: &["HEART_EDGE_MAX_LONG_STREAMS"],
        default: "a quarter of `HEART_EDGE_MAX_CONCURRENCY`",
        meaning: "streamed answers that may run past the request time limit at once (each holds an instance); one that finds no slot ends at the limit",
    },
    Setting {
        names: &["HEART_EDGE_HEADER_TIMEOUT_SECS"],
        default: "`10`",
        meaning: "a client that has not sent its whole request head in this time (or an idle keep-alive connection) is disconnected",
    },
    Setting {
        names: &["HEART_EDGE_BODY_TIMEOUT_SECS"],
        default: "`10`",
        meaning: "a JSON body not received whole in this time answers `GLOBAL_004` and closes the connection; JSON bodies (≤ `HEART_MAX_JSON_BODY_BYTES`) are read before an instance is taken, so slow clients hold none",
    },
    Setting {
        names: &["HEART_EDGE_MAX_CONNECTIONS"],
        default: "`1024`",
        meaning: "open client connections at the edge; more wait in the listen backlog",
    },
    Setting {
        names: &["HEART_EDGE_PERMIT_WAIT_MS"],
        default: "`1000`",
        meaning: "how long a request waits for a free instance; then `503 GLOBAL_503` with `Retry-After: 1`",
    },
    Setting {
        names: &["HEART_EDGE_MAX_CONCURRENT_UPLOADS"],
        default: "half of `HEART_EDGE_MAX_CONCURRENCY`",
        meaning: "multipart uploads streaming through the edge at once (the rest of the instances stay free for the API)",
    },
    Setting {
        names: &["HEART_EDGE_COMPONENT"],
        default: "the component built with the host",
        meaning: "another compiled edge component (`.wasm`) to run",
    },
];
