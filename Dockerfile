# phi4bot as a container: `docker build -t phi4bot .`, then see compose.yaml.

# The base image, pinned by digest so that a rebuild gets the same Python and Debian until
# the digest is changed on purpose. To move to the newest python:3.11-slim, read its digest
#   docker buildx imagetools inspect python:3.11-slim      (the "Digest:" line)
# or `docker pull python:3.11-slim`, replace the digest below, rebuild and run the tests.
# The digest below is the multi-architecture index (linux/amd64 and linux/arm64) of
# python:3.11-slim as pushed on 2026-08-16: Python 3.11.16 on Debian 13 (trixie).
ARG BASE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# Build stage: the locked dependencies (every version and hash fixed by requirements.lock),
# then phi4bot itself, into a virtual environment.
FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/phi4bot
WORKDIR /src
COPY requirements.lock ./
RUN /opt/phi4bot/bin/pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY storage ./storage
RUN /opt/phi4bot/bin/pip install --no-deps .

# Run stage: the same slim base, the virtual environment only, a non-root user.
FROM ${BASE}
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home phi4bot \
    && mkdir -p /data && chown phi4bot:phi4bot /data
COPY --from=build /opt/phi4bot /opt/phi4bot
# Configuration only; the token and keys come from the environment at run time.
ENV PATH=/opt/phi4bot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite:////data/phi4bot.db \
    PHI4BOT_METRICS_HOST=0.0.0.0 \
    PHI4BOT_METRICS_PORT=9464
VOLUME ["/data"]
WORKDIR /data
USER phi4bot
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PHI4BOT_METRICS_PORT', '9464'), timeout=4)"]
STOPSIGNAL SIGTERM
CMD ["phi4bot", "run"]
