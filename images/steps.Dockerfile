# syntax=docker/dockerfile:1
# Steps image (CPU): runs every `python -m steps.<name>` module the rendered WorkflowTemplates name.
#
# Build from the repository root (the context must hold pyproject.toml, uv.lock, pipelines/, steps/):
#   docker build -f images/steps.Dockerfile -t REGISTRY/kiosk-steps:GIT_SHA \
#     --build-arg VERSION=GIT_SHA --build-arg REVISION="$(git rev-parse HEAD)" .
# Reproducible rebuilds pin the base by digest as well as by tag:
#   --build-arg BASE_DIGEST=@sha256:...
# Other bases (`kiosk images build` passes ones it builds from Debian's packages and uv's wheel):
#   --build-arg PYTHON_IMAGE=localhost/kiosk-base-python:bookworm --build-arg UV_IMAGE=localhost/kiosk-uv:0.13.9
#
# Runs as UID 10001 on a read-only root filesystem: bytecode is compiled at build time and every
# writable path (HOME, matplotlib's cache, outputs) is under /tmp, which the pod mounts as emptyDir.

ARG UV_VERSION=0.13.9
ARG PYTHON_TAG=3.11.13-slim-bookworm
ARG BASE_DIGEST=""
ARG UV_IMAGE=ghcr.io/astral-sh/uv:${UV_VERSION}
ARG PYTHON_IMAGE=python:${PYTHON_TAG}${BASE_DIGEST}

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies alone first, so this layer is rebuilt only when uv.lock changes.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project --no-cache
COPY pipelines/ pipelines/
COPY steps/ steps/
# Non-editable: the code lands in site-packages, compiled, and /src is not needed at run time.
RUN uv sync --frozen --no-dev --no-editable --no-cache

FROM ${PYTHON_IMAGE}
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="kiosk-steps" \
      org.opencontainers.image.description="kiosk-pipelines workflow steps (CPU, ONNX Runtime)" \
      org.opencontainers.image.source="https://github.com/kiosk-pipelines/kiosk-pipelines" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/library/python:${PYTHON_TAG}"
# OpenCV is the headless build (pyproject.toml): it links only libz and the C/C++ runtime,
# so the image needs no libGL or glib from the distribution.
RUN groupadd --gid 10001 kiosk \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin kiosk
# Owned by root, so the running step cannot modify its own code.
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /app
USER 10001:10001
# Kubernetes probes and Argo decide liveness; a Docker HEALTHCHECK would never run.
HEALTHCHECK NONE
# Templates set `command: [python, -m, steps.<name>]`; run locally as `docker run IMAGE steps.<name> --flag=...`.
ENTRYPOINT ["python", "-m"]
CMD ["steps.publish_model", "--help"]
