#!/usr/bin/env bash
# Compose v2 (and buildx) for the container suite on Debian 12, which ships only
# docker-compose 1.29: Debian 13's docker-compose and docker-buildx packages, unpacked
# into a private prefix with their own apt state, so the machine's apt sources, state and
# installed packages stay as they are. Idempotent; prints the compose binary.
#   test/containers/install-compose-v2.sh [PREFIX]   (default .cache/containers/compose-v2)
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix="$(realpath -m "${1:-.cache/containers/compose-v2}")"
plugin="$prefix/usr/libexec/docker/cli-plugins/docker-compose"
if [ -x "$plugin" ] && "$plugin" version >/dev/null 2>&1; then echo "$plugin"; exit 0; fi

state="$(dirname "$prefix")/apt-trixie"
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/etc" "$prefix"
echo 'deb http://deb.debian.org/debian trixie main' > "$state/etc/sources.list"
apt_private=(-o "Dir::State=$state" -o "Dir::State::Lists=$state/lists" -o "Dir::State::status=$state/status"
  -o "Dir::Cache=$state/cache" -o "Dir::Etc::SourceList=$state/etc/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=/dev/null" -o "APT::Architecture=amd64"
  -o "APT::Sandbox::User=root")
touch "$state/status"
apt-get "${apt_private[@]}" update -qq
(cd "$state/cache/archives" && apt-get "${apt_private[@]}" download docker-compose docker-buildx)
for deb in "$state"/cache/archives/docker-compose_*.deb "$state"/cache/archives/docker-buildx_*.deb; do dpkg-deb -x "$deb" "$prefix"; done
"$plugin" version >&2
echo "$plugin"
