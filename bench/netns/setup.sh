#!/usr/bin/env bash
# Two network namespaces joined by a veth pair, for benchmarking SFUs whose ICE agent gathers no
# loopback candidates (Janus/libnice) and for running every server the same way:
#   rc-srv  10.77.0.1/24  (the servers)      rc-cli  10.77.0.2/24  (the load generator)
# Idempotent: a second run changes nothing. `setup.sh down` (or teardown.sh) removes both.
# Needs root (or CAP_NET_ADMIN) and `ip netns`. Nothing leaves these namespaces: they have no
# route to anything but each other.
set -euo pipefail

SRV=${RC_NETNS_SRV:-rc-srv}
CLI=${RC_NETNS_CLI:-rc-cli}
SRV_IP=${RC_NETNS_SRV_IP:-10.77.0.1}
CLI_IP=${RC_NETNS_CLI_IP:-10.77.0.2}
MTU=${RC_NETNS_MTU:-1500}

log() { printf '[netns] %s\n' "$*"; }

down() {
    for ns in "$SRV" "$CLI"; do
        if ip netns list | grep -qw "$ns"; then
            ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
            ip netns del "$ns"
            log "removed $ns"
        fi
    done
}

if [ "${1:-up}" = "down" ]; then
    down
    exit 0
fi

exists() { ip netns list | grep -qw "$1"; }

configured() {
    ip -n "$SRV" -4 addr show rc-veth-srv 2>/dev/null | grep -q "inet $SRV_IP/" \
        && ip -n "$CLI" -4 addr show rc-veth-cli 2>/dev/null | grep -q "inet $CLI_IP/" \
        && ip -n "$CLI" link show rc-veth-cli 2>/dev/null | grep -q "state UP"
}

if exists "$SRV" && exists "$CLI" && configured; then
    log "already up: $SRV ($SRV_IP) <-> $CLI ($CLI_IP)"
    exit 0
fi

# Half-made state from an interrupted run: start clean.
down
ip netns add "$SRV"
ip netns add "$CLI"
ip link add rc-veth-srv type veth peer name rc-veth-cli
ip link set rc-veth-srv netns "$SRV"
ip link set rc-veth-cli netns "$CLI"
ip -n "$SRV" addr add "$SRV_IP/24" dev rc-veth-srv
ip -n "$CLI" addr add "$CLI_IP/24" dev rc-veth-cli
for ns in "$SRV" "$CLI"; do
    ip -n "$ns" link set lo up
done
ip -n "$SRV" link set rc-veth-srv mtu "$MTU" up
ip -n "$CLI" link set rc-veth-cli mtu "$MTU" up
# Large socket buffers inside both namespaces (net.core.* is per namespace for these).
for ns in "$SRV" "$CLI"; do
    ip netns exec "$ns" sysctl -qw net.core.rmem_max=33554432 net.core.wmem_max=33554432 \
        net.core.rmem_default=4194304 net.core.wmem_default=4194304 2>/dev/null || true
done
# IPv6 duplicate-address detection would leave link-local addresses "tentative" for a while;
# nothing here uses IPv6, so switch it off on the veth ends.
for ns in "$SRV" "$CLI"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true
done
configured || { log "veth did not come up"; exit 1; }
log "up: $SRV ($SRV_IP) <-> $CLI ($CLI_IP)"
