# One image for the API and the workers of MiniGLM Foundry (docker-compose.yml runs both).
# Everything is installed at build time: nothing downloads when a container starts.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    PRISMA_HIDE_UPDATE_MESSAGE=1

# Dependencies first, so a source change does not reinstall them.
COPY package.json package-lock.json ./
COPY packages/data/package.json packages/data/
COPY packages/model/package.json packages/model/
COPY packages/core/package.json packages/core/
COPY apps/api/package.json apps/api/
COPY apps/worker/package.json apps/worker/
COPY apps/web/package.json apps/web/
COPY apps/cli/package.json apps/cli/
RUN npm ci --no-audit --no-fund --include=dev

COPY . .
# Generates the Prisma client offline (WebAssembly query compiler, no engine download).
RUN node scripts/ensure-deps.mjs

# The API and workers run as the image's unprivileged "node" user (uid 1000), never root: a
# hole in a parser or in TensorFlow.js then gets no more than this user. The code stays
# root's and read-only to it; only the cache folder is its own (made before VOLUME, so a new
# volume starts with this owner).
RUN mkdir -p /app/.miniglm && chown node:node /app/.miniglm
USER node
# Worker cache (datasets, checkpoints) and the embedded database when DATABASE_URL is unset.
VOLUME ["/app/.miniglm"]
ENTRYPOINT ["node", "apps/cli/bin/miniglm.js"]
CMD ["--help"]
