# syntax=docker/dockerfile:1
# sigma-exporter container image.
#
#   docker build -t sigma-exporter:0.1.0 .
#   docker run --rm -p 9842:9842 -v "$PWD/config.yml:/etc/sigma-exporter/config.yml:ro" sigma-exporter:0.1.0
#
# Two stages: the builder installs the project into a virtualenv at /opt/venv; the final stage copies only
# that virtualenv (no compiler, no pip, no caches) onto the same slim Python base and runs as a fixed
# non-root uid (65532, the Helm chart's securityContext.runAsUser).
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY sigma_exporter ./sigma_exporter
# Install the project (and its dependencies within pyproject.toml's ranges), then drop the installers so
# that the copied virtualenv carries no pip or setuptools. The compiled .pyc files stay: the container's root
# filesystem is read-only, so they could not be written at run time.
# Behind a proxy or a mirror, give pip its settings as build secrets, seen by this step only and never kept in
# a layer (a build --env would be baked into the image):
#   --secret id=pip.conf,src=pip.conf   mounted as /etc/pip.conf, e.g. "[global]\ncert = /run/secrets/ca.crt"
#   --secret id=ca.crt,src=/etc/ssl/certs/ca-certificates.crt   the CA bundle that pip.conf names
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    --mount=type=secret,id=ca.crt \
    /opt/venv/bin/pip install --no-cache-dir . \
 && /opt/venv/bin/pip uninstall --yes pip setuptools wheel \
 && /opt/venv/bin/sigma-exporter --version

FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="sigma-exporter" \
      org.opencontainers.image.description="Prometheus exporter for the Sigma report engine (Intellect Design Arena Canvas)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

RUN groupadd --system --gid 65532 sigma \
 && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin sigma \
 && mkdir -p /etc/sigma-exporter/references.d \
 && install -d -o 65532 -g 65532 -m 0750 /data

COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

USER 65532:65532
# The state store's default, sqlite:///data/sigma-exporter.db, is relative to the working directory.
WORKDIR /
VOLUME ["/data"]
EXPOSE 9842
ENTRYPOINT ["/opt/venv/bin/sigma-exporter", "serve"]
CMD ["--config.file=/etc/sigma-exporter/config.yml"]
