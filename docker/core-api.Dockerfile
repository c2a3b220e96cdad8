# syntax=docker/dockerfile:1.7
# The core API image. Build from the repository root:
#   docker build -f docker/core-api.Dockerfile -t heart-core:dev .
#
# Stages: chef (toolchain + cargo-chef) → planner (dependency recipe) → builder (dependencies
# cooked in their own layer, so a source change rebuilds only our crates) → runtime (distroless).
# The runtime stage has no shell and no package manager; it runs as uid 65532 and writes nothing
# on the real backends, so it works with a read-only root filesystem. HEART_PROFILE and every
# other setting come from the Helm chart, never from the image.

ARG RUST_VERSION=1.95.0
ARG CARGO_CHEF_VERSION=0.1.78

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
ARG CARGO_CHEF_VERSION
WORKDIR /build
# rust-toolchain.toml pins the toolchain and its components; installing it here caches it as a layer.
COPY rust-toolchain.toml ./
RUN rustup show active-toolchain \
    && cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /build/recipe.json recipe.json
RUN cargo chef cook --release --locked -p heart-core --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked -p heart-core \
    && install -D -m 0555 target/release/heart-core /out/heart-core

# glibc + libgcc + CA certificates and nothing else; the "nonroot" variant runs as 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="heart-core" \
      org.opencontainers.image.description="Heart to Heart core API" \
      org.opencontainers.image.licenses="MIT"
COPY --from=builder /out/heart-core /usr/local/bin/heart-core
# Listen on all interfaces inside the container (the core's defaults are loopback for local runs).
# glibc: allocations of 4 MiB and more are always their own mapping, so the password hashing
# threads' 19 MiB of Argon2 memory goes back to the system when they idle (without it, glibc's
# dynamic threshold keeps it in the heap after the first time: BENCHMARKS.md, login storm memory).
ENV HEART_LISTEN_ADDR=0.0.0.0:8080 \
    HEART_ADMIN_LISTEN_ADDR=0.0.0.0:9090 \
    HEART_LOG_FORMAT=json \
    MALLOC_MMAP_THRESHOLD_=4194304
WORKDIR /var/lib/heart
USER 65532:65532
# 8080: the public API; 9090: the admin port (/metrics).
EXPOSE 8080 9090
# Liveness is the orchestrator's job (Kubernetes probes /healthz and /readyz): the image has no
# shell or HTTP client to run a HEALTHCHECK with.
# checkov:skip=CKV_DOCKER_2:no shell or HTTP client in distroless; Kubernetes probes /healthz and /readyz
ENTRYPOINT ["/usr/local/bin/heart-core"]
