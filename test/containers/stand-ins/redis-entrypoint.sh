#!/bin/sh
# Like the official image's entrypoint: arguments starting with "-" are redis-server's.
set -e
if [ "${1#-}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ]; then shift; set -- redis-server --protected-mode no "$@"; fi
exec "$@"
