#!/usr/bin/env bash
# Installs what the macro benchmark (`cargo run --release -p bench -- macro`) needs, only where it
# is missing:
#   - Debian's `janus` package (the SFU Ringcast is compared with; 1.1.x in Debian trixie),
#   - iproute2 (`ip netns`, veth), which the network namespaces in bench/netns/ are built with.
# Idempotent: a second run changes nothing and says so. Works as root on a fresh Debian machine
# (uses sudo for apt-get when not root). Janus is not started or enabled as a system service: the
# benchmark starts it itself with bench/janus/*.jcfg.
set -euo pipefail

log() { printf '[install-bench-deps] %s\n' "$*"; }
die() { printf '[install-bench-deps] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for pkg in janus iproute2; do
    deb_installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
    log "nothing to do: janus $(dpkg-query -W -f='${Version}' janus), iproute2 installed"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install ${missing[*]} by hand"
log "apt-get update"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
log "apt-get install ${missing[*]}"
# policy-rc.d keeps the package's service from starting during the install (containers have no
# init anyway; on a full machine the benchmark wants no system-wide Janus on its ports).
POLICY=/usr/sbin/policy-rc.d
CREATED_POLICY=0
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod +x "$POLICY"
    CREATED_POLICY=1
fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ "$CREATED_POLICY" -eq 1 ]; then $SUDO rm -f "$POLICY"; fi
command -v janus >/dev/null 2>&1 || die "janus binary missing after install"
log "installed: janus $(dpkg-query -W -f='${Version}' janus)"
