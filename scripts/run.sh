#!/usr/bin/env bash
# Runs the all-in-one server (signaling + media shards, embedded defaults: no Redis, NATS or
# database) from a fresh checkout: installs the build dependencies it links (Debian's
# libopus-dev and pkg-config, for the voice-channel mix) when they are missing, then
# `cargo run --release`. Arguments go to the server (`./scripts/run.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for pkg in libopus-dev pkg-config; do
    deb_installed "$pkg" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "[run] installing build dependencies: ${missing[*]}" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
exec cargo run --release -- "$@"
