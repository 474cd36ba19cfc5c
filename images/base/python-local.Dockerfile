# The Python base for machines that cannot pull python:3.11-slim-bookworm: Debian bookworm's
# own Python 3.11 on the minimal Debian base, with the official image's conventions
# (`python`/`pip` on PATH, pip allowed to install into the interpreter, C.UTF-8).
# scripts/ensure-base-image.sh builds it (no build context) only when no registry answers.
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}

RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip python3-venv ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/* /var/log/apt/* /var/log/dpkg.log \
 && ln -s /usr/bin/python3 /usr/local/bin/python \
 && ln -s /usr/bin/pip3 /usr/local/bin/pip \
 && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED
ENV LANG=C.UTF-8
CMD ["python3"]
