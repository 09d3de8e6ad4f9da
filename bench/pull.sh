#!/usr/bin/env bash
# Pull benchmark: an image of LAYERS random-content layers (SIZE_MB in all, so gzip cannot
# shrink them away) in a real docker-registry on 127.0.0.1, pulled by `orch image pull` on a
# 1-node cluster and then, the same cluster grown to 3 nodes, on 3 nodes at once; the in-run
# peer is `skopeo copy` of the same image to a local directory. Each case runs RUNS times
# (orch image prune and an empty directory between runs: every run downloads every blob) and
# the median is compared. Goals: orch on 1 node <= 1.2x skopeo; 3 nodes <= 1.5x 1 node.
# orch's time includes what skopeo does not do: every blob's digest checked (skopeo checks
# them too) and every layer unpacked into the node's layer cache, ready to run.
#
# Knobs (environment): SIZE_MB (100), LAYERS (5), RUNS (3), KEEP (1 = keep the temp dir),
# ORCH_BIN (use this orch binary instead of building a ReleaseSafe one), BUDGET (s, 600).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MB=${SIZE_MB:-100}
LAYERS=${LAYERS:-5}
RUNS=${RUNS:-3}
BUDGET=${BUDGET:-600}
START_S=$(date +%s)
WORK=$(mktemp -d /tmp/orch-bpull.XXXXXX)
O=$WORK/bin/orch
REG_PID=""
declare -a PICKED=()

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

node_pid() { # DIR -> pid of the orch daemon on DIR, if it is one
	local pid
	pid=$(cat "$1/orch.pid" 2>/dev/null) || return 1
	[[ -n $pid ]] && grep -qs -- "$1" "/proc/$pid/cmdline" && echo "$pid"
}
cleanup() {
	local i pid
	set +e
	for i in 1 2 3; do pid=$(node_pid "$WORK/n$i") && kill -9 "$pid" 2>/dev/null; done
	[[ -n $REG_PID ]] && kill -9 "$REG_PID" 2>/dev/null
	cleanup_nodes
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for t in docker-registry skopeo python3; do command -v "$t" >/dev/null || die "$t is not installed"; done

# ---- build ---------------------------------------------------------------------------------
if [[ -n ${ORCH_BIN:-} ]]; then
	O=$ORCH_BIN
	log "using $O (ORCH_BIN)"
else
	log "building orch (ReleaseSafe) into $WORK/bin"
	(cd "$ROOT" && vendor/zig/zig build -Doptimize=ReleaseSafe -p "$WORK" >"$WORK/build.log" 2>&1) ||
		{ tail -20 "$WORK/build.log" >&2; die "zig build failed"; }
fi

# ---- the registry and the image -------------------------------------------------------------
pick_port RP
REG=127.0.0.1:$RP
mkdir -p "$WORK/registry"
cat >"$WORK/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: $REG
  secret: orch-bench
YML
OTEL_TRACES_EXPORTER=none docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
disown "$REG_PID"
deadline=$(($(date +%s) + 20))
until curl -sf -o /dev/null "http://$REG/v2/"; do
	(($(date +%s) < deadline)) || die "docker-registry did not answer on $REG"
	sleep 0.1
done
log "making a ${SIZE_MB} MB image of $LAYERS random layers"
python3 - "$WORK/oci" "$SIZE_MB" "$LAYERS" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
out, size_mb, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(os.path.join(out, "blobs", "sha256"))
def put(b):
    d = hashlib.sha256(b).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", d), "wb") as f:
        f.write(b)
    return "sha256:" + d
layers, diff_ids = [], []
per = size_mb * 1024 * 1024 // n
for i in range(n):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        data = os.urandom(per)
        ti = tarfile.TarInfo("data/layer%d.bin" % i)
        ti.size, ti.mode, ti.mtime = len(data), 0o644, 0
        tf.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    gz = gzip.compress(raw, compresslevel=1, mtime=0)
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(gz), "size": len(gz)})
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg),
                             "size": len(cfg)}, "layers": layers}).encode()
md = put(man)
with open(os.path.join(out, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
               "digest": md, "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "1"}}]}, f)
PY
skopeo copy -q --dest-tls-verify=false "oci:$WORK/oci:1" "docker://$REG/bench:1" || die "skopeo push failed"
BYTES=$(du -sb "$WORK/oci/blobs" | cut -f1)

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# ---- the peer: skopeo copy to a directory ------------------------------------------------------
declare -a SK=() O1=() O3=()
for r in $(seq 1 "$RUNS"); do
	budget
	rm -rf "$WORK/sk"
	t0=$(date +%s%N)
	skopeo copy -q --src-tls-verify=false "docker://$REG/bench:1" "dir:$WORK/sk" || die "skopeo copy failed"
	SK+=("$(ms_since "$t0")")
	log "skopeo copy run $r: ${SK[-1]} ms"
done

# ---- orch: 1 node, then 3 --------------------------------------------------------------------
for i in 1 2 3; do pick_port "P$i"; done
out=$(timeout 60 "$O" init --listen "127.0.0.1:$P1" --data-dir "$WORK/n1" --name n1 --detach \
	--insecure-registry "$REG") || die "orch init failed: $out"
TOKEN=$(grep -o 'ORCH2-[0-9a-f-]*' <<<"$out" | head -1)
pull_runs() { # ARRAY-NAME NODES
	local -n acc=$1
	local r t0 out
	for r in $(seq 1 "$RUNS"); do
		budget
		out=$(timeout 120 "$O" -D "$WORK/n1" image prune 2>&1) || die "orch image prune failed: $out"
		# every run after the first must start from an empty store: the previous one freed
		((r == 1)) || grep -q "^total freed: [1-9]" <<<"$out" || die "prune freed nothing: $out"
		t0=$(date +%s%N)
		out=$(timeout 300 "$O" -D "$WORK/n1" image pull "$REG/bench:1" 2>&1) || die "orch image pull failed: $out"
		acc+=("$(ms_since "$t0")")
		grep -q "pulled on $2 nodes" <<<"$out" || die "not pulled on $2 nodes: $out"
		log "orch image pull on $2 node(s) run $r: ${acc[-1]} ms"
	done
}
pull_runs O1 1
for i in 2 3; do
	p=P$i
	ORCH_TOKEN="$TOKEN" timeout 60 "$O" join "127.0.0.1:$P1" --listen "127.0.0.1:${!p}" --data-dir "$WORK/n$i" \
		--name "n$i" --detach --insecure-registry "$REG" >/dev/null || die "orch join n$i failed"
done
deadline=$(($(date +%s) + 30))
until [[ $(timeout 5 "$O" -D "$WORK/n1" nodes -o json 2>/dev/null | grep -o '"state":"ready"' | wc -l) == 3 ]]; do
	(($(date +%s) < deadline)) || die "3 ready nodes not reached in 30 s"
	sleep 0.1
done
pull_runs O3 3

sk=$(printf '%s\n' "${SK[@]}" | median)
o1=$(printf '%s\n' "${O1[@]}" | median)
o3=$(printf '%s\n' "${O3[@]}" | median)
mbps() { awk -v b="$BYTES" -v ms="$1" 'BEGIN { printf "%.0f", b / 1048576 / (ms / 1000) }'; }
printf '\nimage: %s MB in %s layers (%s bytes of blobs), median of %s runs\n' "$SIZE_MB" "$LAYERS" "$BYTES" "$RUNS"
printf '%-34s %8s %8s %8s\n' "case" "ms" "MB/s" "ratio"
printf '%-34s %8s %8s %8s\n' "skopeo copy to dir (peer)" "$sk" "$(mbps "$sk")" "1.00"
printf '%-34s %8s %8s %8s\n' "orch image pull, 1 node" "$o1" "$(mbps "$o1")" "$(ratio "$o1" "$sk")"
printf '%-34s %8s %8s %8s\n' "orch image pull, 3 nodes" "$o3" "$(mbps "$o3")" "$(ratio "$o3" "$sk")"
printf '3 nodes / 1 node: %s (goal <= 1.5); 1 node / skopeo: %s (goal <= 1.2)\n' "$(ratio "$o3" "$o1")" "$(ratio "$o1" "$sk")"
