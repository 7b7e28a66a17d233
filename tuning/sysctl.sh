#!/usr/bin/env bash
# Socket-buffer and backlog settings a media server needs: without them the kernel drops UDP
# bursts before a shard can read them. With --check, only reports what differs; exit status 1 if
# anything does. Without it, applies the values (as root) for the running system.
#
#   tuning/sysctl.sh --check     # report
#   sudo tuning/sysctl.sh        # apply (add the values to /etc/sysctl.d/ to keep them)
set -euo pipefail
# shellcheck source=tuning/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

declare -A WANT=(
  [net.core.rmem_max]=33554432        # largest receive buffer a socket may ask for (32 MiB)
  [net.core.wmem_max]=33554432        # largest send buffer
  [net.core.rmem_default]=4194304     # default receive buffer for sockets that do not ask
  [net.core.wmem_default]=4194304
  [net.core.netdev_max_backlog]=30000 # packets queued per CPU before the stack processes them
  [net.core.netdev_budget]=1200       # packets one softirq run may process
)

check_only=0
for arg in "$@"; do
  case "$arg" in
    --check) check_only=1 ;;
    *) usage_error "usage: $0 [--check]" ;;
  esac
done

low=0
for key in $(printf '%s\n' "${!WANT[@]}" | sort); do
  want=${WANT[$key]}
  have=$(sysctl_get "$key")
  if [[ -z "$have" ]]; then
    say skip "$key" "not available on this kernel"
    continue
  fi
  if ((have >= want)); then
    say ok "$key" "$have (>= $want)"
    continue
  fi
  if ((check_only)); then
    say LOW "$key" "$have, want >= $want"
    low=$((low + 1))
  elif sysctl_set "$key" "$want" 2>/dev/null; then
    say set "$key" "$want (was $have)"
  else
    say LOW "$key" "$have, cannot set $want (not root?)"
    low=$((low + 1))
  fi
done

if ((low)); then
  differs=1
  ((check_only)) && say note sysctl "run 'sudo $0' to apply; put the values in /etc/sysctl.d/90-ringcast.conf to keep them across reboots"
fi
echo "summary: sysctl=$([[ $low == 0 ]] && echo ok || echo "low($low)")"
exit "$differs"
