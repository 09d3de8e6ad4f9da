#!/usr/bin/env bash
# Mesh benchmark: requests/s and p50/p99 latency with wrk against the same busybox httpd
# backends (3 replicas of the demo image on 3 local nodes, n1..n3 on 127.0.0.1..3) reached
# three ways in one run: directly (one backend endpoint), through the orch routing mesh (n1's
# published port), and through haproxy (Debian; `mode tcp`, roundrobin over the same 3
# endpoints, like the mesh a layer-4 proxy). Prints the three and the ratios.
# Then, if the autoscaler is there: the time from a load step to its first scale-up running.
# See bench/README.md for what is compared and the figures observed.
#
# Knobs (environment): WRK_ARGS ("-t2 -c32 -d10s"), URL_PATH (/ : static page; /cgi-bin/id
# forks a CGI per request), AUTOSCALE (1; 0 skips that part), KEEP (1 = keep the temp dir),
# ORCH_BIN (default zig-out/bin/orch), BUDGET (seconds, 300).
# Every wait is bounded; the script stops what it started by pid, then runs
# `orch debug cleanup` per node and removes the services' virtual addresses from lo.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
O=${ORCH_BIN:-$ROOT/zig-out/bin/orch}
WRK_ARGS=${WRK_ARGS:-"-t2 -c32 -d10s"}
URL_PATH=${URL_PATH:-/}
AUTOSCALE=${AUTOSCALE:-1}
BUDGET=${BUDGET:-300}
START_S=$(date +%s)
WORK=$(mktemp -d /tmp/orch-bmesh.XXXXXX)
HAPROXY_PID=
declare -a VIPS=()

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
	local i pid n v
	set +e
	if [[ -n $HAPROXY_PID ]]; then
		kill "$HAPROXY_PID" 2>/dev/null
		wait "$HAPROXY_PID" 2>/dev/null
	fi
	for i in 1 2 3; do
		pid=$(node_pid "$WORK/d$i") && kill "$pid"
	done
	for i in 1 2 3; do
		pid=$(node_pid "$WORK/d$i") || continue
		for n in $(seq 100); do
			[[ -e /proc/$pid ]] || break
			sleep 0.1
		done
		[[ -e /proc/$pid ]] && kill -9 "$pid" && sleep 0.5
	done
	for i in 1 2 3; do
		[[ -d $WORK/d$i ]] && "$O" -D "$WORK/d$i" debug cleanup >/dev/null
	done
	for v in "${VIPS[@]}"; do # another cluster may share the address: only if unused
		[[ -n $v && -z $(ss -Htln src "$v") ]] && ip addr del "$v/32" dev lo 2>/dev/null
	done
	if [[ ${KEEP:-0} = 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for t in wrk haproxy runc python3; do command -v $t >/dev/null || die "$t is not installed"; done
[[ $(id -u) = 0 ]] || die "run as root (containers through runc)"
[[ -x $O ]] || die "no orch binary at $O: build it first (vendor/zig/zig build)"

port_free() { # PORT -> true if nothing listens on it on any address
	! ss -Htln "sport = :$1" | grep -q .
}
pick_port() {
	local p
	for _ in $(seq 200); do
		p=$((15000 + RANDOM % 5000))
		port_free "$p" && { echo "$p"; return; }
	done
	die "no free port in 15000-19999"
}
NODE_PORT=$(pick_port)
PUB=$(pick_port)
HA_PORT=$(pick_port)
HA_IP=127.0.0.$((10 + RANDOM % 200))

# ---- cluster ---------------------------------------------------------------------------
log "3 nodes on 127.0.0.1-3:$NODE_PORT, demo image"
"$O" init --listen "127.0.0.1:$NODE_PORT" --data-dir "$WORK/d1" --name n1 --detach >"$WORK/init.out" 2>&1 ||
	die "orch init: $(cat "$WORK/init.out")"
TOKEN=$(grep -o 'ORCH2-[^ ]*' "$WORK/init.out" | head -1)
for i in 2 3; do
	ORCH_TOKEN="$TOKEN" "$O" join "127.0.0.1:$NODE_PORT" --listen "127.0.0.$i:$NODE_PORT" --data-dir "$WORK/d$i" \
		--name "n$i" --detach >"$WORK/join$i.out" 2>&1 || die "orch join: $(cat "$WORK/join$i.out")"
done
sh "$ROOT/scripts/build-demo-image.sh" "$WORK/img" >/dev/null
"$O" -D "$WORK/d1" image load "$WORK/img/demo-docker.tar" >/dev/null

cat >"$WORK/web.yml" <<EOF
name: bench
services:
  web:
    image: demo:latest
    ports: ["$PUB:80"]
    stop_grace_period: 1s
    deploy:
      replicas: 3
      placement: {max_replicas_per_node: 1}
EOF
"$O" -D "$WORK/d1" deploy -f "$WORK/web.yml" >/dev/null

running() { # SERVICE -> number of its running tasks; also writes their endpoints to $WORK/eps
	"$O" -D "$WORK/d1" ps "$1" -o json 2>/dev/null | python3 -c '
import json, sys
ts = [t for t in json.load(sys.stdin) if t["state"] == "running" and t["desired"] == "running"]
open(sys.argv[1], "w").write("\n".join(t["endpoint"].split("->")[0] for t in ts) + "\n")
print(len(ts))' "$WORK/eps" || echo 0
}
until [[ $(running web) = 3 ]]; do
	budget
	sleep 0.3
done
mapfile -t EPS < <(grep . "$WORK/eps")
VIPS+=("$("$O" -D "$WORK/d1" inspect web -o json | python3 -c 'import json,sys; v=json.load(sys.stdin); v=v[0] if isinstance(v,list) else v; print(v["virtual_ip"])')")
serving() { curl -fsS -m 2 -o /dev/null "http://$1$URL_PATH"; }
for ep in "${EPS[@]}" "127.0.0.1:$PUB"; do
	for _ in $(seq 100); do serving "$ep" && break || sleep 0.2; done
	serving "$ep" || die "$ep does not answer"
done
log "backends: ${EPS[*]}"

# ---- wrk ----------------------------------------------------------------------------------
declare -A RPS P50 P99 ERRS
to_ms() { # wrk latency (850.00us, 1.20ms, 1.00s) -> ms
	awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0;
		else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}
measure() { # NAME HOST:PORT
	local out
	log "wrk $WRK_ARGS --latency http://$2$URL_PATH ($1)"
	out=$(wrk $WRK_ARGS --latency "http://$2$URL_PATH" 2>&1) || die "wrk: $out"
	echo "$out" >"$WORK/wrk-$1.txt"
	RPS[$1]=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
	P50[$1]=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
	P99[$1]=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
	ERRS[$1]=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 } /Non-2xx/ { print "non2xx=" $4 }' <<<"$out" | paste -sd' ')
	[[ -n ${RPS[$1]} ]] || die "wrk printed no Requests/sec: $out"
}
measure direct "${EPS[0]}"
measure mesh "127.0.0.1:$PUB"

cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn 4096
defaults
    mode tcp
    timeout connect 1s
    timeout client 30s
    timeout server 30s
frontend web
    bind $HA_IP:$HA_PORT
    default_backend demo
backend demo
    balance roundrobin
EOF
i=0
for ep in "${EPS[@]}"; do
	i=$((i + 1))
	echo "    server b$i $ep" >>"$WORK/haproxy.cfg"
done
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!
for _ in $(seq 50); do serving "$HA_IP:$HA_PORT" 2>/dev/null && break || sleep 0.1; done
serving "$HA_IP:$HA_PORT" || die "haproxy does not answer: $(cat "$WORK/haproxy.log")"
measure haproxy "$HA_IP:$HA_PORT"
kill "$HAPROXY_PID"
wait "$HAPROXY_PID" 2>/dev/null || true
HAPROXY_PID=

echo
echo "wrk $WRK_ARGS --latency, GET $URL_PATH, busybox httpd backends (3 replicas, 3 nodes, one machine)"
printf '%-34s %10s %10s %10s  %s\n' path "req/s" "p50 ms" "p99 ms" "socket errors"
printf '%-34s %10s %10s %10s  %s\n' "direct, one backend ${EPS[0]}" "${RPS[direct]}" "${P50[direct]}" "${P99[direct]}" "${ERRS[direct]:-0}"
printf '%-34s %10s %10s %10s  %s\n' "orch mesh, n1 port $PUB" "${RPS[mesh]}" "${P50[mesh]}" "${P99[mesh]}" "${ERRS[mesh]:-0}"
printf '%-34s %10s %10s %10s  %s\n' "haproxy (tcp, roundrobin x3)" "${RPS[haproxy]}" "${P50[haproxy]}" "${P99[haproxy]}" "${ERRS[haproxy]:-0}"
echo
printf '%-20s %8s %8s %8s\n' ratio "req/s" p50 p99
for pair in "mesh direct" "haproxy direct" "mesh haproxy"; do
	set -- $pair
	printf '%-20s %8s %8s %8s\n' "$1/$2" "$(ratio "${RPS[$1]}" "${RPS[$2]}")" "$(ratio "${P50[$1]}" "${P50[$2]}")" \
		"$(ratio "${P99[$1]}" "${P99[$2]}")"
done

# ---- autoscaler: load step -> first scale-up running ---------------------------------------
if [[ $AUTOSCALE != 1 ]]; then
	exit 0
fi
echo
if ! "$O" -D "$WORK/d1" events -o json >/dev/null 2>&1; then
	echo "autoscale: skipped (orch events is not available in this build)"
	exit 0
fi
APUB=$(pick_port)
cat >"$WORK/auto.yml" <<EOF
name: bench
services:
  auto:
    image: demo:latest
    ports: ["$APUB:80"]
    stop_grace_period: 1s
    deploy:
      replicas: 1
      x-orch-autoscale: {min: 1, max: 3, target_rps: 50, scale_up_cooldown: 5s, scale_down_cooldown: 60s}
EOF
if ! "$O" -D "$WORK/d1" deploy -f "$WORK/auto.yml" >"$WORK/auto.out" 2>&1; then
	echo "autoscale: skipped (deploy with x-orch-autoscale refused: $(head -c 200 "$WORK/auto.out"))"
	exit 0
fi
until [[ $(running auto) = 1 ]]; do
	budget
	sleep 0.3
done
VIPS+=("$("$O" -D "$WORK/d1" inspect auto -o json | python3 -c 'import json,sys; v=json.load(sys.stdin); v=v[0] if isinstance(v,list) else v; print(v["virtual_ip"])')")
for _ in $(seq 100); do serving "127.0.0.1:$APUB" && break || sleep 0.2; done
log "load step: wrk -t2 -c16 on auto (1 replica, target 50 req/s per replica, max 3)"
T0=$(date +%s.%N)
wrk -t2 -c16 -d60s "http://127.0.0.1:$APUB$URL_PATH" >"$WORK/wrk-auto.txt" 2>&1 &
WRK_PID=$!
UP=
while (($(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN { print (a - b < 60) }'))); do
	if [[ $(running auto) -ge 2 ]]; then
		UP=$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN { printf "%.1f", a - b }')
		break
	fi
	sleep 0.2
done
kill "$WRK_PID" 2>/dev/null || true
wait "$WRK_PID" 2>/dev/null || true
if [[ -n $UP ]]; then
	echo "autoscale: load step -> 2nd replica running after ${UP} s"
	"$O" -D "$WORK/d1" events 2>/dev/null | grep -i scal | tail -3 | sed 's/^/  event: /'
else
	echo "autoscale: no scale-up running within 60 s of the load step (autoscaler not active yet?)"
	"$O" -D "$WORK/d1" events 2>/dev/null | tail -5 | sed 's/^/  event: /'
fi
