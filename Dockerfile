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

# Worker cache (datasets, checkpoints) and the embedded database when DATABASE_URL is unset.
VOLUME ["/app/.miniglm"]
ENTRYPOINT ["node", "apps/cli/bin/miniglm.js"]
CMD ["--help"]
