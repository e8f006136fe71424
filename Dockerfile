# rembg-webui on CPU: the WebUI, the Gradio client API and the REST API on port 7860.
#
#   docker build -t rembg-webui .
#   docker run --rm -p 7860:7860 rembg-webui
#   docker run --rm -v "$PWD:/data" rembg-webui python app.py batch /data/in /data/out
#
# Settings are the environment variables of the settings table (README, `python app.py
# --help`). Build with --build-arg WITH_RAY=true for `batch --ray` cluster nodes (+410 MB).
# GPU: Dockerfile.gpu. Deployment, replicas and Ray: docs/deployment.md.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    GRADIO_ANALYTICS_ENABLED=False \
    U2NET_HOME=/models \
    REMBG_WEBUI_HOST=0.0.0.0 \
    REMBG_WEBUI_PORT=7860 \
    REMBG_WEBUI_DEFAULT_PROVIDER=cpu

WORKDIR /app

# Dependencies first: this layer is rebuilt only when a requirements file changes.
COPY requirements.txt requirements-base.txt requirements-ray.txt ./
ARG WITH_RAY=false
RUN pip install --no-cache-dir -r requirements.txt \
    && if [ "$WITH_RAY" = "true" ]; then pip install --no-cache-dir -r requirements-ray.txt; fi

# Weights at build time, so a container starts without network. Only the files the
# fetcher imports (base/ and models/) are copied here, so editing the rest keeps this layer.
COPY base/ base/
COPY models/ models/
RUN python -m models fetch --quiet \
    && python -c "import os, pathlib; from models.fetch import status; from models.registry import MODELS; bad = [n for n in ('u2net', 'u2netp') if not status(MODELS[n], pathlib.Path(os.environ['U2NET_HOME'])).verified]; raise SystemExit(f'weights not verified: {bad}' if bad else 0)"

COPY . .

# Non-root. It owns /models so that other models (`python -m models fetch silueta`, or a
# fetch on first use) can still be added at run time.
RUN useradd --no-log-init --system --uid 10001 --create-home app \
    && chown -R app /models
USER 10001

EXPOSE 7860
# No curl in the image: urlopen raises on a refused connection or a non-2xx status (exit 1).
# /healthz answers 200 without a login even with --auth (details need one).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('REMBG_WEBUI_PORT', '7860'), timeout=4)"]
CMD ["python", "app.py"]
