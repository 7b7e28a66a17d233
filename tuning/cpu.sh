#!/usr/bin/env bash
# CPU frequency governor and core isolation for shard cores. A shard thread spins through bursts
# and sleeps between them; a governor other than `performance` lowers the clock in the gaps and
# pays the ramp-up on the next burst. Isolation (isolcpus/nohz_full/rcu_nocbs on the kernel
# command line) keeps other tasks, the scheduler tick and RCU callbacks off the shard cores; it
# needs a reboot, so it is advice only and never changes the exit status.
#
#   tuning/cpu.sh --check [--cores LIST]
#   sudo tuning/cpu.sh [--cores LIST]          # sets the `performance` governor
set -euo pipefail
# shellcheck source=tuning/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage="usage: $0 [--check] [--cores LIST]"
check_only=0
cores=""
while (($#)); do
  case "$1" in
    --check) check_only=1 ;;
    --cores)
      if [[ -z "${2:-}" ]] || ! expand_cpus "$2" >/dev/null; then usage_error "$usage"; fi
      cores=$2
      shift
      ;;
    *) usage_error "$usage" ;;
  esac
  shift
done

# Governor: every CPU (or the shard cores when given) should run `performance`.
if [[ -n "$cores" ]]; then
  cpus=$(expand_cpus "$cores")
else
  cpus=$(for d in "$SYS"/devices/system/cpu/cpu[0-9]*; do
    if [[ -d "$d" ]]; then echo "${d##*cpu}"; fi
  done | sort -n | tr '\n' ' ')
fi
governor=n/a
low=0
seen=0
declare -A count=()
for c in $cpus; do
  f="$SYS/devices/system/cpu/cpu$c/cpufreq/scaling_governor"
  [[ -r "$f" ]] || continue
  seen=$((seen + 1))
  have=$(<"$f")
  if [[ "$have" == performance ]]; then
    count[$have]=$((${count[$have]:-0} + 1))
    continue
  fi
  if ((check_only)); then
    low=$((low + 1))
    count[$have]=$((${count[$have]:-0} + 1))
  elif printf 'performance\n' >"$f" 2>/dev/null; then
    say set "cpu$c governor" "performance (was $have)"
    count[performance]=$((${count[performance]:-0} + 1))
  else
    say LOW "cpu$c governor" "$have, cannot set performance (not root, or the driver does not offer it)"
    low=$((low + 1))
    count[$have]=$((${count[$have]:-0} + 1))
  fi
done
if ((seen == 0)); then
  say skip governor "no cpufreq scaling_governor (a virtual machine, or a driver without frequency scaling)"
else
  tally=$(for g in "${!count[@]}"; do echo "$g=${count[$g]}"; done | sort | tr '\n' ' ')
  if ((low)); then
    say LOW governor "${tally% }; want performance on all $seen"
    governor=low
    differs=1
  else
    say ok governor "performance on all $seen"
    governor=performance
  fi
fi

# Isolation, from the kernel command line.
cmdline=$(cat "$PROC/cmdline" 2>/dev/null || true)
param() { { grep -oE "(^| )$1=[^ ]+" <<<"$cmdline" || true; } | tail -1 | sed "s/^ *$1=//"; }
isolcpus=$(param isolcpus)
nohz_full=$(param nohz_full)
rcu_nocbs=$(param rcu_nocbs)
isolation=none
if [[ -n "$isolcpus" || -n "$nohz_full" ]]; then
  isolation="isolcpus:${isolcpus:--}/nohz_full:${nohz_full:--}"
  say note isolation "isolcpus=${isolcpus:-unset} nohz_full=${nohz_full:-unset} rcu_nocbs=${rcu_nocbs:-unset}"
  if [[ -n "$cores" ]]; then
    # isolcpus may start with flags (managed_irq,domain,...): keep only the CPU list part.
    iso_list=$(expand_cpus "$(sed -E 's/^([a-z_]+,)*//' <<<"$isolcpus")" 2>/dev/null || true)
    for c in $(expand_cpus "$cores"); do
      if [[ " $iso_list " != *" $c "* ]]; then
        say note isolation "shard core $c is not in isolcpus"
      fi
    done
  fi
else
  list=${cores:-<shard cores>}
  say note isolation "none; for dedicated shard cores add 'isolcpus=managed_irq,domain,$list nohz_full=$list rcu_nocbs=$list' to the kernel command line (reboot), and leave core 0 to the system"
fi

echo "summary: cpu_governor=$governor isolation=$isolation"
exit "$differs"
