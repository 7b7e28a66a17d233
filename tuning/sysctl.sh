#!/usr/bin/env bash
# Socket-buffer and backlog settings a media server needs: without them the kernel drops UDP
# bursts before a shard can read them. With --check, only reports what differs; exit status 1 if
# anything does. Without it, applies the values (as root) for the running system.
#
#   tuning/sysctl.sh --check     # report
#   sudo tuning/sysctl.sh        # apply
set -euo pipefail

declare -A WANT=(
  [net.core.rmem_max]=33554432        # largest receive buffer a socket may ask for (32 MiB)
  [net.core.wmem_max]=33554432        # largest send buffer
  [net.core.rmem_default]=4194304     # default receive buffer for sockets that do not ask
  [net.core.wmem_default]=4194304
  [net.core.netdev_max_backlog]=30000 # packets queued per CPU before the stack processes them
  [net.core.netdev_budget]=1200       # packets one softirq run may process
)

check_only=0
[[ "${1:-}" == "--check" ]] && check_only=1

differs=0
for key in $(printf '%s\n' "${!WANT[@]}" | sort); do
  want=${WANT[$key]}
  have=$(sysctl -n "$key" 2>/dev/null || echo "unavailable")
  if [[ "$have" == "unavailable" ]]; then
    echo "skip  $key: not available on this kernel"
    continue
  fi
  if (( have >= want )); then
    echo "ok    $key = $have (>= $want)"
    continue
  fi
  differs=1
  if (( check_only )); then
    echo "LOW   $key = $have, want >= $want"
  else
    sysctl -q -w "$key=$want"
    echo "set   $key = $want (was $have)"
  fi
done

if (( check_only && differs )); then
  echo "run 'sudo $0' to apply (add the values to /etc/sysctl.d/ to keep them across reboots)"
  exit 1
fi
