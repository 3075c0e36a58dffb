# infercost as a service: `infercost serve` runs the Dagster UI (3000), the Dagster daemon (the daily schedule at
# 02:00 UTC and the alert sensor) and the allocation API (8000). The warehouse, the published copy and Dagster's
# instance live in the /data volume (INFERCOST_HOME); the feeds' files are read from the /landing volume. See the
# README, "Serving".
FROM python:3.11-slim-bookworm

# tini is PID 1: it forwards SIGTERM to `infercost serve` (which stops every child) and reaps orphans
# (0.19.0-1+b3 is bookworm's, pinned with the base image)
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 --user-group infercost \
    && mkdir -p /data /landing \
    && chown infercost:infercost /data /landing

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GX_ANALYTICS_ENABLED=false \
    INFERCOST_HOME=/data \
    INFERCOST_LANDING=/landing \
    INFERCOST_API_HOST=0.0.0.0 \
    INFERCOST_UI_HOST=0.0.0.0

WORKDIR /app
# the dependencies first (a layer that survives code changes), then the project, installed in place: infercost finds
# dbt/, schemas/ and workspace.yaml beside its package
COPY pyproject.toml constraints.txt README.md ./
RUN mkdir pipelines && touch pipelines/__init__.py \
    && pip install -c constraints.txt . \
    && pip uninstall -y infercost && rm -rf pipelines build ./*.egg-info
COPY --chown=infercost:infercost . .
RUN pip install --no-deps -e . \
    && chown -R infercost:infercost /app

USER 10001:10001
# dbt's manifest, parsed once at build time (the Dagster definitions read it at import)
RUN dagster-dbt project prepare-and-package --file pipelines/dbt_project.py

VOLUME ["/data", "/landing"]
EXPOSE 3000 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--"]
CMD ["infercost", "serve"]
