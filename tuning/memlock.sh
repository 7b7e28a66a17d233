#!/usr/bin/env bash
# RLIMIT_MEMLOCK for the io_uring backend. Each shard's ring (1024 submission entries, 8192
# completion entries) and its provided-buffer ring (4096 entries) are kernel-shared memory that
# older kernels (before 5.12) charge to the locked-memory limit, and pinned or registered buffers
# still count on current ones. A limit below what the shards need makes io_uring setup fail and
# the shards fall back to recvmmsg/sendmmsg.
#
# The limit belongs to the process that runs the server, so "apply" cannot raise it for a running
# service: it writes the configuration that raises it at the next start (limits.d for login
# sessions, a systemd drop-in with --unit) and prints what to do.
#
#   tuning/memlock.sh --check [--shards N]
#   sudo tuning/memlock.sh [--shards N] [--unit ringcast.service]
set -euo pipefail
# shellcheck source=tuning/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Locked memory one shard's io_uring needs with the default IoConfig, rounded up to 512 KiB for
# headroom (signaling/src/host_check.rs computes the exact figure the same way).
PER_SHARD_KIB=512
# What the tuned profile sets: room for 64 shards and registered buffers.
WANT_KIB=65536

check_only=0
shards=$(nproc 2>/dev/null || echo 1)
unit=""
while (($#)); do
  case "$1" in
    --check) check_only=1 ;;
    --shards)
      [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || usage_error "usage: $0 [--check] [--shards N] [--unit UNIT]"
      shards=$2
      shift
      ;;
    --unit)
      [[ -n "${2:-}" ]] || usage_error "usage: $0 [--check] [--shards N] [--unit UNIT]"
      unit=$2
      shift
      ;;
    *) usage_error "usage: $0 [--check] [--shards N] [--unit UNIT]" ;;
  esac
  shift
done
need_kib=$((shards * PER_SHARD_KIB))

# "Max locked memory  SOFT  HARD  bytes" from the limits of this shell (what a server started
# from it would get).
limits="$PROC/self/limits"
line=$(grep -i '^Max locked memory' "$limits" 2>/dev/null || true)
if [[ -z "$line" ]]; then
  say skip memlock "cannot read $limits"
  echo "summary: memlock=n/a"
  exit 0
fi
read -r soft hard < <(awk '{print $4, $5}' <<<"$line")
kib() { [[ "$1" == unlimited ]] && echo unlimited || echo $(($1 / 1024)); }
soft_kib=$(kib "$soft")
hard_kib=$(kib "$hard")
fmt() { [[ "$1" == unlimited ]] && echo unlimited || echo "$1 KiB"; }

state=ok
if [[ "$soft_kib" == unlimited ]] || ((soft_kib >= need_kib)); then
  say ok memlock "soft limit $(fmt "$soft_kib") >= $need_kib KiB for $shards io_uring shards (hard $(fmt "$hard_kib"))"
else
  state=low
  if ((check_only)); then
    say LOW memlock "soft limit $(fmt "$soft_kib") < $need_kib KiB for $shards io_uring shards (hard $(fmt "$hard_kib"))"
    differs=1
  fi
fi

if ((!check_only)); then
  conf="$ETC/security/limits.d/90-ringcast-memlock.conf"
  content="# Written by ringcast tuning/memlock.sh: locked memory for io_uring rings.
*    soft    memlock    $WANT_KIB
*    hard    memlock    $WANT_KIB"
  if [[ -f "$conf" && "$(cat "$conf")" == "$content" ]]; then
    say ok memlock "$conf already sets $WANT_KIB KiB"
  elif mkdir -p "$(dirname "$conf")" 2>/dev/null && printf "%s\n" "$content" >"$conf" 2>/dev/null; then
    say set memlock "$conf sets $WANT_KIB KiB for new login sessions"
  else
    say LOW memlock "cannot write $conf (not root?)"
    differs=1
  fi
  if [[ -n "$unit" ]]; then
    dropin="$ETC/systemd/system/$unit.d/memlock.conf"
    content="[Service]
LimitMEMLOCK=$((WANT_KIB * 1024))"
    if [[ -f "$dropin" && "$(cat "$dropin")" == "$content" ]]; then
      say ok memlock "$dropin already sets LimitMEMLOCK"
    elif mkdir -p "$(dirname "$dropin")" 2>/dev/null && printf '%s\n' "$content" >"$dropin" 2>/dev/null; then
      say set memlock "$dropin sets LimitMEMLOCK=$((WANT_KIB * 1024)); run 'systemctl daemon-reload' and restart $unit"
    else
      say LOW memlock "cannot write $dropin (not root?)"
      differs=1
    fi
  fi
fi
if [[ "$state" == low ]]; then
  say note memlock "start the server with a higher limit: 'ulimit -l $WANT_KIB' in its shell, LimitMEMLOCK=$((WANT_KIB * 1024)) in its systemd unit (or run '$0 --unit UNIT'), --ulimit memlock=$((WANT_KIB * 1024)) for docker"
fi
echo "summary: memlock=$state"
exit "$differs"
