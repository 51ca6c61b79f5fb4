# shellcheck shell=bash
# Shared by the real-server beds (run.sh, live.sh): two network namespaces joined by a veth pair,
# processes stopped by id, everything removed again. Sourced, not run. The caller sets NS_SERVER,
# NS_CLIENT, VETH_SERVER, VETH_CLIENT, SERVER_V4, CLIENT_V4, PREFIX_V4, defines `log`, and declares
# the array `created_namespaces`.

in_server() { ip netns exec "$NS_SERVER" "$@"; }
in_client() { ip netns exec "$NS_CLIENT" "$@"; }

# Ends processes we started, by their ids: SIGTERM to all, then SIGKILL to what is left after 5 s.
stop_pids() {
    local pids=() pid
    for pid in "$@"; do
        [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && pids+=("$pid")
    done
    [[ ${#pids[@]} -gt 0 ]] || return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
        any_running "${pids[@]}" || return 0
        sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
}

# True while one of the processes runs; a zombie (exited, not yet reaped) counts as ended.
any_running() {
    local pid stat state
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        state=${stat##*) }
        [[ ${state:0:1} == Z ]] || return 0
    done
    return 1
}

pid_from_file() {
    if [[ -s $1 ]]; then
        tr -dc '0-9' <"$1"
    fi
}

# The two namespaces, the veth pair between them, loopback and IPv4 addresses, links up.
add_namespace_pair() {
    log "namespaces $NS_SERVER and $NS_CLIENT"
    ip netns add "$NS_SERVER"
    created_namespaces+=("$NS_SERVER")
    ip netns add "$NS_CLIENT"
    created_namespaces+=("$NS_CLIENT")
    in_server ip link set lo up
    in_client ip link set lo up
    add_veth_pair
}

# The veth pair between the namespaces, with its addresses, links up (again, after a deletion).
add_veth_pair() {
    ip link add "$VETH_SERVER" netns "$NS_SERVER" type veth peer name "$VETH_CLIENT" netns "$NS_CLIENT"
    in_server ip addr add "$SERVER_V4/$PREFIX_V4" dev "$VETH_SERVER"
    in_client ip addr add "$CLIENT_V4/$PREFIX_V4" dev "$VETH_CLIENT"
    in_server ip link set "$VETH_SERVER" up
    in_client ip link set "$VETH_CLIENT" up
}

# Stops whatever still runs inside our own namespaces (this run started it) and deletes them.
remove_namespaces() {
    local ns pids
    for ns in "${created_namespaces[@]}"; do
        mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null)
        stop_pids "${pids[@]}"
        ip netns delete "$ns" 2>/dev/null
    done
}
