#!/usr/bin/env bash
# Runs every tuning script and names the host profile in force:
#   tuned    every setting Ringcast's benchmarks assume is in force (what does not apply to this
#            host, such as a governor in a VM or IRQs without --iface, is skipped)
#   default  none of the tunings is in force (a stock kernel); the memlock limit is a requirement
#            rather than a tuning, so its being sufficient does not make a host "partial"
#   partial  some are
# The last line is a one-line summary a benchmark records next to its numbers, e.g.
#   profile=partial sysctl=low(6) busy_poll=off memlock=ok irq=skip(no --iface) cpu_governor=n/a isolation=none kernel=6.8.0
#
#   tuning/apply.sh --check [--iface IFACE --cores LIST] [--shards N]   # report; exit 1 unless tuned
#   tuning/apply.sh --summary [...]                                     # only the summary line, exit 0
#   sudo tuning/apply.sh [--iface IFACE --cores LIST] [--shards N] [--unit UNIT]   # apply
set -uo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=tuning/lib.sh
source "$here/lib.sh"

usage="usage: $0 [--check|--summary] [--iface IFACE --cores LIST] [--shards N] [--unit UNIT]"
mode=apply
iface=""
cores=""
shards=""
unit=""
while (($#)); do
  case "$1" in
    --check) mode=check ;;
    --summary) mode=summary ;;
    --iface | --cores | --shards | --unit)
      [[ -n "${2:-}" ]] || usage_error "$usage"
      declare "${1#--}=$2"
      shift
      ;;
    *) usage_error "$usage" ;;
  esac
  shift
done
if [[ -n "$iface" && -z "$cores" ]] || [[ -z "$iface" && -n "$cores" && "$mode" == apply ]]; then
  usage_error "$usage (--iface and --cores go together)"
fi

check=()
[[ "$mode" != apply ]] && check=(--check)

summary=()
tuned=0
untuned=0
failed=0
run() { # counts(yes|no) name script args...; "no": its ok does not make a host tuned
  local counts=$1 name=$2 out rc
  shift 2
  out=$(bash "$@" 2>&1)
  rc=$?
  [[ "$mode" != summary ]] && { echo "== $name"; grep -v '^summary:' <<<"$out"; }
  if ((rc == 2)); then
    echo "$name: usage error" >&2
    failed=1
  fi
  local s
  s=$(grep '^summary:' <<<"$out" | tail -1 | sed 's/^summary: *//')
  [[ -n "$s" ]] && summary+=("$s")
  # A script that found something to change counts against "tuned"; one whose settings are all
  # in force counts for it; a skip counts for neither.
  if ((rc == 1)); then
    untuned=$((untuned + 1))
  elif [[ "$counts" == yes ]] && grep -q '^\(ok\|set\) ' <<<"$out"; then
    tuned=$((tuned + 1))
  fi
}

run yes sysctl "$here/sysctl.sh" "${check[@]}"
run yes busy-poll "$here/busy-poll.sh" "${check[@]}"
if [[ -n "$shards" ]]; then
  run no memlock "$here/memlock.sh" "${check[@]}" --shards "$shards" ${unit:+--unit "$unit"}
else
  run no memlock "$here/memlock.sh" "${check[@]}" ${unit:+--unit "$unit"}
fi
if [[ -n "$iface" ]]; then
  run yes irq-affinity "$here/irq-affinity.sh" "${check[@]}" --iface "$iface" --cores "$cores"
else
  [[ "$mode" != summary ]] && { echo "== irq-affinity"; say skip irq "no --iface given"; }
  summary+=("irq=skip(no --iface)")
fi
run yes cpu "$here/cpu.sh" "${check[@]}" ${cores:+--cores "$cores"}

if ((untuned == 0)); then
  profile=tuned
elif ((tuned == 0)); then
  profile=default
else
  profile=partial
fi
line="profile=$profile ${summary[*]} kernel=$(uname -r)"
[[ "$mode" != summary ]] && echo "=="
echo "$line"
((failed)) && exit 2
if [[ "$mode" == apply ]]; then
  # After applying, what could not be applied is what still differs.
  ((untuned)) && exit 1
  exit 0
fi
[[ "$mode" == summary || "$profile" == tuned ]] && exit 0 || exit 1
