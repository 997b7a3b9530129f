# pollpush in a container: built with cargo alone (rustls, a bundled font, no system
# libraries), run as a non-root user from a small Debian image.
#
#   docker build -t pollpush .
#   docker run --rm pollpush --help
#
# The image holds only the binary and the scenarios: Postgres and Redis come from their own
# images (docker-compose.yml, deploy/k8s/), so `pollpush run` with its ephemeral services
# is not what this image is for; `serve`, `swarm` and `merge` are.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin pollpush \
    && cp target/release/pollpush /pollpush \
    && strip /pollpush

FROM debian:bookworm-slim AS runtime
# /results belongs to the user, so a named volume mounted there starts writable by it.
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin pollpush \
    && mkdir /results \
    && chown pollpush:pollpush /results
COPY --from=build /pollpush /usr/local/bin/pollpush
COPY scenarios /scenarios
USER 10001:10001
WORKDIR /results
EXPOSE 8080 8081 8082
ENTRYPOINT ["/usr/local/bin/pollpush"]
CMD ["--help"]
