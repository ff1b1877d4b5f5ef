# handover-connector: one process, SQLite in the /data volume, in-process bus.
#   docker build -t handover-connector .
#   docker run -d -p 8000:8000 -v connector-data:/data handover-connector
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 connector \
    && useradd --system --uid 10001 --gid connector --home-dir /data \
       --no-create-home --shell /usr/sbin/nologin connector \
    && mkdir -p /data \
    && chown connector:connector /data

# The same install as the README's (scripts/serve.sh): the locked dependencies,
# hash-checked, then the source tree without dependencies (.dockerignore keeps
# tests, scripts and local state out of the context).
WORKDIR /src
COPY . .
RUN pip install --require-hashes -r requirements/run.lock \
    && pip install --no-deps --no-build-isolation . \
    && cd / && rm -rf /src

ENV CONNECTOR_DATABASE_URL=sqlite+aiosqlite:////data/connector.db \
    CONNECTOR_HOST=0.0.0.0 \
    CONNECTOR_PORT=8000

WORKDIR /data
VOLUME ["/data"]
USER connector
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('CONNECTOR_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["connector"]
CMD ["serve"]
