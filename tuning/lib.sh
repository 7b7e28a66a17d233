# Shared by the tuning scripts (sourced, not run).
#
# Output contract, one finding per line:
#   ok    NAME: DETAIL     the setting is as the tuned profile wants it
#   LOW   NAME: DETAIL     it is not (only with --check; the script then exits 1)
#   set   NAME: DETAIL     the script changed it
#   skip  NAME: REASON     not applicable on this host (no such NIC, no cpufreq, ...)
#   note  NAME: DETAIL     advice; never changes the exit status
# and last a line `summary: KEY=VALUE ...` that tuning/apply.sh folds into the profile line.
# Exit status: 0 in force or skipped, 1 something differs (or could not be applied), 2 usage.
#
# TUNING_PROC, TUNING_SYS and TUNING_ETC replace /proc, /sys and /etc (tests run the scripts
# against fake trees).

# shellcheck disable=SC2034 # used by the scripts that source this file
PROC=${TUNING_PROC:-/proc}
# shellcheck disable=SC2034
SYS=${TUNING_SYS:-/sys}
# shellcheck disable=SC2034
ETC=${TUNING_ETC:-/etc}

# Set to 1 by a script when something differs; its exit status.
# shellcheck disable=SC2034
differs=0

say() { # status name detail...
  local status=$1 name=$2
  shift 2
  printf '%-5s %s: %s\n' "$status" "$name" "$*"
}

# A sysctl's value read from procfs ("" when the kernel has no such knob).
sysctl_get() {
  local f="$PROC/sys/${1//.//}"
  if [[ -r "$f" ]]; then
    tr -s '[:space:]' ' ' <"$f" | sed 's/ $//'
  fi
}

sysctl_set() {
  local f="$PROC/sys/${1//.//}"
  printf '%s\n' "$2" >"$f"
}

usage_error() {
  echo "$1" >&2
  exit 2
}

# Expands a CPU list such as "2-5,8" into "2 3 4 5 8".
expand_cpus() {
  local part out=()
  IFS=, read -ra parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ "$part" =~ ^([0-9]+)-([0-9]+)$ ]]; then
      for ((c = BASH_REMATCH[1]; c <= BASH_REMATCH[2]; c++)); do out+=("$c"); done
    elif [[ "$part" =~ ^[0-9]+$ ]]; then
      out+=("$part")
    else
      return 1
    fi
  done
  echo "${out[*]}"
}

# The hexadecimal CPU mask (comma-separated 32-bit words, as sysfs writes them) of one CPU.
cpu_mask() {
  local cpu=$1 words=$(($1 / 32 + 1)) i mask=""
  for ((i = words - 1; i >= 0; i--)); do
    local w=0
    ((i == cpu / 32)) && w=$((1 << (cpu % 32)))
    mask+=$(printf '%08x' "$w")
    ((i > 0)) && mask+=","
  done
  echo "$mask"
}

# Normalises a sysfs CPU mask for comparison: no commas, no leading zeros ("0" when empty).
mask_norm() {
  local m=${1//,/}
  while [[ "$m" == 0* ]]; do m=${m#0}; done
  echo "${m:-0}"
}
