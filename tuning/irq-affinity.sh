#!/usr/bin/env bash
# Keeps each NIC queue on one shard core: queue i's interrupts (smp_affinity_list), its receive
# packet steering (rx-i/rps_cpus) and its transmit queue selection (tx-i/xps_cpus) all go to the
# i-th core of --cores (round robin when there are more queues than cores). The softirq work for
# a queue then runs on the core whose shard reads it, and nothing crosses cores.
#
# With --check, only reports what differs (exit 1). Skips cleanly, exit 0, when the interface or
# its queue interrupts do not exist (loopback, a virtual NIC without MSI-X). irqbalance, when it
# runs, rewrites IRQ affinities: stop it or ban these IRQs.
#
#   tuning/irq-affinity.sh --iface eth0 --cores 1-4 --check
#   sudo tuning/irq-affinity.sh --iface eth0 --cores 1-4
set -euo pipefail
# shellcheck source=tuning/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage="usage: $0 --iface IFACE --cores LIST [--check]"
check_only=0
iface=""
cores=""
while (($#)); do
  case "$1" in
    --check) check_only=1 ;;
    --iface)
      [[ -n "${2:-}" ]] || usage_error "$usage"
      iface=$2
      shift
      ;;
    --cores)
      [[ -n "${2:-}" ]] || usage_error "$usage"
      cores=$2
      shift
      ;;
    *) usage_error "$usage" ;;
  esac
  shift
done
[[ -n "$iface" && -n "$cores" ]] || usage_error "$usage"
expanded=$(expand_cpus "$cores") || usage_error "$usage (bad core list '$cores')"
read -ra core_list <<<"$expanded"
((${#core_list[@]})) || usage_error "$usage (empty core list)"

dev="$SYS/class/net/$iface"
if [[ ! -e "$dev" ]]; then
  say skip "$iface" "no such network interface"
  echo "summary: irq=skip(no $iface)"
  exit 0
fi

# The queue's core: queue i -> core_list[i mod n].
core_of() { echo "${core_list[$(($1 % ${#core_list[@]}))]}"; }

# Interrupts of the device: MSI vectors of the device, or of its parent (virtio sits below the
# PCI function that owns the vectors), plus any /proc/interrupts line that names the interface.
declare -A irqs=()
for d in "$dev/device/msi_irqs" "$dev/device/../msi_irqs"; do
  if [[ -d "$d" ]]; then
    for f in "$d"/*; do [[ -e "$f" ]] && irqs[${f##*/}]=1; done
  fi
done
while read -r num _; do irqs[${num%:}]=1; done < <(grep -E "[ -]$iface([-@ ]|$)" "$PROC/interrupts" 2>/dev/null || true)
# A virtio NIC's vectors are named after the virtio device (virtio2-input.0), not the interface.
virtio=""
if [[ -L "$dev/device" ]]; then
  virtio=$(basename "$(readlink "$dev/device")")
  [[ "$virtio" == virtio* ]] || virtio=""
fi

irq_name() { # the last column of /proc/interrupts for IRQ $1
  awk -v n="$1:" '$1 == n { print $NF }' "$PROC/interrupts" 2>/dev/null
}

low=0
queues=0
for irq in $(printf '%s\n' "${!irqs[@]}" | sort -n); do
  name=$(irq_name "$irq")
  [[ -n "$name" ]] || continue
  if [[ -n "$virtio" && "$name" != "$virtio"-* ]] && [[ "$name" != *"$iface"* ]]; then
    continue # a vector of a sibling device on the same PCI function
  fi
  # Configuration, control and event vectors carry no packets.
  if [[ "$name" =~ (config|async|ctrl|fw|err|misc|event|adminq|mbx|lsc) ]]; then
    continue
  fi
  # The queue number: the last run of digits in the name (before any @pci suffix).
  base=${name%%@*}
  [[ "$base" =~ ([0-9]+)[^0-9]*$ ]] || continue
  q=${BASH_REMATCH[1]}
  want=$(core_of "$q")
  queues=$((queues + 1))
  f="$PROC/irq/$irq/smp_affinity_list"
  have=$(cat "$f" 2>/dev/null || echo "?")
  if [[ "$have" == "$want" ]]; then
    say ok "irq $irq ($name)" "on core $want"
  elif ((check_only)); then
    say LOW "irq $irq ($name)" "on cores $have, want $want"
    low=$((low + 1))
  elif printf '%s\n' "$want" >"$f" 2>/dev/null; then
    say set "irq $irq ($name)" "core $want (was $have)"
  else
    say skip "irq $irq ($name)" "affinity not writable (kernel-managed vector, or not root); currently $have"
  fi
done

if ((queues == 0)); then
  say skip "$iface" "no queue interrupts found (loopback, or a NIC without MSI-X vectors): nothing to pin"
  echo "summary: irq=skip(no irqs)"
  exit 0
fi

# RPS and XPS per queue.
for qdir in "$dev"/queues/rx-* "$dev"/queues/tx-*; do
  [[ -d "$qdir" ]] || continue
  qname=${qdir##*/}
  q=${qname#*-}
  case "$qname" in
    rx-*) f="$qdir/rps_cpus" what="rps" ;;
    *) f="$qdir/xps_cpus" what="xps" ;;
  esac
  [[ -e "$f" ]] || continue
  want_core=$(core_of "$q")
  want=$(cpu_mask "$want_core")
  if ! have=$(cat "$f" 2>/dev/null); then
    say skip "$iface $qname $what" "not readable on this device"
    continue
  fi
  if [[ "$(mask_norm "$have")" == "$(mask_norm "$want")" ]]; then
    say ok "$iface $qname $what" "core $want_core (mask $have)"
  elif ((check_only)); then
    say LOW "$iface $qname $what" "mask $have, want core $want_core (mask $want)"
    low=$((low + 1))
  elif printf '%s\n' "$want" >"$f" 2>/dev/null; then
    say set "$iface $qname $what" "core $want_core (was mask $have)"
  else
    say LOW "$iface $qname $what" "cannot write $f (not root?)"
    low=$((low + 1))
  fi
done

if pgrep -x irqbalance >/dev/null 2>&1; then
  say note irqbalance "running: it will move these IRQs again; stop it or ban them (IRQBALANCE_BANNED_CPULIST=$cores)"
fi
say note "$iface steering" "RSS spreads flows by hash; to land a shard's traffic on its own queue, add an ntuple rule per shard port: ethtool -N $iface flow-type udp4 dst-port <RTC_MIN_PORT+i> action <i>"

((low)) && differs=1
if ((low)); then
  state="low($low)"
else
  state=ok
fi
echo "summary: irq=$state"
exit "$differs"
