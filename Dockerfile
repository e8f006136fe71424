# rembg-webui on CPU: the WebUI, the Gradio client API and the REST API on port 7860.
#
#   docker build -t rembg-webui .
#   docker run --rm -p 7860:7860 rembg-webui
#   docker run --rm --user "$(id -u)" -v "$PWD:/data" rembg-webui python app.py batch /data/in /data/out
#
# (--user: the app runs as uid 10001, which cannot write to your folder otherwise.)
# Settings are the environment variables of the settings table (docs/configuration.md, `python app.py
# --help`). Build with --build-arg WITH_RAY=true for `batch --ray` cluster nodes (+410 MB).
# BASE: any Debian-based image with Python 3.11, `python` and `pip` on PATH (CI builds
# from a local one, .ci/containers). GPU: Dockerfile.gpu. Deployment: docs/deployment.md.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    GRADIO_ANALYTICS_ENABLED=False \
    U2NET_HOME=/models \
    REMBG_WEBUI_HOST=0.0.0.0 \
    REMBG_WEBUI_PORT=7860

WORKDIR /app

# Dependencies first: these layers are rebuilt only when a requirements file changes.
# Everything up to this RUN is the same in Dockerfile.gpu, so the two images share it.
COPY requirements-base.txt requirements-ray.txt ./
ARG WITH_RAY=false
RUN pip install --no-cache-dir -r requirements-base.txt \
    && if [ "$WITH_RAY" = "true" ]; then pip install --no-cache-dir -r requirements-ray.txt; fi
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# Weights at build time, so a container starts without network. Only the files the
# fetcher imports (base/ and models/) are copied here, so editing the rest keeps this layer.
# The non-root user is made here and owns /models in this same layer (a `chown -R` in a
# later layer would store the weights twice); owning it, the app can still fetch other
# models at run time (`python -m models fetch silueta`, or a fetch on first use).
COPY base/ base/
COPY models/ models/
RUN useradd --no-log-init --system --uid 10001 --create-home app \
    && python -m models fetch --quiet \
    && python -c "import os, pathlib; from models.fetch import status; from models.registry import MODELS; bad = [n for n in ('u2net', 'u2netp') if not status(MODELS[n], pathlib.Path(os.environ['U2NET_HOME'])).verified]; raise SystemExit(f'weights not verified: {bad}' if bad else 0)" \
    && chown -R app /models

COPY . .

ENV REMBG_WEBUI_DEFAULT_PROVIDER=cpu
USER 10001

EXPOSE 7860
# No curl in the image: urlopen raises on a refused connection or a non-2xx status (exit 1).
# /healthz answers without a login even with --auth (details need one): 200 when healthy,
# 503 when degraded.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('REMBG_WEBUI_PORT', '7860'), timeout=4)"]
CMD ["python", "app.py"]
