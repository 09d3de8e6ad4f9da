#!/usr/bin/env bash
# Self-healing benchmark on 3 local nodes (failure timeout 2 s, demo image), medians of RUNS:
#  1. kill -9 of a node (not the leader) running tasks -> every replica of a 6-replica
#     service running again on the other nodes; the peer figure is the failure timeout itself
#     (the part of the time spent waiting on purpose), so "overhead" = median - timeout;
#  2. kill -9 of the leader -> `orch deploy` of a new 2-replica service, issued right after
#     through a survivor, acknowledged and then running; the peer is the same deploy with a
#     healthy leader (acknowledged, running), measured in the same run.
# After each kill the node is resumed (`orch init --data-dir DIR --detach`) and the script
# waits until it is ready and runs exactly the containers of the tasks still assigned to it
# (its replaced ones stopped) before the next run.
# Knobs: RUNS (5), FT (failure timeout, 2s), KEEP (1 = keep the temp dir), ORCH_BIN (use
# this binary instead of building a ReleaseSafe one), BUDGET (seconds, 500).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-5}
FT=${FT:-2s}
BUDGET=${BUDGET:-500}
START_S=$(date +%s)
WORK=$(mktemp -d /tmp/orch-bheal.XXXXXX)
O=$WORK/bin/orch
declare -a PORTS=()

log() { printf '[%3ds] %s\n' "$(($(date +%s) - START_S))" "$*" >&2; }
die() {
	log "FAILED: $*"
	exit 1
}
budget() { (($(date +%s) - START_S < BUDGET)) || die "time budget of ${BUDGET}s exceeded"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
# median min max of a list of numbers
stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
	m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.0f %.0f %.0f", m, v[1], v[NR] }'; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

node_pid() { # DIR -> pid of the orch daemon on DIR, if it is one
	local pid
	pid=$(cat "$1/orch.pid" 2>/dev/null) || return 1
	[[ -n $pid ]] && grep -qs -- "$1" "/proc/$pid/cmdline" && echo "$pid"
}
wait_gone() { # PID: until the process is really gone (debug cleanup refuses before)
	local n
	for n in $(seq 1 200); do [[ -d /proc/$1 ]] || return 0; sleep 0.05; done
	die "pid $1 did not go away"
}
cleanup() {
	local i pid d
	set +e
	for i in 1 2 3; do pid=$(node_pid "$WORK/n$i") && kill -9 "$pid"; done
	for i in 1 2 3; do
		d=$WORK/n$i
		[[ -d $d ]] || continue
		pid=$(cat "$d/orch.pid" 2>/dev/null)
		[[ -n $pid ]] && wait_gone "$pid"
		"$O" -D "$d" debug cleanup >/dev/null 2>&1 || log "orch debug cleanup of $d failed"
	done
	grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
	if [[ ${KEEP:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pick_port() {
	local p n
	for n in $(seq 1 200); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		[[ " ${PORTS[*]} " == *" $p "* ]] && continue
		ss -Htan "sport = :$p" | grep -q . && continue
		PORTS+=("$p")
		echo "$p"
		return 0
	done
	die "no free port found"
}

# q DIR WHAT [ARG]: one JSON question answered by python over `orch ... -o json`
q() {
	python3 - "$O" "$@" <<'PY'
import json, subprocess, sys
o, d, what = sys.argv[1], sys.argv[2], sys.argv[3]
arg = sys.argv[4] if len(sys.argv) > 4 else ""
def cli(*a):
    p = subprocess.run([o, "-D", d] + list(a) + ["-o", "json"], capture_output=True, text=True, timeout=30)
    return json.loads(p.stdout) if p.returncode == 0 else None
if what == "leader":  # name of the leader
    for n in cli("nodes") or []:
        if n.get("leader"):
            print(n["name"])
elif what == "ready":  # number of ready nodes
    print(sum(1 for n in cli("nodes") or [] if n["state"] == "ready"))
elif what == "victim":  # the non-leader node running most tasks of web
    lead = [n["name"] for n in cli("nodes") or [] if n.get("leader")]
    cnt = {}
    for t in cli("ps", "web") or []:
        if t["state"] == "running" and t["node"] not in lead:
            cnt[t["node"]] = cnt.get(t["node"], 0) + 1
    print(max(cnt, key=cnt.get) if cnt else "")
elif what == "clean":  # 1 if node `arg` runs exactly the containers of its live tasks
    ts = cli("ps") or []
    mine = sum(1 for t in ts if t["node"] == arg and t["desired"] == "running")
    p = subprocess.run(["runc", "--root", "%s/runc" % d, "list", "-q"], capture_output=True, text=True)
    print(1 if p.returncode == 0 and len(p.stdout.split()) == mine else 0)
PY
}

# wait_running DIR SERVICE N AVOID T0_NS: until N tasks of SERVICE run, none on node AVOID;
# prints ms since T0_NS (one python process, polling every 20 ms, 60 s at most)
wait_running() {
	python3 - "$O" "$@" <<'PY'
import json, subprocess, sys, time
o, d, svc, n, avoid, t0 = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
deadline = time.time() + 60
while time.time() < deadline:
    p = subprocess.run([o, "-D", d, "ps", svc, "-o", "json"], capture_output=True, text=True)
    if p.returncode == 0:
        ts = [t for t in json.loads(p.stdout) if t["state"] == "running" and t["desired"] == "running"]
        if len(ts) >= n and not any(t["node"] == avoid for t in ts):
            print("%.0f" % ((time.time_ns() - t0) / 1e6))
            sys.exit(0)
    time.sleep(0.02)
sys.exit("timed out waiting for %d running tasks of %s off %s" % (n, svc, avoid))
PY
}

survivor() { # a node dir other than $1 (a name) whose daemon runs
	local i
	for i in 1 2 3; do [[ n$i != "$1" ]] && node_pid "$WORK/n$i" >/dev/null && echo "$WORK/n$i" && return; done
}
resume() { # NAME: restart the node and wait until the cluster is whole and it runs nothing stale
	local n d=$WORK/$1
	"$O" init --data-dir "$d" --detach >/dev/null || die "resuming $1 failed"
	for n in $(seq 1 300); do
		[[ $(q "$d" ready) == 3 ]] && [[ $(q "$d" clean "$1") == 1 ]] && return 0
		sleep 0.1
	done
	die "$1 did not come back clean (ready nodes $(q "$d" ready), containers $(runc --root "$d/runc" list -q | wc -l))"
}
svc_spec() { # NAME REPLICAS
	printf 'services:\n  %s:\n    image: demo:latest\n    ports: ["80"]\n    stop_grace_period: 1s\n    deploy:\n      replicas: %d\n' "$1" "$2"
}

# ---- build, image, cluster ----------------------------------------------------------------
mkdir -p "$WORK/bin"
if [[ -n ${ORCH_BIN:-} ]]; then
	cp "$ORCH_BIN" "$O"
else
	log "building orch (ReleaseSafe) into $WORK"
	(cd "$ROOT" && vendor/zig/zig build -Doptimize=ReleaseSafe -p "$WORK" >"$WORK/build.log" 2>&1) ||
		{ tail -20 "$WORK/build.log" >&2; die "zig build failed"; }
fi
sh "$ROOT/scripts/build-demo-image.sh" "$WORK/img" >/dev/null
P1=$(pick_port)
"$O" init --listen "127.0.0.1:$P1" --data-dir "$WORK/n1" --name n1 --failure-timeout "$FT" --detach \
	>"$WORK/init.out" 2>&1 || { cat "$WORK/init.out" >&2; die "orch init failed"; }
TOKEN=$(grep -o 'ORCH2-[^ ]*' "$WORK/init.out" | head -1)
for i in 2 3; do
	ORCH_TOKEN="$TOKEN" "$O" join "127.0.0.1:$P1" --listen "127.0.0.1:$(pick_port)" --data-dir "$WORK/n$i" \
		--name "n$i" --detach >/dev/null || die "orch join n$i failed"
done
for n in $(seq 1 100); do [[ $(q "$WORK/n1" ready) == 3 ]] && break; sleep 0.1; done
"$O" -D "$WORK/n1" image load "$WORK/img/demo-docker.tar" >/dev/null
svc_spec web 6 >"$WORK/web.yml"
"$O" -D "$WORK/n1" deploy -f "$WORK/web.yml" >/dev/null
wait_running "$WORK/n1" web 6 - "$(date +%s%N)" >/dev/null || die "web did not start"
log "3 nodes, web with 6 replicas running"

# ---- 1. kill -9 of a node with tasks ----------------------------------------------------------
declare -a NODE_MS=()
for r in $(seq 1 "$RUNS"); do
	budget
	d=$(survivor -)
	v=$(q "$d" victim)
	[[ -n $v ]] || die "no non-leader node runs tasks"
	pid=$(node_pid "$WORK/$v")
	t0=$(date +%s%N)
	kill -9 "$pid"
	d=$(survivor "$v")
	ms=$(wait_running "$d" web 6 "$v" "$t0") || die "replicas of $v not rescheduled"
	NODE_MS+=("$ms")
	log "run $r: kill -9 $v -> 6 replicas running elsewhere after $ms ms"
	wait_gone "$pid"
	resume "$v"
done

# ---- 2. kill -9 of the leader, deploy right after ---------------------------------------------
declare -a ACK_MS=() RUN_MS=() BASE_ACK=() BASE_RUN=()
for r in $(seq 1 "$RUNS"); do
	budget
	d=$(survivor -)
	# the peer: the same kind of deploy with a healthy leader
	svc_spec "base$r" 2 >"$WORK/base$r.yml"
	t0=$(date +%s%N)
	"$O" -D "$d" deploy -f "$WORK/base$r.yml" >/dev/null || die "deploy base$r failed"
	BASE_ACK+=("$(ms_since "$t0")")
	BASE_RUN+=("$(wait_running "$d" "base$r" 2 - "$t0")") || die "base$r did not run"
	lead=$(q "$d" leader)
	[[ -n $lead ]] || die "no leader"
	pid=$(node_pid "$WORK/$lead")
	svc_spec "svc$r" 2 >"$WORK/svc$r.yml"
	d=$(survivor "$lead")
	t0=$(date +%s%N)
	kill -9 "$pid"
	"$O" -D "$d" deploy -f "$WORK/svc$r.yml" >/dev/null || die "deploy svc$r after the leader's death failed"
	ACK_MS+=("$(ms_since "$t0")")
	RUN_MS+=("$(wait_running "$d" "svc$r" 2 "$lead" "$t0")") || die "svc$r did not run"
	log "run $r: kill -9 leader $lead -> deploy acknowledged ${ACK_MS[-1]} ms, running ${RUN_MS[-1]} ms" \
		"(healthy leader: ${BASE_ACK[-1]} / ${BASE_RUN[-1]} ms)"
	wait_gone "$pid"
	resume "$lead"
done

# ---- report ---------------------------------------------------------------------------------
read -r nm nmin nmax <<<"$(stats "${NODE_MS[@]}")"
ftms=$(awk -v f="$FT" 'BEGIN { sub(/s$/, "", f); print f * 1000 }')
read -r am amin amax <<<"$(stats "${ACK_MS[@]}")"
read -r rm_ rmin rmax <<<"$(stats "${RUN_MS[@]}")"
read -r bam _ _ <<<"$(stats "${BASE_ACK[@]}")"
read -r brm _ _ <<<"$(stats "${BASE_RUN[@]}")"
printf '\n%d runs each, failure timeout %s, ms (median, min-max)\n' "$RUNS" "$FT"
printf 'kill -9 of a node -> all 6 replicas running elsewhere: %s (%s-%s); runs: %s\n' "$nm" "$nmin" "$nmax" "${NODE_MS[*]}"
printf '  vs the failure timeout %s ms: ratio %s, overhead %s ms\n' "$ftms" "$(ratio "$nm" "$ftms")" "$((nm - ftms))"
printf 'kill -9 of the leader -> deploy acknowledged: %s (%s-%s); runs: %s\n' "$am" "$amin" "$amax" "${ACK_MS[*]}"
printf 'kill -9 of the leader -> its 2 tasks running:  %s (%s-%s); runs: %s\n' "$rm_" "$rmin" "$rmax" "${RUN_MS[*]}"
printf '  vs the same deploy with a healthy leader: acknowledged %s, running %s; ratio (running) %s\n' \
	"$bam" "$brm" "$(ratio "$rm_" "$brm")"
exit 0
