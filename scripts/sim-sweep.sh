#!/bin/sh
# Runs every simulation scenario with seeds 1..N (default 100), split over the machine's
# CPUs, and prints each failure with the command that runs it again, then a count.
#   scripts/sim-sweep.sh [N [NAME...]]   NAME: scenario names (or parts of them) to run
# Exit status 1 when a seed failed. The suite (test/run.py sim) runs a few fixed seeds;
# this finds the rare seeds that break something.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
n=${1:-100}
[ $# -gt 0 ] && shift
case $n in ''|*[!0-9]*|0) echo "sim-sweep: N must be a positive number, got $n" >&2; exit 2;; esac
vendor/zig/zig build -Dwerror=true
jobs=$(nproc 2>/dev/null || echo 1)
[ "$jobs" -gt "$n" ] && jobs=$n
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
per=$(( (n + jobs - 1) / jobs ))
first=1
j=0
start=$(date +%s)
while [ "$first" -le "$n" ]; do
	count=$per
	[ $((first + count - 1)) -gt "$n" ] && count=$((n - first + 1))
	zig-out/bin/orch-sim -n "$count" -f "$first" "$@" >"$out/$j" 2>&1 &
	first=$((first + count))
	j=$((j + 1))
done
wait || true
cat "$out"/* | grep -v '^ok \|passed,.*failed$' || true
cat "$out"/* | awk '/^[0-9]+ passed, [0-9]+ failed$/ { p += $1; f += $3 } END {
	printf "sweep of %d seeds: %d passed, %d failed\n", '"$n"', p, f; exit f > 0 }' || {
	echo "($(($(date +%s) - start)) s)"; exit 1; }
echo "($(($(date +%s) - start)) s)"
