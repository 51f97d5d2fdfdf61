#!/usr/bin/env bash
# tests/cluster/failover.sh — a three-node RabbitMQ cluster on this machine,
# for warren's failover test (tests/integration/test_fault_cluster.py).
#
#   tests/cluster/failover.sh up          start the three nodes fresh, join the 2nd and 3rd to the 1st
#   tests/cluster/failover.sh down        stop the three nodes (data kept until the next `up`)
#   tests/cluster/failover.sh stop N      stop node N (1, 2, 3 or its name) cleanly
#   tests/cluster/failover.sh kill N      SIGKILL node N
#   tests/cluster/failover.sh start N     start node N again with its data; waits until it rejoined
#   tests/cluster/failover.sh running     names of the nodes the cluster sees running
#   tests/cluster/failover.sh urls        the three AMQP URLs, comma-separated, first node first
#   tests/cluster/failover.sh env         export lines (WARREN_CLUSTER_URLS, ...)
#   tests/cluster/failover.sh run         up, the Python failover test, down (even when it fails)
#
# The nodes are scripts/broker nodes (warren-test-NAME@localhost, data in
# /tmp/warren-broker-NAME-UID/, 127.0.0.1 only), named by
# WARREN_CLUSTER_NAMES (default "c1 c2 c3"), with AMQP ports
# WARREN_CLUSTER_PORT, +10, +20 (default 24700, below the kernel's ephemeral port range so a client socket
# cannot hold it; Erlang distribution on AMQP+1).
# They share the rabbitmq user's Erlang cookie, so they can cluster; the
# node `test` of scripts/test and anything on 5672 are never touched.
# Joining is RabbitMQ's own: stop_app, join_cluster, start_app. A node
# stopped with `stop` and started with `start` keeps its data and so
# rejoins by itself; `start` checks that it did.
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BROKER=${WARREN_TEST_BROKER:-$ROOT/scripts/broker}
read -r -a NAMES <<< "${WARREN_CLUSTER_NAMES:-c1 c2 c3}"
[ "${#NAMES[@]}" = 3 ] || { echo "failover: WARREN_CLUSTER_NAMES must name 3 nodes" >&2; exit 2; }
BASE_PORT=${WARREN_CLUSTER_PORT:-24700}

say() { printf 'failover: %s\n' "$*" >&2; }
die() { printf 'failover: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

for n in "${NAMES[@]}"; do
    [ "$n" != test ] || die "the cluster must not use the node name 'test' (scripts/test's node)"
done

node_of() { echo "warren-test-$1@localhost"; }

name_of() {  # name_of N|NAME
    case "$1" in
        1|2|3) echo "${NAMES[$(($1 - 1))]}" ;;
        *) for n in "${NAMES[@]}"; do [ "$n" = "$1" ] && { echo "$n"; return 0; }; done
           die "no cluster node '$1' (nodes: ${NAMES[*]})" ;;
    esac
}

port_of() {
    local i
    for i in 0 1 2; do
        [ "${NAMES[$i]}" = "$1" ] && { echo $((BASE_PORT + 10 * i)); return 0; }
    done
    die "no cluster node '$1'"
}

ctl() { "$BROKER" ctl "$@"; }

running_nodes() {  # running_nodes NAME: the cluster's running nodes as that node sees them
    ctl "$1" cluster_status --formatter json 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin).get("running_nodes", [])))'
}

# await_running NAME COUNT TIMEOUT: until NAME sees COUNT running nodes.
await_running() {
    local deadline=$(( $(date +%s) + $3 )) seen=""
    while :; do
        seen=$(running_nodes "$1" || true)
        [ "$(wc -w <<< "$seen")" -ge "$2" ] && return 0
        [ "$(date +%s)" -lt "$deadline" ] || { say "$1 sees running: ${seen:-none}"; return 1; }
        sleep 0.5
    done
}

start_node() {  # start_node NAME [--fresh]
    local port
    port=$(port_of "$1")
    WARREN_TEST_MANAGEMENT=0 "$BROKER" start ${2:-} --port "$port" --dist-port $((port + 1)) "$1"
}

do_up() {
    local t0 pids=() i rc=0
    t0=$(now)
    # The three start side by side (each holds its own lock).
    for n in "${NAMES[@]}"; do
        start_node "$n" --fresh & pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || rc=1; done
    [ "$rc" = 0 ] || die "a node did not start"
    local first=${NAMES[0]}
    local out
    for n in "${NAMES[@]:1}"; do
        # join_cluster prints harmless errors about tracking tables of
        # nodes still starting; shown only when a step fails.
        out=$( { ctl "$n" stop_app && ctl "$n" join_cluster "$(node_of "$first")" &&
                 ctl "$n" start_app; } 2>&1 ) || { printf '%s\n' "$out" >&2; die "$n could not join $first"; }
    done
    await_running "$first" 3 60 || die "the cluster did not reach 3 running nodes"
    say "cluster up: $(running_nodes "$first") ($(elapsed "$t0") s)"
}

do_down() {
    local n pids=() rc=0 i
    for n in "${NAMES[@]}"; do
        "$BROKER" stop "$n" & pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || rc=1; done
    return "$rc"
}

do_start() {
    local name t0 other
    name=$(name_of "$1")
    t0=$(now)
    start_node "$name"
    # It rejoined when a peer counts it among the running nodes again.
    for other in "${NAMES[@]}"; do
        [ "$other" = "$name" ] && continue
        if await_running "$other" 3 90; then
            case " $(running_nodes "$other") " in
                *" $(node_of "$name") "*)
                    say "$name rejoined: $(running_nodes "$other") ($(elapsed "$t0") s)"
                    return 0 ;;
            esac
        fi
        break
    done
    die "$name did not rejoin the cluster"
}

urls() {
    local out="" n
    for n in "${NAMES[@]}"; do
        out+="${out:+,}amqp://guest:guest@127.0.0.1:$(port_of "$n")/"
    done
    echo "$out"
}

cmd=${1:-}
case "$cmd" in
    up) do_up ;;
    down) do_down ;;
    stop) "$BROKER" stop "$(name_of "${2:?node}")" ;;
    kill) "$BROKER" kill "$(name_of "${2:?node}")" ;;
    start) do_start "${2:?node}" ;;
    running) running_nodes "$(name_of "${2:-1}")" ;;
    urls) urls ;;
    env)
        echo "export WARREN_CLUSTER_URLS=$(urls)"
        echo "export WARREN_CLUSTER_NAMES='${NAMES[*]}'"
        echo "export WARREN_CLUSTER_PORT=$BASE_PORT"
        ;;
    run)
        trap 'do_down || true' EXIT
        /usr/bin/python3 "$ROOT/tests/integration/test_fault_cluster.py"
        ;;
    -h|--help|help|"") sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; [ -n "$cmd" ] ;;
    *) die "unknown command '$cmd' (see --help)" ;;
esac
