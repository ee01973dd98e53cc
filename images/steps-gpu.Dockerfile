# syntax=docker/dockerfile:1
# Steps image (GPU): the same step modules as steps.Dockerfile, with onnxruntime-gpu on a CUDA +
# cuDNN runtime base. TensorRT is optional (WITH_TENSORRT=true) because it adds ~2 GB.
#
# Build from the repository root:
#   docker build -f images/steps-gpu.Dockerfile -t REGISTRY/kiosk-steps-gpu:GIT_SHA \
#     --build-arg VERSION=GIT_SHA --build-arg REVISION="$(git rev-parse HEAD)" \
#     [--build-arg WITH_TENSORRT=true] [--build-arg BASE_DIGEST=@sha256:...] .
#
# onnxruntime-gpu 1.31 links CUDA 13 (libcudart.so.13), cuDNN 9 and TensorRT 10: bump CUDA_TAG and
# TENSORRT_PACKAGE together with the onnxruntime-gpu version (pyproject.toml `gpu` group).

ARG UV_VERSION=0.13.9
ARG PYTHON_VERSION=3.11.13
ARG CUDA_TAG=13.0.0-cudnn-runtime-ubuntu24.04
ARG BASE_DIGEST=""
ARG UV_IMAGE=ghcr.io/astral-sh/uv:${UV_VERSION}

FROM ${UV_IMAGE} AS uv

FROM nvidia/cuda:${CUDA_TAG}${BASE_DIGEST} AS build
ARG PYTHON_VERSION
ARG WITH_TENSORRT=false
ARG TENSORRT_PACKAGE=tensorrt-cu13-libs==10.16.1.11
COPY --from=uv /uv /usr/local/bin/uv
# The CUDA base has no Python 3.11: uv installs a standalone CPython into /opt/python, which the
# final stage copies to the same path so the venv's interpreter link stays valid.
ENV UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PYTHON_PREFERENCE=only-managed \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN uv python install --no-cache "${PYTHON_VERSION}" \
    && uv venv --no-cache --python "${PYTHON_VERSION}" /app/.venv
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
# onnxruntime and onnxruntime-gpu install the same `onnxruntime` package directory: pyproject.toml
# declares them as the conflicting `cpu` (default) and `gpu` groups, and strips onnxruntime from
# rapidocr's requirements, so this export holds onnxruntime-gpu and no CPU build. `uv pip sync`
# installs exactly that hashed list without resolving.
RUN uv export --frozen --no-dev --no-group cpu --group gpu --no-emit-project \
        --output-file /tmp/requirements.txt \
    && uv pip sync --no-cache --python /app/.venv/bin/python --require-hashes /tmp/requirements.txt
RUN if [ "${WITH_TENSORRT}" = "true" ]; then \
        uv pip install --no-cache --python /app/.venv/bin/python "${TENSORRT_PACKAGE}"; \
    fi
COPY pipelines/ pipelines/
COPY steps/ steps/
RUN uv pip install --no-cache --no-deps --python /app/.venv/bin/python /src

FROM nvidia/cuda:${CUDA_TAG}${BASE_DIGEST}
ARG CUDA_TAG
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="kiosk-steps-gpu" \
      org.opencontainers.image.description="kiosk-pipelines workflow steps (CUDA, ONNX Runtime GPU)" \
      org.opencontainers.image.source="https://github.com/kiosk-pipelines/kiosk-pipelines" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/nvidia/cuda:${CUDA_TAG}"
# OpenCV is the headless build (pyproject.toml): it links only libz and the C/C++ runtime,
# so the image needs no libGL or glib from the distribution.
RUN groupadd --gid 10001 kiosk \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin kiosk
COPY --from=build /opt/python /opt/python
COPY --from=build /app/.venv /app/.venv
# tensorrt_libs is only present when built WITH_TENSORRT; a missing directory on the path is harmless.
ENV PATH=/app/.venv/bin:$PATH \
    LD_LIBRARY_PATH=/app/.venv/lib/python3.11/site-packages/tensorrt_libs:/usr/local/nvidia/lib:/usr/local/nvidia/lib64 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /app
USER 10001:10001
# Kubernetes probes and Argo decide liveness; a Docker HEALTHCHECK would never run.
HEALTHCHECK NONE
ENTRYPOINT ["python", "-m"]
CMD ["steps.publish_model", "--help"]
