# syntax=docker/dockerfile:1
# The platform runtime: control plane, cost guard, DR drills and the tenant CLI, as compiled JavaScript.
# Base: node:20.19-bookworm-slim, pinned by digest (Node 20 is the supported runtime, see README). Re-pin with
# `docker buildx imagetools inspect node:20.19-bookworm-slim` when moving to a newer patch release.

FROM node:20.19-bookworm-slim@sha256:b342de02eb4a57cd6986290a69833d20818508db8078dba0197a024193410aee AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM node:20.19-bookworm-slim@sha256:b342de02eb4a57cd6986290a69833d20818508db8078dba0197a024193410aee AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# Numeric, so that the kubelet can check runAsNonRoot without resolving a name.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["node"]
CMD ["dist/bin/control-plane.js"]
