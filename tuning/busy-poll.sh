#!/usr/bin/env bash
# Socket busy polling (net.core.busy_read, net.core.busy_poll): a thread waiting on a socket spins
# on the NIC queue for up to this many microseconds instead of sleeping until the interrupt. On a
# core a shard owns, this trades idle cycles for lower and steadier receive latency. It applies
# only to NICs with NAPI (not loopback). With --check, only reports; --off turns it off again.
#
#   tuning/busy-poll.sh --check
#   sudo tuning/busy-poll.sh [--usec 50]
#   sudo tuning/busy-poll.sh --off
set -euo pipefail
# shellcheck source=tuning/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check_only=0
usec=50
off=0
while (($#)); do
  case "$1" in
    --check) check_only=1 ;;
    --off) off=1 ;;
    --usec)
      [[ "${2:-}" =~ ^[0-9]+$ ]] || usage_error "usage: $0 [--check] [--usec N] [--off]"
      usec=$2
      shift
      ;;
    *) usage_error "usage: $0 [--check] [--usec N] [--off]" ;;
  esac
  shift
done
((off)) && usec=0
want_text=$( ((off)) && echo "0" || echo ">= $usec")

low=0
state=on
for key in net.core.busy_read net.core.busy_poll; do
  have=$(sysctl_get "$key")
  if [[ -z "$have" ]]; then
    say skip "$key" "not available on this kernel"
    state=n/a
    continue
  fi
  if ((off ? have == 0 : have >= usec)); then
    say ok "$key" "$have us (want $want_text)"
    ((have == 0)) && state=off
    continue
  fi
  if ((check_only)); then
    say LOW "$key" "$have us, want $want_text us"
    low=$((low + 1))
    state=off
  elif sysctl_set "$key" "$usec" 2>/dev/null; then
    say set "$key" "$usec us (was $have)"
    ((usec == 0)) && state=off
  else
    say LOW "$key" "$have us, cannot set $usec (not root?)"
    low=$((low + 1))
    state=off
  fi
done

((low)) && differs=1
echo "summary: busy_poll=$state"
exit "$differs"
