#!/bin/sh
# A lab of orch nodes, each its own machine: its own network namespace with an address on a
# lab switch (10.77.0.N, inside namespaces the lab makes), its own mount namespace, task
# bridge, nftables ruleset, service addresses and DNS. Faults between the machines: cuts,
# one-way cuts, isolation, loss, a rate cap, delay. The integration tests use the same code
# (test/integration/lab.py). Run as root; `scripts/lab.sh help` lists the commands.
#   scripts/lab.sh up 3; scripts/lab.sh isolate 1; scripts/lab.sh exec 2 orch -D /var/tmp/orchlab-lab/n2 nodes
#   ORCH_BIN=path  the orch binary (default: zig-out/bin/orch)     NO_COLOR=1  no colours
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "lab: run as root (namespaces need it)" >&2; exit 1; }
exec python3 "$here/test/integration/lab.py" "$@"
