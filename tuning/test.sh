#!/usr/bin/env bash
# Tests of the tuning scripts. Every script runs with --check on this host (whatever it is: the
# exit status must be 0 or 1 and every line must follow the output contract of lib.sh); then each
# script's decisions and its apply/re-apply idempotency are checked against fake /proc, /sys and
# /etc trees (TUNING_PROC, TUNING_SYS, TUNING_ETC). Never applies anything to the real host.
#
#   tuning/test.sh      # exit 0 when every test passes
# shellcheck disable=SC2015 # pass() always succeeds, so "A && pass || fail" is if-then-else
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() {
  failed=$((failed + 1))
  echo "FAIL - $1"
  if [[ -n "${2:-}" ]]; then while IFS= read -r l; do echo "       | $l"; done <<<"$2"; fi
}

# runs SCRIPT ARGS... with the current fake roots; sets $out and $rc
go() {
  out=$(bash "$here/$1" "${@:2}" 2>&1)
  rc=$?
}
expect_rc() { # want description
  if [[ "$rc" == "$1" ]]; then pass "$2 (exit $rc)"; else fail "$2: exit $rc, want $1" "$out"; fi
}
expect_line() { # regex description
  if grep -qE "$1" <<<"$out"; then pass "$2"; else fail "$2: no line matching /$1/" "$out"; fi
}
expect_no_line() { # regex description
  if grep -qE "$1" <<<"$out"; then fail "$2: unexpected line matching /$1/" "$out"; else pass "$2"; fi
}
# Every line is a finding, a section header or the summary, and the summary comes last.
expect_format() { # description
  local bad
  bad=$(grep -vE '^(ok|LOW|set|skip|note) +[^:]+: .+$|^summary: [a-z_]+=.+$|^==( .+)?$|^profile=(tuned|default|partial) .*kernel=.+$' <<<"$out" | grep -v '^$' || true)
  if [[ -n "$bad" ]]; then
    fail "$1: lines outside the output contract" "$bad"
  elif ! tail -1 <<<"$out" | grep -qE '^(summary: |profile=)'; then
    fail "$1: the summary is not the last line" "$out"
  else
    pass "$1: output follows the contract"
  fi
}

# --- 1. Every script, --check, on this host -------------------------------------------------
unset TUNING_PROC TUNING_SYS TUNING_ETC
for cmd in "sysctl.sh --check" "busy-poll.sh --check" "memlock.sh --check" "cpu.sh --check" \
  "irq-affinity.sh --check --iface lo --cores 0" "apply.sh --check" "apply.sh --summary"; do
  read -ra argv <<<"$cmd"
  go "${argv[@]}"
  if [[ "$rc" == 0 || "$rc" == 1 ]]; then pass "host: $cmd exits 0 or 1 ($rc)"; else fail "host: $cmd exits $rc" "$out"; fi
  expect_format "host: $cmd"
done
go apply.sh --summary
if [[ $(wc -l <<<"$out") == 1 ]] && grep -qE '^profile=(tuned|default|partial) sysctl=' <<<"$out"; then
  pass "host: --summary prints one profile line"
else
  fail "host: --summary prints one profile line" "$out"
fi
for cmd in "sysctl.sh --bogus" "busy-poll.sh --usec x" "memlock.sh --shards 0" "cpu.sh --cores x" \
  "irq-affinity.sh --check" "irq-affinity.sh --iface lo" "apply.sh --bogus"; do
  read -ra argv <<<"$cmd"
  go "${argv[@]}"
  expect_rc 2 "usage error: $cmd"
done

# --- 2. Fake trees ----------------------------------------------------------------------------
export TUNING_PROC="$work/proc" TUNING_SYS="$work/sys" TUNING_ETC="$work/etc"
mkdir -p "$TUNING_PROC/sys/net/core" "$TUNING_PROC/self" "$TUNING_SYS" "$TUNING_ETC"
core() { printf '%s\n' "$2" >"$TUNING_PROC/sys/net/core/$1"; }
stock() {
  core rmem_max 212992; core wmem_max 212992; core rmem_default 212992; core wmem_default 212992
  core netdev_max_backlog 1000; core netdev_budget 300; core busy_read 0; core busy_poll 0
}
stock

# sysctl.sh
go sysctl.sh --check
expect_rc 1 "sysctl: stock kernel values are reported"
if [[ $(grep -c '^LOW ' <<<"$out") == 6 ]]; then pass "sysctl: six settings LOW"; else fail "sysctl: six settings LOW" "$out"; fi
expect_line '^summary: sysctl=low\(6\)$' "sysctl: summary counts them"
go sysctl.sh
expect_rc 0 "sysctl: apply"
[[ $(<"$TUNING_PROC/sys/net/core/rmem_max") == 33554432 ]] && pass "sysctl: rmem_max written" || fail "sysctl: rmem_max written"
go sysctl.sh
expect_no_line '^set ' "sysctl: applying again changes nothing"
go sysctl.sh --check
expect_rc 0 "sysctl: in force after apply"
core rmem_max 67108864
go sysctl.sh --check
expect_line '^ok +net.core.rmem_max: 67108864' "sysctl: a larger value than wanted is fine"
rm "$TUNING_PROC/sys/net/core/netdev_budget"
go sysctl.sh --check
expect_line '^skip +net.core.netdev_budget: not available' "sysctl: a missing knob is skipped"
expect_rc 0 "sysctl: a missing knob does not fail the check"
core netdev_budget 1200

# busy-poll.sh
go busy-poll.sh --check
expect_rc 1 "busy-poll: off is reported"
expect_line '^summary: busy_poll=off$' "busy-poll: summary off"
go busy-poll.sh --usec 30
expect_rc 0 "busy-poll: apply 30 us"
[[ $(<"$TUNING_PROC/sys/net/core/busy_poll") == 30 ]] && pass "busy-poll: busy_poll written" || fail "busy-poll: busy_poll written"
go busy-poll.sh --check --usec 30
expect_rc 0 "busy-poll: in force after apply"
expect_line '^summary: busy_poll=on$' "busy-poll: summary on"
go busy-poll.sh --off
go busy-poll.sh --check --off
expect_rc 0 "busy-poll: --off turns it off"

# memlock.sh
limits() { printf 'Limit                     Soft Limit           Hard Limit           Units\nMax locked memory         %s %s bytes\n' "$1" "$2" >"$TUNING_PROC/self/limits"; }
limits 65536 65536
go memlock.sh --check --shards 4
expect_rc 1 "memlock: 64 KiB is too low for 4 shards"
expect_line '^LOW +memlock: soft limit 64 KiB < 2048 KiB for 4 io_uring shards' "memlock: says what is needed"
expect_line '^note +memlock: .*LimitMEMLOCK=' "memlock: advises LimitMEMLOCK"
limits unlimited unlimited
go memlock.sh --check --shards 64
expect_rc 0 "memlock: unlimited is enough"
limits 8388608 8388608
go memlock.sh --check --shards 16
expect_rc 0 "memlock: 8 MiB is enough for 16 shards"
go memlock.sh --shards 16 --unit ringcast.service
expect_rc 0 "memlock: apply writes limits.d and a systemd drop-in"
grep -q 'LimitMEMLOCK=67108864' "$TUNING_ETC/systemd/system/ringcast.service.d/memlock.conf" 2>/dev/null &&
  pass "memlock: drop-in has LimitMEMLOCK" || fail "memlock: drop-in has LimitMEMLOCK"
go memlock.sh --shards 16 --unit ringcast.service
expect_no_line '^set ' "memlock: applying again changes nothing"

# cpu.sh
go cpu.sh --check
expect_rc 0 "cpu: no cpufreq is a skip"
expect_line '^skip +governor: no cpufreq' "cpu: says why it skips"
for c in 0 1 2 3; do
  mkdir -p "$TUNING_SYS/devices/system/cpu/cpu$c/cpufreq"
  echo powersave >"$TUNING_SYS/devices/system/cpu/cpu$c/cpufreq/scaling_governor"
done
echo "BOOT_IMAGE=/vmlinuz root=/dev/sda1 quiet" >"$TUNING_PROC/cmdline"
go cpu.sh --check
expect_rc 1 "cpu: powersave is reported"
expect_line '^LOW +governor: powersave=4 ; want performance on all 4|^LOW +governor: powersave=4; want performance on all 4' "cpu: counts governors"
expect_line '^note +isolation: none; .*isolcpus=' "cpu: advises isolation"
go cpu.sh --cores 2-3
expect_rc 0 "cpu: apply performance to the shard cores"
[[ $(<"$TUNING_SYS/devices/system/cpu/cpu2/cpufreq/scaling_governor") == performance &&
  $(<"$TUNING_SYS/devices/system/cpu/cpu0/cpufreq/scaling_governor") == powersave ]] &&
  pass "cpu: only the shard cores changed" || fail "cpu: only the shard cores changed"
go cpu.sh --check --cores 2-3
expect_rc 0 "cpu: shard cores in force"
echo "root=/dev/sda1 isolcpus=managed_irq,domain,2-3 nohz_full=2-3 rcu_nocbs=2-3" >"$TUNING_PROC/cmdline"
go cpu.sh --check --cores 1-3
expect_line '^note +isolation: shard core 1 is not in isolcpus' "cpu: finds a shard core outside isolcpus"
expect_no_line 'shard core 2 is not' "cpu: isolcpus flags are not mistaken for cores"
expect_line '^summary: cpu_governor=low isolation=isolcpus:managed_irq,domain,2-3/nohz_full:2-3$' "cpu: summary names the isolation"

# irq-affinity.sh: a two-queue NIC eth9 with a config vector, and loopback-like lo9.
dev="$TUNING_SYS/class/net/eth9"
mkdir -p "$dev/device/msi_irqs" "$dev/queues/rx-0" "$dev/queues/rx-1" "$dev/queues/tx-0" "$dev/queues/tx-1" \
  "$TUNING_SYS/class/net/lo9/queues/rx-0"
echo 0 >"$TUNING_SYS/class/net/lo9/queues/rx-0/rps_cpus"
cat >"$TUNING_PROC/interrupts" <<'IRQ'
           CPU0       CPU1       CPU2       CPU3
 40:          0          0          0          0  PCI-MSIX-0000:03:00.0   0-edge      eth9-config
 41:        100          0          0          0  PCI-MSIX-0000:03:00.0   1-edge      eth9-TxRx-0
 42:          0        200          0          0  PCI-MSIX-0000:03:00.0   2-edge      eth9-TxRx-1
 50:          5          0          0          0  PCI-MSIX-0000:04:00.0   0-edge      other0-TxRx-0
IRQ
for i in 40 41 42; do
  touch "$dev/device/msi_irqs/$i"
done
for i in 40 41 42 50; do
  mkdir -p "$TUNING_PROC/irq/$i"
  echo 0-3 >"$TUNING_PROC/irq/$i/smp_affinity_list"
done
for q in rx-0 rx-1; do echo 0 >"$dev/queues/$q/rps_cpus"; done
for q in tx-0 tx-1; do echo 0 >"$dev/queues/$q/xps_cpus"; done
go irq-affinity.sh --iface eth9 --cores 2-3 --check
expect_rc 1 "irq: spread IRQs are reported"
expect_line '^LOW +irq 41 \(eth9-TxRx-0\): on cores 0-3, want 2$' "irq: queue 0 belongs on core 2"
expect_line '^LOW +irq 42 \(eth9-TxRx-1\): on cores 0-3, want 3$' "irq: queue 1 belongs on core 3"
expect_no_line 'irq 40' "irq: the config vector is left alone"
expect_no_line 'irq 50' "irq: another device's IRQ is left alone"
expect_line '^LOW +eth9 rx-1 rps: mask 0, want core 3' "irq: RPS of queue 1 is checked"
go irq-affinity.sh --iface eth9 --cores 2-3
expect_rc 0 "irq: apply"
[[ $(<"$TUNING_PROC/irq/41/smp_affinity_list") == 2 && $(<"$TUNING_PROC/irq/42/smp_affinity_list") == 3 &&
  $(<"$TUNING_PROC/irq/40/smp_affinity_list") == 0-3 ]] && pass "irq: affinities written" || fail "irq: affinities written"
[[ $(<"$dev/queues/rx-1/rps_cpus") == 00000008 && $(<"$dev/queues/tx-0/xps_cpus") == 00000004 ]] &&
  pass "irq: RPS and XPS masks written" || fail "irq: RPS and XPS masks written" "$(cat "$dev"/queues/*/*_cpus)"
go irq-affinity.sh --iface eth9 --cores 2-3
expect_no_line '^set ' "irq: applying again changes nothing"
go irq-affinity.sh --iface eth9 --cores 2-3 --check
expect_rc 0 "irq: in force after apply"
echo 8 >"$dev/queues/rx-1/rps_cpus"
go irq-affinity.sh --iface eth9 --cores 2-3 --check
expect_line '^ok +eth9 rx-1 rps: core 3' "irq: masks compare without leading zeros"
go irq-affinity.sh --iface eth9 --cores 2 --check
expect_line '^LOW +irq 42 \(eth9-TxRx-1\): on cores 3, want 2$' "irq: more queues than cores wrap round"
go irq-affinity.sh --iface nosuch0 --cores 1 --check
expect_rc 0 "irq: a missing interface is a skip"
expect_line '^skip +nosuch0: no such network interface' "irq: says the interface is missing"
go irq-affinity.sh --iface lo9 --cores 1 --check
expect_rc 0 "irq: an interface without queue IRQs is a skip"
expect_line '^summary: irq=skip\(no irqs\)$' "irq: summary says skipped"

# apply.sh over the fake host: everything in force, then a stock kernel.
go apply.sh --check --iface eth9 --cores 2-3 --shards 2
expect_rc 1 "apply: busy polling still off, so not tuned"
expect_line '^profile=partial ' "apply: partial profile"
go apply.sh --iface eth9 --cores 2-3 --shards 2
expect_rc 0 "apply: applies everything"
go apply.sh --check --iface eth9 --cores 2-3 --shards 2
expect_rc 0 "apply: tuned after apply"
expect_line '^profile=tuned sysctl=ok busy_poll=on memlock=ok irq=ok cpu_governor=performance ' "apply: profile line"
expect_format "apply: fake host"
stock
for c in 0 1 2 3; do echo powersave >"$TUNING_SYS/devices/system/cpu/cpu$c/cpufreq/scaling_governor"; done
for i in 41 42; do echo 0-3 >"$TUNING_PROC/irq/$i/smp_affinity_list"; done
go apply.sh --summary --iface eth9 --cores 2-3 --shards 2
expect_rc 0 "apply: --summary exits 0"
expect_line '^profile=default sysctl=low\(6\) busy_poll=off memlock=ok irq=low\(' "apply: a stock kernel is the default profile"

echo "$passed passed, $failed failed"
((failed == 0))
