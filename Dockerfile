# syntax=docker/dockerfile:1
# The mesh API pod's image: one image for every container of the upstream chart's Deployment
# (etcd-init, etcd, apiserver, kvstoremesh), like quay.io/cilium/clustermesh-apiserver, so the chart
# runs it unchanged through clustermesh.apiserver.image.override.
#
#   docker build -t ghcr.io/clustermesh-python/clustermesh-apiserver:v0.1.0 .
#
# It carries the product only (package apiserver); the local tooling (localmesh/), the tests and
# the benchmarks stay out of the build context (.dockerignore).

ARG PYTHON_IMAGE=docker.io/library/python:3.11.7-slim-bookworm
# The same Python on the full Debian image: gcc and the Python headers for the compiled twins.
ARG BUILDER_IMAGE=docker.io/library/python:3.11.7-bookworm
# checkov:skip=CKV_DOCKER_7: the stages start FROM ${BUILDER_IMAGE} and ${PYTHON_IMAGE}, the version tags above (checkov does not expand ARG)

# Builder: the project's wheel, its compiled twins (setup.py, Cython) built in, and the wheels of
# its dependencies.
FROM ${BUILDER_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY apiserver/ apiserver/
RUN python -m pip wheel --wheel-dir=/wheels /src

# Runtime: Debian's etcd server, the wheel installed from the builder's wheels (no index), upstream's
# file paths, a numeric non-root user.
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="clustermesh-apiserver" \
      org.opencontainers.image.description="Python reimplementation of Cilium's clustermesh-apiserver and KVStoreMesh, with etcd" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/clustermesh-python/clustermesh-apiserver" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.7-slim-bookworm"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
# Debian's etcd-server puts etcd at /usr/bin/etcd, where the chart's etcd container and etcdinit
# expect it (upstream's image copies the etcd release binary there too).
# The package's postinst starts its service through invoke-rc.d; policy-rc.d's exit 101 ("action
# forbidden", Debian's policy-rc.d interface) keeps it from starting an etcd during the build.
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod 0755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && apt-get install -y --no-install-recommends etcd-server=3.4.23-4+b4 \
    && rm -rf /var/lib/apt/lists/* /var/lib/etcd /etc/default/etcd /etc/init.d/etcd /usr/sbin/policy-rc.d
# Exactly the wheel the builder built (its platform tag is the builder's); its dependencies come from
# the builder's wheel directory only.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels "clustermesh-apiserver==${VERSION}" \
    && ln -s /usr/local/bin/clustermesh-apiserver /usr/bin/clustermesh-apiserver
# pip compiled the bytecode at install; at run time the root file system is read-only.
ENV PYTHONDONTWRITEBYTECODE=1
COPY deploy/image/etcd-config.yaml /var/lib/cilium/etcd-config.yaml
# A passwd entry for the UID the chart runs as, so the runtime sets HOME (libraries resolve ~ at import).
RUN groupadd --system --gid 65532 nonroot \
    && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin nonroot
# The chart's pod securityContext runs everything as 65532:65532 (runAsNonRoot needs a numeric UID).
USER 65532:65532
WORKDIR /
# Kubelet's probes (readinessProbe/livenessProbe on /readyz and /healthz) judge the containers.
HEALTHCHECK NONE
ENTRYPOINT ["/usr/bin/clustermesh-apiserver"]
