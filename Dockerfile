# syntax=docker/dockerfile:1
#
# session-gateway image. Node 24 runs src/*.ts directly (type stripping), so the image
# carries the source tree, not a dist/ build.
#
#   docker build -t session-gateway .                     # final stage: the gateway
#   docker build --target examples -t sgw-examples .      # the example Express backend
#
# Secrets (SESSION_SECRET, SIGNING_SECRET) are never baked in: pass them at run time
# with -e or an env file. test/unit/deploy/container-files.test.ts checks this file.

# The Node major must match package.json "engines.node" (the test compares them).
FROM node:24-bookworm-slim AS base
WORKDIR /app

# Production dependencies only. --omit=dev also leaves out the devDependency "node",
# whose preinstall downloads a second Node 24 binary; the base image already has Node.
# No production dependency has an install script, and --ignore-scripts keeps it so.
FROM base AS deps
COPY package.json package-lock.json ./
COPY packages/backend/package.json ./packages/backend/
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# All dependencies, for the example backends (express, express-session). Never copied
# into the final stage. --ignore-scripts skips the "node" devDependency's download: it
# then installs no binary, and `node` stays the image's own.
FROM base AS dev-deps
COPY package.json package-lock.json ./
COPY packages/backend/package.json ./packages/backend/
RUN npm ci --ignore-scripts \
    && npm cache clean --force

# The example Express backend (docker-compose.yml service app-express). The
# "development" condition resolves the package's own exports to src/*.ts.
FROM base AS examples
COPY --from=dev-deps /app/node_modules ./node_modules
COPY package.json ./
COPY packages/backend/package.json ./packages/backend/
COPY packages/backend/src ./packages/backend/src
COPY src ./src
COPY examples ./examples
USER node
EXPOSE 3001
CMD ["node", "--conditions=development", "examples/express-app/server.ts"]

# The gateway (default target, so it stays the last stage). Files are owned by root and
# only readable by the runtime user, which therefore cannot rewrite the code it runs.
FROM base AS runtime
# config/gateway.yaml listens on ${LISTEN_HOST:-127.0.0.1}; in a container that would be
# unreachable from outside it.
# NODE_OPTIONS: the gateway's V8 flags (src/node-flags.ts says why).
ENV NODE_ENV=production LISTEN_HOST=0.0.0.0 NODE_OPTIONS=--max-semi-space-size=8
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
# The protocol code (package.json "imports": #protocol) lives in the workspace package.
COPY packages/backend/package.json ./packages/backend/
COPY packages/backend/src ./packages/backend/src
COPY src ./src
# The default config; mount another file over it, or pass --config with another path.
COPY config/gateway.yaml /etc/session-gateway/gateway.yaml
USER node
EXPOSE 8080
# node:*-slim has no curl or wget; Node's own fetch does the probe.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:8080/_gateway/healthz', { signal: AbortSignal.timeout(2500) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "src/main.ts", "--config", "/etc/session-gateway/gateway.yaml"]
