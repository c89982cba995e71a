# STAND-IN for the official python image, built only where no image registry can be
# reached: Debian bookworm (BASE) with Debian's python3 (3.11, not the tag's version),
# also reachable as "python" as in the official image.
ARG BASE
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/python3 /usr/local/bin/python
CMD ["python3"]
