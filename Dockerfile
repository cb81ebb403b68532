# Production image: the ASGI server (REST + WebSockets), and the same image runs the Celery
# worker and beat (see docker-compose.yml). Secrets come from the environment at run time;
# nothing secret is baked in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    POS_VAR_DIR=/app/var

WORKDIR /app

# A fixed uid so volumes and the host agree on ownership.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

# Dependencies first (the layer is reused while pyproject.toml is unchanged). The project
# itself runs from /app; pyproject.toml declares no packages, so this installs the
# dependencies only. Every dependency ships manylinux wheels, so no compiler is needed.
COPY pyproject.toml README.m[d] ./
RUN pip install .

COPY . .

# Static files are collected at build time into $POS_VAR_DIR/static and served by WhiteNoise.
# The key and hosts on this line exist for this one command only (settings refuse to start
# without them when DEBUG is off); they are not kept in the image's environment.
RUN DJANGO_SECRET_KEY=collectstatic-only-build-time-value-not-used-at-run-time \
    DJANGO_ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
    && mkdir -p /app/var \
    && chown -R app:app /app/var

USER app

EXPOSE 8000

# Liveness only: the process answers. Compose overrides it with /readyz for the web service.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen(u.Request('http://localhost:8000/healthz', headers={'X-Forwarded-Proto': 'https'}), timeout=4)"]

# Several worker processes; each holds one channel-layer subscription per outlet it serves.
CMD ["uvicorn", "asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "4", \
     "--ws", "pos.ws_protocol:WebSocketProtocol", "--ws-per-message-deflate", "false", \
     "--proxy-headers", "--forwarded-allow-ips", "*", "--no-access-log"]
