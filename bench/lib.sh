# Helpers shared by the benchmark scripts (sourced, not run): logging against the script's
# START_S and BUDGET, free ports, the parsing of key=value and flat JSON lines, ratios.
# The sourcing script sets START_S and BUDGET and declares the array PICKED.

log() { printf '[%3ds] %s\n' "$(($(date +%s) - START_S))" "$*" >&2; }
die() {
	log "FAILED: $*"
	exit 1
}
budget() { (($(date +%s) - START_S < BUDGET)) || die "time budget of ${BUDGET}s exceeded"; }

# pick_port VAR: a TCP port nobody uses (on any address), not handed out before in this run.
pick_port() {
	local p tries
	for tries in $(seq 1 200); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		[[ " ${PICKED[*]} " == *" $p "* ]] && continue
		ss -Htan "sport = :$p" | grep -q . && continue
		PICKED+=("$p")
		printf -v "$1" '%s' "$p"
		return 0
	done
	die "no free port found"
}

# field "k1=v1 k2=v2" k2 -> v2
field() { sed -n "s/.*\b$2=\([^ ]*\).*/\1/p" <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {
	if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# Flat JSON field extraction (the outputs parsed here are single-line objects).
jstr() { sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p" <<<"$1"; }
jnum() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" <<<"$1"; }

# etcd, the peer (needs WORK, and the arrays EPEER, ECLI, ETCD_PID, ETCD_EP declared): member
# I (1-3) of a 3-member cluster on 127.0.0.1 with orch's timings (election 500 ms, heartbeat
# 100 ms, pre-vote on), so failovers compare on equal settings; its data in WORK/eI. The
# caller picks the ports (EPEER, ECLI) first and starts all three.
# With ETCD_TLS=1 (call etcd_tls_certs first) both the peer and the client URLs are HTTPS with
# certificates checked on both sides (--client-cert-auth, --peer-client-cert-auth), as orch's
# node port is; ECURL and EPB_TLS then hold the options curl and etcd_put_bench need.
ETCD_TLS=${ETCD_TLS:-0}
ESCHEME=http
ECURL=()
EPB_TLS=()
etcd_tls_certs() {
	local d=$WORK/etls
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-etcd-ca \
		-keyout "$d/ca.key" -out "$d/ca.crt" >/dev/null 2>&1 || die "openssl: cannot make the etcd CA"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
		-keyout "$d/node.key" -out "$d/node.csr" >/dev/null 2>&1 || die "openssl: cannot make the etcd key"
	printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$d/ext"
	openssl x509 -req -in "$d/node.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
		-extfile "$d/ext" -out "$d/node.crt" >/dev/null 2>&1 || die "openssl: cannot sign the etcd certificate"
	ESCHEME=https
	ECURL=(--cacert "$d/ca.crt" --cert "$d/node.crt" --key "$d/node.key")
	EPB_TLS=(--tls "$d/ca.crt,$d/node.crt,$d/node.key")
}
etcd_start() {
	local i=$1 e=$ESCHEME d=$WORK/etls tls=()
	local cluster="e1=$e://127.0.0.1:${EPEER[1]},e2=$e://127.0.0.1:${EPEER[2]},e3=$e://127.0.0.1:${EPEER[3]}"
	[[ $e == https ]] && tls=(--cert-file "$d/node.crt" --key-file "$d/node.key" --trusted-ca-file "$d/ca.crt"
		--client-cert-auth --peer-cert-file "$d/node.crt" --peer-key-file "$d/node.key"
		--peer-trusted-ca-file "$d/ca.crt" --peer-client-cert-auth)
	etcd --name "e$i" --data-dir "$WORK/e$i" \
		--listen-peer-urls "$e://127.0.0.1:${EPEER[$i]}" --initial-advertise-peer-urls "$e://127.0.0.1:${EPEER[$i]}" \
		--listen-client-urls "$e://127.0.0.1:${ECLI[$i]}" --advertise-client-urls "$e://127.0.0.1:${ECLI[$i]}" \
		--initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token orch-bench \
		--heartbeat-interval 100 --election-timeout 500 --pre-vote=true "${tls[@]}" \
		>>"$WORK/e$i.log" 2>&1 &
	ETCD_PID[$i]=$!
	disown "$!" # killed on purpose: no "Killed" job notices
	ETCD_EP[$i]=127.0.0.1:${ECLI[$i]}
}
# Status of one member through the gateway: member_id, leader, raftIndex (strings).
estatus() { curl -s -m 2 "${ECURL[@]}" -X POST "$ESCHEME://$1/v3/maintenance/status" -d '{}' 2>/dev/null || true; }
# The index (1-3) of the member that leads, or nothing.
etcd_leader_idx() {
	local i s
	for i in 1 2 3; do
		kill -0 "${ETCD_PID[$i]}" 2>/dev/null || continue
		s=$(estatus "${ETCD_EP[$i]}")
		[[ -n $(jstr "$s" leader) && $(jstr "$s" leader) == "$(jstr "$s" member_id)" ]] && { echo "$i"; return 0; }
	done
}

# After the nodes under $WORK/n1..n3 were killed: waits for each to exit, runs
# `orch debug cleanup` on its data dir, then removes $WORK (KEEP=1 keeps it). Needs $O.
cleanup_nodes() {
	local i pid
	for i in 1 2 3; do
		[[ -d $WORK/n$i ]] || continue
		pid=$(cat "$WORK/n$i/orch.pid" 2>/dev/null)
		for _ in $(seq 1 100); do [[ -n $pid && -d /proc/$pid ]] || break; sleep 0.05; done
		"$O" -D "$WORK/n$i" debug cleanup >/dev/null 2>&1 || log "orch debug cleanup of n$i failed"
	done
	if [[ ${KEEP:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
