# STAND-IN for the official redis image, built only where no image registry can be reached:
# Debian bookworm (BASE) with Debian's redis-server and redis-cli. Like the official image
# it works in /data as user redis and turns protected mode off (the official image
# compiles it off), so other containers on the network can connect.
ARG BASE
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server redis-tools \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
USER redis
EXPOSE 6379
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["redis-server"]
