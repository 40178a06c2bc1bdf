# The probe image: the kfconform binary, statically linked, on a small base with /bin/sh,
# running as a non-root user. It is the only image a run needs, so it is the only one to
# mirror for an air-gapped cluster (see README.md "Probe image").
#
#   docker build -t ghcr.io/kfconform/kfconform:$(cargo pkgid | cut -d'#' -f2) .

# Build stage: musl gives a static binary (rustls + ring, no OpenSSL to link).
FROM docker.io/library/rust:1.95-alpine3.22 AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY crates crates
COPY suites suites
COPY fixtures fixtures
COPY reports reports
RUN cargo build --release --locked --bin kfconform \
 && strip target/release/kfconform \
 && ./target/release/kfconform --version

# Run stage: busybox for /bin/sh (debugging a probe pod with kubectl exec), nothing else.
FROM docker.io/library/busybox:1.37-musl
COPY --from=build /src/target/release/kfconform /usr/local/bin/kfconform
# 65532 is the conventional "nonroot" uid; numeric so runAsNonRoot can be verified by the kubelet.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kfconform"]
CMD ["--help"]
