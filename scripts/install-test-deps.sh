#!/usr/bin/env bash
# Installs what the end-to-end suite needs, only where it is missing:
#   - Debian packages: libopus-dev and pkg-config (build dependencies: the voice mix links
#     libopus), chromium, chromium-driver, openssl, nodejs/npm, python3-venv,
#     nats-server and redis-server (the stream-service tests start their own on loopback ports;
#     the packages' system services are not needed), postgresql (the livestream tests run
#     its server binaries on a loopback port in a temporary directory), ffmpeg (the recording
#     tests read and decode the WebM files the server writes with ffprobe and ffmpeg)
#   - Node packages for tests/browser (npm ci from the committed package-lock.json;
#     playwright-core drives /usr/bin/chromium, no browser is ever downloaded) and for
#     tests/mediasoup (mediasoup-client and esbuild for the media server's /sessions test)
#   - Node packages for tests/livestream (socket.io-client and playwright-core, npm ci from its
#     package-lock.json): the livestream service's Socket.IO and Chromium tests
#   - a Python virtualenv at .venv with the pinned packages of tests/peers/requirements.txt and
#     tests/livestream/requirements.txt (python-socketio)
#   - s3s-fs (crates.io, built with cargo install): the S3-compatible store of the recording
#     tests, at .tools/bin/s3s-fs
# Idempotent: a second run changes nothing and says so. Works as root on a fresh Debian
# machine (uses sudo for apt-get when not root).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[install-test-deps] %s\n' "$*"; }
die() { printf '[install-test-deps] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi

# ---------------------------------------------------------------- Debian packages
APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand"
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
# libopus-dev and pkg-config: the media plane links libopus for the voice-channel mix (the
# `opus` crate finds it with pkg-config), so they are build dependencies too.
for pkg in chromium chromium-driver openssl ca-certificates python3-venv nats-server redis-server libopus-dev pkg-config postgresql ffmpeg; do
    deb_installed "$pkg" || missing+=("$pkg")
done
# Node may come from another source than Debian (e.g. a preinstalled nodesource build that
# bundles npm); only ask Debian for it when there is no node at all.
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
if ! command -v python3 >/dev/null 2>&1; then missing+=(python3); fi

if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
else
    log "Debian packages present: chromium chromium-driver openssl python3-venv nats-server redis-server libopus-dev pkg-config postgresql ffmpeg node npm"
fi

[ -x /usr/bin/chromium ] || die "/usr/bin/chromium missing after install"
[ -x /usr/sbin/nats-server ] || die "/usr/sbin/nats-server missing after install"
[ -x /usr/bin/redis-server ] || die "/usr/bin/redis-server missing after install"
[ -x /usr/bin/ffprobe ] || die "/usr/bin/ffprobe missing after install (Debian's ffmpeg package)"
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || die "PostgreSQL server binaries (/usr/lib/postgresql/*/bin/postgres) missing after install"
log "$(/usr/sbin/nats-server --version 2>&1), redis-server: $(/usr/bin/redis-server --version | cut -d' ' -f3)"
log "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo '?')"
log "node: $(node --version), npm: $(npm --version 2>/dev/null)"

node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 18 ] || die "node >= 18 required for playwright-core, found $(node --version)"

# ---------------------------------------------------------------- Node packages
BROWSER_DIR="$ROOT/tests/browser"
LOCK="$BROWSER_DIR/package-lock.json"
STAMP="$BROWSER_DIR/node_modules/.ringcast-lock.sha256"
lock_sum="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$lock_sum" ] && [ -d "$BROWSER_DIR/node_modules/playwright-core" ]; then
    log "tests/browser/node_modules up to date with package-lock.json"
else
    log "npm ci in tests/browser"
    # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing by itself, this only
    # makes sure no install hook ever tries; the suite drives Debian's /usr/bin/chromium.
    (cd "$BROWSER_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" > "$STAMP"
fi
log "playwright-core: $(node -p "require('$BROWSER_DIR/node_modules/playwright-core/package.json').version")"

# mediasoup-client, esbuild and playwright-core for the media server's /sessions test
# (tests/mediasoup, npm ci from its package-lock.json).
MEDIASOUP_DIR="$ROOT/tests/mediasoup"
MS_LOCK="$MEDIASOUP_DIR/package-lock.json"
MS_STAMP="$MEDIASOUP_DIR/node_modules/.ringcast-lock.sha256"
ms_lock_sum="$(sha256sum "$MS_LOCK" | cut -d' ' -f1)"
if [ -f "$MS_STAMP" ] && [ "$(cat "$MS_STAMP")" = "$ms_lock_sum" ] && [ -d "$MEDIASOUP_DIR/node_modules/mediasoup-client" ]; then
    log "tests/mediasoup/node_modules up to date with package-lock.json"
else
    log "npm ci in tests/mediasoup"
    (cd "$MEDIASOUP_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    echo "$ms_lock_sum" > "$MS_STAMP"
fi
log "mediasoup-client: $(node -p "require('$MEDIASOUP_DIR/node_modules/mediasoup-client/package.json').version")"

# socket.io-client and playwright-core for the livestream service's tests (tests/livestream,
# npm ci from its package-lock.json).
LIVE_DIR="$ROOT/tests/livestream"
LIVE_LOCK="$LIVE_DIR/package-lock.json"
LIVE_STAMP="$LIVE_DIR/node_modules/.ringcast-lock.sha256"
live_lock_sum="$(sha256sum "$LIVE_LOCK" | cut -d' ' -f1)"
if [ -f "$LIVE_STAMP" ] && [ "$(cat "$LIVE_STAMP")" = "$live_lock_sum" ] && [ -d "$LIVE_DIR/node_modules/socket.io-client" ]; then
    log "tests/livestream/node_modules up to date with package-lock.json"
else
    log "npm ci in tests/livestream"
    (cd "$LIVE_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    echo "$live_lock_sum" > "$LIVE_STAMP"
fi
log "socket.io-client: $(node -p "require('$LIVE_DIR/node_modules/socket.io-client/package.json').version")"

# ---------------------------------------------------------------- Python virtualenv
VENV="$ROOT/.venv"
REQS="$ROOT/tests/peers/requirements.txt"
PY_STAMP="$VENV/.ringcast-requirements.sha256"
reqs_sum="$(sha256sum "$REQS" | cut -d' ' -f1)"
# Prefer Debian's interpreter: it is what a fresh machine has and what python3-venv serves.
BASE_PY="/usr/bin/python3"
[ -x "$BASE_PY" ] || BASE_PY="$(command -v python3)"

if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log ".venv is broken (its interpreter does not run); recreating"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    log "creating .venv with $BASE_PY ($("$BASE_PY" --version 2>&1))"
    "$BASE_PY" -m venv "$VENV"
    rm -f "$PY_STAMP"
fi
if [ -f "$PY_STAMP" ] && [ "$(cat "$PY_STAMP")" = "$reqs_sum" ] \
    && "$VENV/bin/python" -c 'import aiortc, aioice, av, numpy' >/dev/null 2>&1; then
    log ".venv up to date with tests/peers/requirements.txt"
else
    log "pip install -r tests/peers/requirements.txt into .venv"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
    "$VENV/bin/python" -c 'import aiortc, aioice, av, numpy' \
        || die "the .venv cannot import aiortc/aioice/av/numpy after install"
    echo "$reqs_sum" > "$PY_STAMP"
fi
log "aiortc: $("$VENV/bin/python" -c 'import aiortc; print(aiortc.__version__)'), python: $("$VENV/bin/python" --version 2>&1)"

# python-socketio for the livestream tests (tests/livestream/python_client.py).
LIVE_REQS="$ROOT/tests/livestream/requirements.txt"
LIVE_PY_STAMP="$VENV/.ringcast-livestream-requirements.sha256"
live_reqs_sum="$(sha256sum "$LIVE_REQS" | cut -d' ' -f1)"
if [ -f "$LIVE_PY_STAMP" ] && [ "$(cat "$LIVE_PY_STAMP")" = "$live_reqs_sum" ] \
    && "$VENV/bin/python" -c 'import socketio, websocket' >/dev/null 2>&1; then
    log ".venv up to date with tests/livestream/requirements.txt"
else
    log "pip install -r tests/livestream/requirements.txt into .venv"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$LIVE_REQS"
    "$VENV/bin/python" -c 'import socketio, websocket' \
        || die "the .venv cannot import socketio/websocket after install"
    echo "$live_reqs_sum" > "$LIVE_PY_STAMP"
fi
log "python-socketio: $("$VENV/bin/python" -m pip show python-socketio 2>/dev/null | sed -n 's/^Version: //p')"
# ---------------------------------------------------------------- S3-compatible test server
# s3s-fs (crates.io): a real S3 server over a directory that checks AWS SigV4 signatures when
# started with --access-key/--secret-key. signaling/tests/recording_storage.rs starts it on a
# loopback port over a temporary directory (the recording storage's tests). It is built once
# per machine into a cache outside the work tree (about 2 minutes on 2 cores) and copied to
# .tools/bin/s3s-fs, where the tests look for it. RINGCAST_TOOLS_CACHE moves the cache.
S3S_FS_VERSION="0.14.1"
S3S_CACHE="${RINGCAST_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ringcast-tools}/s3s-fs-$S3S_FS_VERSION"
S3S_BIN="$ROOT/.tools/bin/s3s-fs"
s3s_ok() { [ -x "$1" ] && [ "$("$1" --version 2>/dev/null)" = "s3s-fs $S3S_FS_VERSION" ]; }
if s3s_ok "$S3S_CACHE/bin/s3s-fs"; then
    log "s3s-fs $S3S_FS_VERSION already built in $S3S_CACHE"
else
    command -v cargo >/dev/null 2>&1 || die "cargo not found: s3s-fs (the recording storage tests' S3 server) is built with cargo install"
    log "cargo install s3s-fs $S3S_FS_VERSION into $S3S_CACHE (a few minutes)"
    S3S_BUILD="$(mktemp -d)"
    trap 'rm -rf "$S3S_BUILD"' EXIT
    cargo install --quiet --locked --version "$S3S_FS_VERSION" --features binary \
        --root "$S3S_CACHE" --target-dir "$S3S_BUILD" s3s-fs
    rm -rf "$S3S_BUILD"
    s3s_ok "$S3S_CACHE/bin/s3s-fs" || die "s3s-fs $S3S_FS_VERSION missing from $S3S_CACHE/bin after cargo install"
fi
if s3s_ok "$S3S_BIN" && cmp -s "$S3S_CACHE/bin/s3s-fs" "$S3S_BIN"; then
    log ".tools/bin/s3s-fs up to date"
else
    mkdir -p "$ROOT/.tools/bin"
    install -m 755 "$S3S_CACHE/bin/s3s-fs" "$S3S_BIN"
    log "copied s3s-fs $S3S_FS_VERSION to .tools/bin/s3s-fs"
fi
log "done"
