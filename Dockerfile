# WatchTower gateway image.
#   docker build -t watchtower:local .
# Stage 1 compiles TypeScript, the native addons (better-sqlite3, odbc) and the SQLite interrupt
# extension (native/, built by the postinstall script) with the dev
# dependencies; stage 2 holds only the production dependencies, the compiled code and the
# runtime libraries (unixODBC and the MariaDB ODBC driver "MariaDB Unicode").
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ unixodbc-dev \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY native/sqlite-interrupt.c ./native/
COPY scripts/build-sqlite-interrupt.mjs ./scripts/
# npm ci also runs the package's "prepare" script, which compiles TypeScript into dist/.
RUN npm ci --no-audit --no-fund \
 && test -f dist/main.js \
 && test -f native/build/sqlite-interrupt.so \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends unixodbc odbcinst odbc-mariadb tini \
 && rm -rf /var/lib/apt/lists/* \
 && odbcinst -q -d | grep -q 'MariaDB Unicode'
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000
WORKDIR /opt/watchtower
COPY --from=build --chown=root:root /src/node_modules ./node_modules
COPY --from=build --chown=root:root /src/dist ./dist
COPY --from=build --chown=root:root /src/native/build ./native/build
COPY --chown=root:root package.json ./
COPY --chown=root:root config ./config
COPY --chown=root:root scripts ./scripts
# data/ holds the SQLite sample database; it is the only place the process writes to.
RUN mkdir -p data && chown node:node data
USER node
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/health/live', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# tini forwards signals (SIGTERM, SIGUSR1, SIGHUP) to node and reaps worker processes.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--max-semi-space-size=2", "--heap-growing-percent=50", "dist/main.js"]
