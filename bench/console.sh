#!/usr/bin/env bash
# Console benchmark: one real orch node serving the console on a plain listener, NODES hollow
# nodes (`orch debug hollow`, one process) and SERVICES x REPLICAS tasks running on them. Then,
# in headless Chromium (test/integration/browser.py, the DevTools protocol): the load time of
# each console page (navigation to the page drawn with its data, median of RUNS), and the time
# for a scale done in the page (dialog confirmed) to show in `orch services -o json`. The peer
# in the same run is the CLI: `orch services|nodes|ps -o json` for the same data.
# See bench/README.md for the figures observed.
#
# Knobs (environment): NODES (1000), SERVICES (10), REPLICAS (1000 per service), RUNS (5),
# RUN_DELAY (ms, 300), KEEP (1 = keep the temp dir), ORCH_BIN (use this binary instead of
# building a ReleaseSafe one), BUDGET (seconds, 600). Every wait is bounded; the script stops
# what it started by pid.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODES=${NODES:-1000}
SERVICES=${SERVICES:-10}
REPLICAS=${REPLICAS:-1000}
RUNS=${RUNS:-5}
RUN_DELAY=${RUN_DELAY:-300}
BUDGET=${BUDGET:-600}
TOTAL=$((SERVICES * REPLICAS))
START_S=$(date +%s)
WORK=$(mktemp -d /tmp/orch-bconsole.XXXXXX)
O=$WORK/bin/orch
HOLLOW_PID=""
declare -a PICKED=()

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

node_pid() {
	local pid
	pid=$(cat "$1/orch.pid" 2>/dev/null) || return 1
	[[ -n $pid ]] && grep -qs -- "$1" "/proc/$pid/cmdline" && echo "$pid"
}
cleanup() {
	local pid
	set +e
	if [[ -n $HOLLOW_PID ]] && grep -qs -- "$WORK/hollow" "/proc/$HOLLOW_PID/cmdline"; then
		kill -9 "$HOLLOW_PID" 2>/dev/null
	fi
	pid=$(node_pid "$WORK/n1") && kill -9 "$pid" 2>/dev/null
	cleanup_nodes
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v chromium >/dev/null || die "chromium is not installed (vendor/manifest; scripts/setup.sh)"
if [[ -n ${ORCH_BIN:-} ]]; then
	O=$ORCH_BIN
	log "using $O (ORCH_BIN)"
else
	log "building orch (ReleaseSafe) into $WORK/bin"
	(cd "$ROOT" && vendor/zig/zig build -Doptimize=ReleaseSafe -p "$WORK" >"$WORK/build.log" 2>&1) ||
		{ tail -20 "$WORK/build.log" >&2; die "zig build failed"; }
fi

pick_port P1
pick_port CP
out=$(timeout 60 "$O" init --listen "127.0.0.1:$P1" --data-dir "$WORK/n1" --name n1 --detach \
	--console-listen "127.0.0.1:$CP") || die "orch init failed: $out"
TOKEN=$(grep -o 'ORCH2-[0-9a-f-]*' <<<"$out" | head -1)
sh "$ROOT/scripts/build-demo-image.sh" "$WORK/img" >/dev/null || die "build-demo-image.sh failed"
timeout 60 "$O" -D "$WORK/n1" image load "$WORK/img/demo-docker.tar" >/dev/null || die "image load failed"

pick_port HP
log "starting $NODES hollow nodes (one process)"
ORCH_TOKEN="$TOKEN" "$O" -D "$WORK/hollow" debug hollow --join "127.0.0.1:$P1" --nodes "$NODES" \
	--listen-base 127.0.40.1 --port "$HP" --run-delay "$RUN_DELAY" --label pool=hollow >"$WORK/hollow.log" 2>&1 &
HOLLOW_PID=$!
disown "$HOLLOW_PID"
deadline=$(($(date +%s) + 300))
until grep -qs "all $NODES nodes ready" "$WORK/hollow.log"; do
	budget
	kill -0 "$HOLLOW_PID" 2>/dev/null || { tail -5 "$WORK/hollow.log" >&2; die "the hollow process died"; }
	(($(date +%s) < deadline)) || die "not all $NODES hollow nodes ready in 300 s"
	sleep 0.5
done
{
	echo "services:"
	for i in $(seq 1 "$SERVICES"); do
		printf '  s%03d:\n    image: demo:latest\n    deploy:\n      replicas: %d\n' "$i" "$REPLICAS"
		printf '      placement:\n        constraints: ["node.labels.pool == hollow"]\n'
	done
} >"$WORK/spec.yaml"
log "deploying $SERVICES x $REPLICAS = $TOTAL tasks"
timeout 120 "$O" -D "$WORK/n1" deploy -f "$WORK/spec.yaml" >/dev/null || die "orch deploy failed"
deadline=$(($(date +%s) + 300))
while :; do
	budget
	running=$(timeout 20 "$O" -D "$WORK/n1" services -o json 2>/dev/null |
		python3 -c 'import json, sys; print(sum(s["running"] for s in json.load(sys.stdin)))' || echo 0)
	((running >= TOTAL)) && break
	(($(date +%s) < deadline)) || die "only $running of $TOTAL running after 300 s"
	sleep 1
done
log "$TOTAL tasks running on $NODES hollow nodes; measuring in Chromium"
ORCH=$O DATA=$WORK/n1 URL="http://127.0.0.1:$CP/" RUNS=$RUNS NODES=$NODES TASKS=$TOTAL \
	python3 "$ROOT/bench/console_pages.py" || die "console_pages.py failed"

