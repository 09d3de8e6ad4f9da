#!/bin/sh
# The main job: a local 3-node orch cluster on 127.0.0.1-3 with a demo web service.
# Brings the nodes up, loads the demo image, deploys 3 replicas behind a published port,
# shows requests spread over the replicas, kills a node and shows the replicas coming back,
# then waits. Ctrl-C tears everything down (processes, containers, mounts, cgroups,
# network) and says so. Run as root on Debian 12; installs what it needs (scripts/setup.sh).
#   DEMO_PORT=8080  published port      DEMO_WAIT=1  wait for Ctrl-C at the end (0: exit)
#   NO_COLOR=1      no bold headings (there are none when the output is not a terminal)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
port=${DEMO_PORT:-8080}
wait_end=${DEMO_WAIT:-1}
[ "$(id -u)" = 0 ] || { echo "demo: run as root (containers need it)" >&2; exit 1; }
"$here/scripts/setup.sh"
O="$here/zig-out/bin/orch"
work=$(mktemp -d /tmp/orch-demo.XXXXXX)
pids=""

# headings in bold on a terminal only, never with NO_COLOR
. "$here/scripts/say.sh"

teardown() {
	trap - INT TERM EXIT
	say "tearing down"
	for i in 1 2 3; do
		[ -f "$work/n$i/orch.pid" ] && kill -9 "$(cat "$work/n$i/orch.pid")" 2>/dev/null || true
	done
	for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
	# wait until the node processes are really gone before cleaning after them
	for i in 1 2 3; do
		if [ -f "$work/n$i/orch.pid" ]; then
			p=$(cat "$work/n$i/orch.pid")
			n=0; while kill -0 "$p" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done
		fi
	done
	for i in 1 2 3; do
		[ -d "$work/n$i" ] && "$O" -D "$work/n$i" debug cleanup >/dev/null 2>&1 || true
	done
	rm -rf "$work"
	echo "stopped 3 nodes; removed their containers, mounts, cgroups, network and $work"
}
trap teardown INT TERM EXIT

say "building the demo image (busybox httpd) in $work/img"
sh "$here/scripts/build-demo-image.sh" "$work/img" >/dev/null

say "starting node n1 (creates the cluster)"
"$O" init --listen 127.0.0.1:7420 --data-dir "$work/n1" --name n1 --failure-timeout 3s --detach | tee "$work/init.out"
# the first join line is the manager-capable one: ORCH_TOKEN=<token> orch join ADDR
token=$(sed -n 's/.*ORCH_TOKEN=\(ORCH2-[0-9a-f-]*\) .*/\1/p' "$work/init.out" | head -1)
for i in 2 3; do
	say "joining n$i with the one line orch init printed"
	ORCH_TOKEN=$token "$O" join 127.0.0.1:7420 --listen 127.0.0.$i:7420 --data-dir "$work/n$i" --name n$i --detach
done
export ORCH_DATA_DIR="$work/n1"
sleep 1
"$O" nodes

say "loading the demo image into the cluster (other nodes fetch it from n1 when they need it)"
"$O" image load "$work/img/demo-docker.tar"

cat > "$work/app.yml" <<YAML
name: demo
services:
  web:
    image: demo:latest
    ports: ["$port:80"]
    stop_grace_period: 2s
    deploy:
      replicas: 3
YAML
say "deploying $work/app.yml"
cat "$work/app.yml"
"$O" deploy -f "$work/app.yml"
n=0
until [ "$("$O" services -o json | grep -o '"running":[0-9]*' | head -1 | cut -d: -f2)" = 3 ] || [ $n -ge 60 ]; do sleep 0.5; n=$((n+1)); done
"$O" ps

for ip in 1 2; do
	say "9 requests to 127.0.0.$ip:$port (each node's routing mesh balances over all replicas)"
	for k in 1 2 3 4 5 6 7 8 9; do
		curl -s -m 3 "http://127.0.0.$ip:$port/cgi-bin/id" || echo "(request failed)"
	done | sort | uniq -c
done

say "kill -9 of node n3 and everything it runs"
kill -9 "$(cat "$work/n3/orch.pid")"
runc --root "$work/n3/runc" list -q 2>/dev/null | while read -r c; do runc --root "$work/n3/runc" kill "$c" KILL 2>/dev/null || true; done
start=$(date +%s)
n=0
until "$O" ps -o json | python3 -c '
import json,sys
t=[x for x in json.load(sys.stdin) if x["desired"]=="running" and x["state"]=="running" and x["node"]!="n3"]
sys.exit(0 if len(t)==3 else 1)' 2>/dev/null || [ $n -ge 60 ]; do sleep 0.5; n=$((n+1)); done
echo "3 replicas running again on n1 and n2 after $(( $(date +%s) - start )) s:"
"$O" nodes
"$O" ps
for k in 1 2 3 4 5 6; do curl -s -m 3 "http://127.0.0.1:$port/cgi-bin/id" || echo "(request failed)"; done | sort | uniq -c

if [ "$wait_end" = 1 ]; then
	say "the cluster keeps running; try, in another shell:"
	echo "  export ORCH_DATA_DIR=$work/n1"
	echo "  $O ps; $O scale web=6; $O logs web; curl http://127.0.0.2:$port/cgi-bin/id"
	echo "press Ctrl-C to tear everything down"
	while :; do sleep 3600 & pids="$pids $!"; wait $! || true; done
fi
