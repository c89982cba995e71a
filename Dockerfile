# session-gateway image. Node 24 runs src/*.ts directly (type stripping), so the image
# carries the source tree, not a dist/ build.
#
#   docker build -t session-gateway .                     # final stage: the gateway
#   docker build --target examples -t session-gateway-examples .   # the example Express backend
#
# No "# syntax=" line: it makes BuildKit pull a frontend image, which fails without a
# registry; every builder (BuildKit, the legacy one docker-compose 1.x uses) reads this file.
#
# Secrets (SESSION_SECRET, SIGNING_SECRET) are never baked in: pass them at run time, as
# variables or as files (SESSION_SECRET_FILE, ...). test/unit/deploy/container-files.test.ts
# checks this file; npm run test:containers builds it and inspects the images.

# Extra CA certificates for npm, for builds behind a TLS-inspecting proxy: build an image
# holding /npm-ca/ca.pem and pass --build-arg NPM_CA_FROM=<that image>. Only the dependency
# stages read it; the final stages copy node_modules from them, never the certificate.
ARG NPM_CA_FROM=no-npm-ca

# The Node major must match package.json "engines.node" (the test compares them).
FROM node:26-bookworm-slim AS base
WORKDIR /app

FROM base AS no-npm-ca
WORKDIR /npm-ca

FROM ${NPM_CA_FROM} AS npm-ca

# Production dependencies only. --omit=dev also leaves out the devDependency "node",
# whose preinstall downloads a second Node 24 binary; the base image already has Node.
# No production dependency has an install script, and --ignore-scripts keeps it so.
FROM base AS deps
COPY package.json package-lock.json ./
COPY packages/backend/package.json ./packages/backend/
COPY --from=npm-ca /npm-ca /tmp/npm-ca
RUN if [ -f /tmp/npm-ca/ca.pem ]; then export NODE_EXTRA_CA_CERTS=/tmp/npm-ca/ca.pem; fi \
    && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
    && npm cache clean --force && rm -rf /tmp/npm-ca

# The example Express backend's dependencies: the production ones plus express and the
# helper package (devDependencies of the gateway), at the lockfile's versions, nothing
# else. package.json is rewritten in this throwaway stage only, so that --omit=dev keeps them.
FROM base AS example-deps
COPY package.json package-lock.json ./
COPY packages/backend/package.json ./packages/backend/
COPY --from=npm-ca /npm-ca /tmp/npm-ca
RUN if [ -f /tmp/npm-ca/ca.pem ]; then export NODE_EXTRA_CA_CERTS=/tmp/npm-ca/ca.pem; fi \
    && node -e "const fs = require('fs'); const p = JSON.parse(fs.readFileSync('package.json')); for (const name of ['express', '@session-gateway/backend']) p.dependencies[name] = p.devDependencies[name]; delete p.devDependencies; fs.writeFileSync('package.json', JSON.stringify(p))" \
    && npm install --omit=dev --ignore-scripts --no-audit --no-fund \
    && npm cache clean --force && rm -rf /tmp/npm-ca

# The example Express backend (docker-compose.yml service app-express): express, the helper
# package and the example, not the gateway. The "development" condition resolves the
# helper package's exports to its src/*.ts.
FROM base AS examples
COPY --from=example-deps /app/node_modules ./node_modules
# docker-compose.yml mounts the generated secrets here (see the runtime stage).
RUN install -d -o node -g node -m 700 /run/session-gateway/secrets
COPY package.json ./
COPY packages/backend/package.json ./packages/backend/
COPY packages/backend/src ./packages/backend/src
COPY examples/express-app ./examples/express-app
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
# Where docker-compose.yml keeps the generated secrets: a new named volume takes this
# directory's owner and mode when first mounted, so only the runtime user can read them.
RUN install -d -o node -g node -m 700 /run/session-gateway/secrets
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
