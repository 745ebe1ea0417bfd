# phi4bot as a container: `docker build -t phi4bot .`, then see compose.yaml.
# Build stage: install phi4bot and its dependencies into a virtual environment.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/phi4bot
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY storage ./storage
RUN /opt/phi4bot/bin/pip install .

# Run stage: the same slim base, the virtual environment only, a non-root user.
FROM python:3.11-slim
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
