# FlowGuard in one image: the gateway (the default command), flowguard-backend and
# flowguard-loadgen, all in /usr/local/bin. docker-compose.yml runs the whole stack from it;
# see "Docker" in README.md.
#
#   docker build -t flowguard:local .
#   docker run --rm -p 8000:8000 flowguard:local
#
# The image's config is the repo's flowguard.yaml, driven by FLOWGUARD_* environment variables.

# ---- build ------------------------------------------------------------------------------
FROM debian:bookworm-slim AS build

WORKDIR /src
# The build packages are listed once, in scripts/lib.sh (scripts/demo and scripts/test use
# the same list). Copying only that file first keeps this slow layer cached until it changes.
COPY scripts/lib.sh scripts/lib.sh
RUN bash -euc 'source scripts/lib.sh && install_packages "${BUILD_PACKAGES[@]}"' \
    && rm -rf /var/lib/apt/lists/*

COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
    && cmake --build build -j"$(nproc)" --target flowguard flowguard-backend flowguard-loadgen

# ---- runtime ----------------------------------------------------------------------------
FROM debian:bookworm-slim

# The runtime halves of the -dev packages (what `ldd` of the three binaries resolves to;
# libpqxx-6.4 brings libpq5), and curl for the HEALTHCHECK.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       libuv1 libyaml-cpp0.7 libfmt9 libssl3 libhiredis0.14 libsqlite3-0 libpqxx-6.4 libstdc++6 \
       curl \
    && rm -rf /var/lib/apt/lists/*

# An unprivileged user; its working directory holds the SQLite file of the default
# storage url (sqlite://./flowguard.db). Mount a volume there to keep keys and logs.
RUN useradd --system --user-group --home-dir /var/lib/flowguard --no-create-home \
       --shell /usr/sbin/nologin flowguard \
    && install -d -o flowguard -g flowguard -m 0750 /var/lib/flowguard

COPY --from=build /src/build/gateway/flowguard /src/build/backend/flowguard-backend \
     /src/build/loadgen/flowguard-loadgen /usr/local/bin/
COPY flowguard.yaml /etc/flowguard/flowguard.yaml

USER flowguard
WORKDIR /var/lib/flowguard
# The gateway's state directory (flowguard.yaml's state_dir): where it keeps the admin token
# it generates when the admin listener is reachable from outside and no token is set.
ENV FLOWGUARD_STATE_DIR=/var/lib/flowguard
# 8000: the public listener. 9901: the admin listener, which stays on the container's
# loopback unless FLOWGUARD_ADMIN_ADDRESS is set (e.g. 0.0.0.0:9901). Off loopback it needs
# a token: FLOWGUARD_ADMIN_TOKEN, or one generated at the first start into
# /var/lib/flowguard/admin-token (the log prints the dashboard URL with it).
EXPOSE 8000 9901

# Ready = the admin listener's /ready answers 200 (503 while draining). The port follows
# FLOWGUARD_ADMIN_ADDRESS; the bearer token is sent when there is one (set, or generated).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD a="${FLOWGUARD_ADMIN_ADDRESS:-127.0.0.1:9901}"; \
      t="${FLOWGUARD_ADMIN_TOKEN:-$(cat "$FLOWGUARD_STATE_DIR/admin-token" 2>/dev/null)}"; \
      curl -fsS -o /dev/null ${t:+-H "Authorization: Bearer $t"} \
        "http://127.0.0.1:${a##*:}/ready" || exit 1

# SIGTERM (docker stop) drains: in-flight requests finish for up to drain_timeout (15s), so
# give the container more than docker's default 10s (docker-compose.yml does).
CMD ["flowguard", "-c", "/etc/flowguard/flowguard.yaml"]
