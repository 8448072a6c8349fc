# Yishao service image. Build: docker build -t yishao .
# The pages (console, terminal, coordinator) are built with Node in a stage of their own.
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web ./
RUN npm run build

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dispatch ./dispatch
COPY routing ./routing
COPY simulators ./simulators
COPY pivots ./pivots
COPY yishao ./yishao
COPY scenarios ./scenarios
RUN pip install .
# The graph volume is written by the unprivileged user below.
RUN mkdir -p /data/graph && chown 10001 /data/graph
COPY --from=web /web/dist ./web/dist
ENV YISHAO_WEB_DIR=/app/web/dist
RUN useradd --system --uid 10001 yishao
USER yishao
EXPOSE 8000
# Liveness: a loaded instance is busy, not dead (readiness is /api/health/ready, for balancers).
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/health/live').status != 200)"
CMD ["yishao", "serve", "--host", "0.0.0.0", "--port", "8000"]
