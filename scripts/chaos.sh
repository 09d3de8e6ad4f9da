#!/bin/sh
# Fault cycles on a lab cluster (every node its own host: test/integration/lab.py), checked
# by the history checker (test/integration/history.py): each cycle kills a node with -9 and
# restarts it, isolates a host, cuts a link both ways or one way, or flaps one, while clients write and
# read through every node; every --round cycles the writes are verified (every acknowledged
# write present, reads linearizable) and every node's state hash compared. Prints the faults
# injected, writes acknowledged and verified, divergences; exits 1 on any finding.
#
# usage: scripts/chaos.sh [--cycles N] [--seed S] [--nodes K] [--round R] [--quiet]
# Needs root (network and mount namespaces) and a built zig-out/bin/orch.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "chaos.sh: needs root (the lab makes network namespaces)" >&2; exit 1; }
[ -x "$here/zig-out/bin/orch" ] || [ -n "${ORCH_BIN:-}" ] || { echo "chaos.sh: build orch first (vendor/zig/zig build)" >&2; exit 1; }
exec python3 "$here/test/integration/chaos.py" "$@"
