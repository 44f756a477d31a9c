# syntax=docker/dockerfile:1
# Build stage: install all dependencies and compile TypeScript.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

# Runtime stage: production dependencies, compiled code, rules and config; runs as a non-root user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY mappings ./mappings
COPY config ./config
# The operator CLI on PATH, from the compiled code (the image has no tsx sources to run bin/ with):
# docker run --rm <image> fhir-notify mappings check
RUN printf '#!/bin/sh\nexec node /app/dist/src/cli/cli.js "$@"\n' > /usr/local/bin/fhir-notify && chmod 755 /usr/local/bin/fhir-notify
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# Exec form, so SIGTERM reaches node and the graceful shutdown runs.
CMD ["node", "dist/src/main.js"]
