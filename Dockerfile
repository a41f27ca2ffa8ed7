# syntax=docker/dockerfile:1
#
# highproxy container image: a build stage (dev dependencies, TypeScript compile) and a
# small runtime stage holding only what `node dist/cli.js` needs, run as a non-root user.
#
#   docker build -t highproxy .
#   docker run --rm -p 8080:8080 -e HIGHPROXY_ORIGIN=http://origin.internal:3000 highproxy
#   docker run --rm -p 8080:8080 -v "$PWD/my.yaml:/etc/highproxy/config.yaml:ro" \
#     highproxy --config /etc/highproxy/config.yaml
#
# With neither an origin nor a config file the image runs the demo (built-in origin and
# fault lab). See docs/deploying.md for configuration, probes, shutdown and reload.

# Node 24: the LTS line CI tests (README, Requirements); Node 20 is end-of-life.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: install everything, compile src/ to dist/, then drop dev dependencies ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# No dependency has an install script; --ignore-scripts also skips `prepare` (the build)
# so that this layer depends on the lockfile alone and is reused while only src/ changes.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: node, the compiled proxy, production dependencies; nothing else ----
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV NODE_ENV=production HIGHPROXY_HOST=0.0.0.0 HIGHPROXY_LOG_FORMAT=json
# Owned by root and not writable by the user the proxy runs as.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY templates ./templates
COPY config.example.yaml ./config.example.yaml
COPY docker/healthcheck.mjs ./docker/healthcheck.mjs
# Mount a config file here and pass --config /etc/highproxy/config.yaml (or set
# HIGHPROXY_CONFIG=/etc/highproxy/config.yaml). The directory is empty in the image.
RUN mkdir -p /etc/highproxy
# The official image's "node" user, by number so that Kubernetes' runAsNonRoot can check it.
USER 1000:1000
# 8080: proxied traffic (listen.port). 9090: admin (/healthz /readyz /metrics /rays/<id>).
# 8474: `highproxy toxiproxy --host 0.0.0.0` (Toxiproxy's API; run it with --no-healthcheck).
EXPOSE 8080 9090 8474
# GET /healthz on the admin port (HIGHPROXY_ADMIN_PORT, default 9090) with node itself:
# the image has no curl or wget. A proxy run with admin.enabled: false has no /healthz:
# run it with --no-healthcheck.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "docker/healthcheck.mjs"]
# Exec form: node is PID 1 and receives SIGTERM (graceful drain) and SIGHUP (reload)
# itself. Flags go after the image name: `docker run highproxy --workers 2`.
ENTRYPOINT ["node", "--max-semi-space-size=32", "dist/cli.js"]
CMD []
