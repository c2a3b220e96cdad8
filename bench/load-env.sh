# shellcheck shell=bash
# What every benchmark script sets for the servers it starts (sourced by bench/run.sh,
# bench/replicas.sh and bench/edge-ab.sh): the load comes from one address and one member, so the
# rate limits (the core's and the edge's) are out of its way; logs are JSON at `warn`; the
# compiled edge component is kept between starts.
export HEART_RATE_LIMITS_ENABLED=false
export HEART_LOG_FORMAT=json RUST_LOG=warn
export HEART_EDGE_VAR_RATE_LIMIT_EDGE_REQUESTS_PER_IP=100000000/60s
export HEART_EDGE_VAR_RATE_LIMIT_EDGE_REQUESTS_PER_MEMBER=100000000/60s
export HEART_EDGE_CACHE_DIR="${HEART_EDGE_CACHE_DIR:-/var/tmp/heart-edge-cache}"
