# ami-transfer as a container: `docker build -t ami-transfer .`, then run it with the environment of README.md's
# Configuration and Deployment sections. Node 24 comes from the base image (not the npm `node` package).
#
# Stopping: SIGTERM starts a graceful shutdown that lets running transfers go on for SHUTDOWN_GRACE_SECONDS (30)
# before it cuts them, so give the container longer than that before it is killed:
#   docker run --stop-timeout 45 …   ·   compose: stop_grace_period: 45s   ·   Kubernetes: terminationGracePeriodSeconds: 45
# (Docker's default is 10 s, which would cut every transfer still running.)

# --- build: the TypeScript compiler and the other dev dependencies, then dist/ ---
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: the only one is the npm `node` package's, which would fetch a second Node the image has already.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- production dependencies only ---
FROM node:24-slim AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# --- the image that runs ---
FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=dependencies /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY views ./views
COPY public ./public
# The base image's unprivileged user; the service writes nothing to disk.
USER node
EXPOSE 3000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["node", "dist/healthcheck.js"]
# As the Procfile and `npm start` run it (docs/decisions/0006-young-generation.md).
CMD ["node", "--max-semi-space-size=2", "dist/server.js"]
