#!/usr/bin/env bash
# Deploy benchmark: time from `orch deploy` of N replicas (3 local nodes, demo image) until
# all N run, against starting the same containers with bare `runc run -d` one after another,
# for N = 10 and 50, with and without a published port; prints both and the ratio orch/runc.
# Also prints the RSS of the node daemons (VmRSS) idle and with 50 tasks.
# See bench/README.md for what is compared and the figures observed.
#
# Knobs (environment): SIZES ("10 50"), KEEP (1 = keep the temp dir), ORCH_BIN (use this
# orch binary instead of building a ReleaseSafe one), BUDGET (seconds, 400).
# Every wait is bounded; the script stops what it started by pid, then runs
# `orch debug cleanup` per node and deletes its runc containers and cgroups.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZES=${SIZES:-"10 50"}
BUDGET=${BUDGET:-400}
START_S=$(date +%s)
WORK=$(mktemp -d /tmp/orch-bdeploy.XXXXXX)
O=$WORK/bin/orch
RROOT=$WORK/runc-root # runc state of the bare-runc peer
CG=orchbench-$$       # its cgroup parent
declare -a PORTS=()

log() { printf '[%3ds] %s\n' "$(($(date +%s) - START_S))" "$*" >&2; }
die() {
	log "FAILED: $*"
	exit 1
}
budget() { (($(date +%s) - START_S < BUDGET)) || die "time budget of ${BUDGET}s exceeded"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }

node_pid() { # DIR -> pid of the orch daemon on DIR, if it is one
	local pid
	pid=$(cat "$1/orch.pid" 2>/dev/null) || return 1
	[[ -n $pid ]] && grep -qs -- "$1" "/proc/$pid/cmdline" && echo "$pid"
}
cleanup() {
	local i pid d n
	set +e
	for i in 1 2 3; do
		pid=$(node_pid "$WORK/n$i") && kill -9 "$pid"
	done
	for i in 1 2 3; do
		d=$WORK/n$i
		[[ -d $d ]] || continue
		pid=$(cat "$d/orch.pid" 2>/dev/null)
		for n in $(seq 1 200); do [[ -n $pid && -d /proc/$pid ]] || break; sleep 0.05; done
		"$O" -D "$d" debug cleanup >/dev/null 2>&1 || log "orch debug cleanup of $d failed"
	done
	if [[ -d $RROOT ]]; then
		for i in $(runc --root "$RROOT" list -q 2>/dev/null); do
			runc --root "$RROOT" kill "$i" KILL 2>/dev/null
			runc --root "$RROOT" delete -f "$i" 2>/dev/null
		done
	fi
	for d in /sys/fs/cgroup/*/"$CG"; do [[ -d $d ]] && rmdir "$d"/* "$d" 2>/dev/null; done
	grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
	if [[ ${KEEP:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pick_port() { # a free port on 127.0.0.1, not picked before in this run
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

# wait_running DIR SERVICE N T0_NS: waits (up to 120 s) until N tasks of SERVICE run; prints
# the ms since T0_NS. One python process polls `orch ps -o json` every 20 ms.
wait_running() {
	python3 - "$O" "$1" "$2" "$3" "$4" <<'PY'
import json, subprocess, sys, time
o, d, svc, n, t0 = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
deadline = time.time() + 120
while time.time() < deadline:
    p = subprocess.run([o, "-D", d, "ps", svc, "-o", "json"], capture_output=True, text=True)
    if p.returncode == 0:
        ts = json.loads(p.stdout)
        if sum(1 for t in ts if t["state"] == "running" and t["desired"] == "running") >= n:
            print("%.0f" % ((time.time_ns() - t0) / 1e6))
            sys.exit(0)
    time.sleep(0.02)
sys.exit("timed out waiting for %d running tasks of %s" % (n, svc))
PY
}
runc_count() { runc --root "$1" list -q 2>/dev/null | grep -c . || true; }
wait_no_containers() {
	local n i c
	for n in $(seq 1 600); do
		c=0
		for i in 1 2 3; do c=$((c + $(runc_count "$WORK/n$i/runc"))); done
		((c == 0)) && return 0
		sleep 0.1
	done
	die "containers still running after orch rm"
}
spec() { # N PORTS(0|1)
	printf 'services:\n  web:\n    image: demo:latest\n    stop_grace_period: 1s\n'
	(($2)) && printf '    ports: ["80"]\n'
	printf '    deploy:\n      replicas: %d\n' "$1"
}
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
rss_line() {
	local i out="" sum=0 r
	for i in 1 2 3; do
		r=$(rss_kb "$(node_pid "$WORK/n$i")")
		out+=" n$i=$((r / 1024))MiB"
		sum=$((sum + r))
	done
	echo "$out, mean $((sum / 3 / 1024)) MiB"
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
"$O" init --listen "127.0.0.1:$P1" --data-dir "$WORK/n1" --name n1 --detach >"$WORK/init.out" 2>&1 ||
	{ cat "$WORK/init.out" >&2; die "orch init failed"; }
TOKEN=$(grep -o 'ORCH2-[^ ]*' "$WORK/init.out" | head -1)
for i in 2 3; do
	ORCH_TOKEN="$TOKEN" "$O" join "127.0.0.1:$P1" --listen "127.0.0.1:$(pick_port)" --data-dir "$WORK/n$i" \
		--name "n$i" --detach >/dev/null || die "orch join n$i failed"
done
for n in $(seq 1 100); do
	[[ $("$O" -D "$WORK/n1" nodes -o json | grep -o '"state":"ready"' | wc -l) == 3 ]] && break
	sleep 0.1
done
"$O" -D "$WORK/n1" image load "$WORK/img/demo-docker.tar" >/dev/null
sleep 2
RSS_IDLE=$(rss_line)
# warm-up: every node fetches and unpacks the image once, outside the timed deploys
spec 3 0 >"$WORK/web.yml"
"$O" -D "$WORK/n1" deploy -f "$WORK/web.yml" >/dev/null
wait_running "$WORK/n1" web 3 "$(date +%s%N)" >/dev/null || die "warm-up deploy did not finish"
"$O" -D "$WORK/n1" rm web >/dev/null
wait_no_containers
log "3 nodes up, demo image loaded; idle RSS:$RSS_IDLE"

# ---- orch deploy ----------------------------------------------------------------------------
declare -A ORCH_MS
RSS_50=""
for ports in 0 1; do
	for n in $SIZES; do
		budget
		spec "$n" "$ports" >"$WORK/web.yml"
		t0=$(date +%s%N)
		"$O" -D "$WORK/n1" deploy -f "$WORK/web.yml" >/dev/null
		ORCH_MS[$n,$ports]=$(wait_running "$WORK/n1" web "$n" "$t0") || die "deploy of $n replicas did not finish"
		log "orch: $n replicas (ports=$ports) running after ${ORCH_MS[$n,$ports]} ms"
		if ((n == 50 && ports == 1)); then
			sleep 2
			RSS_50=$(rss_line)
		fi
		"$O" -D "$WORK/n1" rm web >/dev/null
		wait_no_containers
	done
done

# ---- bare runc peer -------------------------------------------------------------------------
# The demo image's layers unpacked once with tar into a shared read-only rootfs; one bundle
# per container with its own cgroupsPath; `runc run -d` one after another.
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS" "$WORK/arch"
tar -xf "$WORK/img/demo-docker.tar" -C "$WORK/arch"
for l in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))[0]["Layers"]))' "$WORK/arch/manifest.json"); do
	tar -xf "$WORK/arch/$l" -C "$ROOTFS"
done
MAXN=0
for n in $SIZES; do ((n > MAXN)) && MAXN=$n; done
mkdir -p "$WORK/tmpl" && (cd "$WORK/tmpl" && runc spec)
python3 - "$WORK" "$ROOTFS" "$CG" "$MAXN" <<'PY'
import json, os, sys
work, rootfs, cg, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
tmpl = json.load(open(os.path.join(work, "tmpl", "config.json")))
for i in range(1, n + 1):
    c = json.loads(json.dumps(tmpl))
    c["process"]["terminal"] = False
    c["process"]["args"] = ["httpd", "-f", "-p", "80", "-h", "/www"]
    c["root"] = {"path": rootfs, "readonly": True}
    c["hostname"] = "bb%d" % i
    c["linux"]["cgroupsPath"] = "/%s/bb%d" % (cg, i)
    d = os.path.join(work, "bundles", "bb%d" % i)
    os.makedirs(d)
    json.dump(c, open(os.path.join(d, "config.json"), "w"))
PY
declare -A RUNC_MS
for n in $SIZES; do
	budget
	t0=$(date +%s%N)
	for i in $(seq 1 "$n"); do
		runc --root "$RROOT" run -d --bundle "$WORK/bundles/bb$i" "bb$i" </dev/null >"$WORK/bundles/bb$i/log" 2>&1 ||
			die "runc run bb$i: $(cat "$WORK/bundles/bb$i/log")"
	done
	RUNC_MS[$n]=$((($(date +%s%N) - t0) / 1000000))
	c=$(runc --root "$RROOT" list | grep -c ' running ' || true)
	((c == n)) || die "bare runc: $c of $n containers running"
	log "runc: $n containers started in ${RUNC_MS[$n]} ms"
	for i in $(seq 1 "$n"); do
		runc --root "$RROOT" kill "bb$i" KILL 2>/dev/null || true
		runc --root "$RROOT" delete -f "bb$i" >/dev/null 2>&1 || true
	done
done

# ---- report ---------------------------------------------------------------------------------
printf '\n%-28s %10s %10s %8s\n' "deploy until all running" "orch ms" "runc ms" "ratio"
for ports in 0 1; do
	for n in $SIZES; do
		label="$n replicas, $( ((ports)) && echo "1 port" || echo "no ports")"
		printf '%-28s %10s %10s %8s\n' "$label" "${ORCH_MS[$n,$ports]}" "${RUNC_MS[$n]}" \
			"$(ratio "${ORCH_MS[$n,$ports]}" "${RUNC_MS[$n]}")"
	done
done
printf '\nnode daemon RSS, 3 nodes idle:%s\n' "$RSS_IDLE"
[[ -n $RSS_50 ]] && printf 'node daemon RSS, 50 tasks running:%s\n' "$RSS_50"
exit 0
