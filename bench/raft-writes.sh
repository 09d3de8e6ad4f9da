#!/usr/bin/env bash
# Replicated-write benchmark: orch (3 nodes) against etcd (3 members), all on 127.0.0.1 of
# this machine, in one run. Measures throughput with many writes in flight, latency one at a
# time (both to the leader and to a follower), prints the figures with the ratios orch/etcd,
# then the failover time (leader lost -> next acknowledged write) for orch and, unless
# ETCD_FAILOVER=0, for etcd, in two cases: kill -9 of the leader (its sockets close) and
# SIGSTOP of it (nothing closes, as in a partition: only the election timeout helps). See bench/README.md for the figures observed here.
#
# Knobs (environment): COUNT (writes per throughput run, 20000), LAT_COUNT (writes per
# latency run, 2000), VALUE (bytes, 100), RUNS (failover runs, 5), ETCD_FAILOVER (1),
# ETCD_TLS (1: etcd's peer and client URLs over TLS with client certificates, as orch's node
# port; 0: plain HTTP), ONLY (orch or etcd), KEEP (1 = keep the temp dir for inspection), ORCH_BIN (use this
# orch binary instead of building one).
# Every loop is bounded by a count and a deadline; the whole run aborts after BUDGET s (400).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
COUNT=${COUNT:-20000}
LAT_COUNT=${LAT_COUNT:-2000}
VALUE=${VALUE:-100}
RUNS=${RUNS:-5}
ETCD_FAILOVER=${ETCD_FAILOVER:-1}
ETCD_TLS=${ETCD_TLS:-1}
ONLY=${ONLY:-} # orch or etcd: run only that half
BUDGET=${BUDGET:-400}
START_S=$(date +%s)
WORK=$(mktemp -d /tmp/orch-bench.XXXXXX)
O=$WORK/bin/orch
EPB=$WORK/etcd_put_bench
declare -a ETCD_PID=() ETCD_EP=() PICKED=()

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# Kills only what this script started: orch nodes by the pid file in their data dir (checked
# against the process's command line), etcd members by the pid recorded at spawn.
kill_orch() { # dir [signal, default KILL]
	local dir=$1 sig=${2:-KILL} pid
	pid=$(cat "$dir/orch.pid" 2>/dev/null) || return 0
	if [[ -n $pid ]] && grep -qs -- "$dir" "/proc/$pid/cmdline"; then
		kill -"$sig" "$pid" 2>/dev/null || true
	fi
}
cleanup() {
	local i
	for i in 1 2 3; do kill_orch "$WORK/n$i"; done
	for i in "${!ETCD_PID[@]}"; do kill -9 "${ETCD_PID[$i]}" 2>/dev/null || true; done
	if [[ ${KEEP:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# median min max of a list of numbers
stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
	if (NR == 0) { print "- - -"; exit }
	m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
	printf "%.0f %.0f %.0f\n", m, v[1], v[NR] }'; }

ostatus() { timeout 5 "$O" -D "$1" status -o json 2>/dev/null || true; }
alive() { local p; p=$(cat "$1/orch.pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null; }
declare -a OPORT=() OFAIL=() EFAIL=() OFAILP=() EFAILP=()
declare -A R=()

# ---- build -------------------------------------------------------------------------------
if [[ -n ${ORCH_BIN:-} ]]; then
	O=$ORCH_BIN
	log "using $O (ORCH_BIN); building the etcd client"
else
	# Into a private prefix: zig-out/ may be rebuilt (e.g. Debug) by someone else meanwhile.
	log "building orch (ReleaseSafe) into $WORK/bin and the etcd client"
	(cd "$ROOT" && vendor/zig/zig build -Doptimize=ReleaseSafe -p "$WORK" >"$WORK/build.log" 2>&1) ||
		{ tail -20 "$WORK/build.log" >&2; die "zig build failed (ORCH_BIN=path uses a binary built before)"; }
fi
"$ROOT/vendor/zig/zig" cc -O2 -o "$EPB" "$ROOT/bench/etcd_put_bench.c" -lssl -lcrypto || die "cannot compile etcd_put_bench.c"
command -v etcd >/dev/null || die "etcd not installed (apt-get install etcd-server etcd-client)"

if [[ $ONLY != etcd ]]; then
	# ---- orch cluster --------------------------------------------------------------------------
	log "starting 3 orch nodes"
	for i in 1 2 3; do pick_port "OPORT[$i]"; done
	out=$(timeout 60 "$O" init --listen "127.0.0.1:${OPORT[1]}" --data-dir "$WORK/n1" --name n1 --detach) ||
		die "orch init failed: $out"
	TOKEN=$(grep -o 'ORCH2-[0-9a-f-]*' <<<"$out" | head -1)
	[[ -n $TOKEN ]] || die "no join token in: $out"
	for i in 2 3; do
		ORCH_TOKEN="$TOKEN" timeout 60 "$O" join "127.0.0.1:${OPORT[1]}" --listen "127.0.0.1:${OPORT[$i]}" \
			--data-dir "$WORK/n$i" --name "n$i" --detach >/dev/null || die "orch join n$i failed"
	done
	deadline=$(($(date +%s) + 30))
	until [[ $(timeout 5 "$O" -D "$WORK/n1" nodes -o json 2>/dev/null | grep -o '"role":"voter"' | wc -l) == 3 ]]; do
		(($(date +%s) < deadline)) || die "orch: 3 voters not reached in 30 s"
		sleep 0.1
	done

	# Prints the data dir of the current leader (asked through a live node), or nothing.
	orch_leader_dir() {
		local i s name
		for i in 1 2 3; do
			alive "$WORK/n$i" || continue
			s=$(ostatus "$WORK/n$i")
			name=$(jstr "$s" leader_name)
			[[ -n $name ]] && { echo "$WORK/$name"; return 0; }
		done
	}
	LEADER=$(orch_leader_dir)
	[[ -n $LEADER ]] || die "orch: no leader"
	for i in 1 2 3; do [[ $WORK/n$i != "$LEADER" ]] && { FOLLOWER=$WORK/n$i; break; }; done
	log "orch: 3 voters, leader $(basename "$LEADER"), follower used $(basename "$FOLLOWER")"

	orch_run() { # key dir count inflight
		local line
		budget
		line=$(timeout 120 "$O" -D "$2" debug write-bench --count "$3" --inflight "$4" --value-size "$VALUE") ||
			die "orch write-bench $1 failed: $line"
		R[orch_$1]=$line
		log "orch $1: $line"
	}
	orch_run lat_leader "$LEADER" "$LAT_COUNT" 1
	orch_run lat_follower "$FOLLOWER" "$LAT_COUNT" 1
	orch_run tp64_leader "$LEADER" "$COUNT" 64
	orch_run tp256_leader "$LEADER" "$COUNT" 256
	orch_run tp64_follower "$FOLLOWER" "$COUNT" 64
	orch_run tp256_follower "$FOLLOWER" "$COUNT" 256

	# ---- orch failover -------------------------------------------------------------------------
	# One run: kill -9 the leader (mode kill: the kernel closes its sockets, its port refuses),
	# or SIGSTOP it (mode stop: like a machine cut off, nothing closes, its followers hear
	# nothing; it is killed once the write is acknowledged), then single writes through a
	# surviving node's socket until one is acknowledged; the time is from just before the
	# signal to that acknowledgement. Each write is a new `orch debug write-bench --count 1`
	# process (~1-2 ms of start-up per attempt).
	orch_failover_run() {
		local run=$1 mode=$2 lead via t0 ms="" attempts=0 s lidx old_term new_term
		lead=$(orch_leader_dir)
		[[ -n $lead ]] || die "orch failover: no leader before run $run"
		for i in 1 2 3; do [[ $WORK/n$i != "$lead" ]] && { via=$WORK/n$i; break; }; done
		old_term=$(jnum "$(ostatus "$via")" term)
		t0=$(date +%s%N)
		tod=$(date +%H:%M:%S.%3N) # the node logs stamp lines with the time of day
		if [[ $mode == kill ]]; then kill_orch "$lead"; else kill_orch "$lead" STOP; fi
		while (($(date +%s%N) - t0 < 10000000000)); do
			attempts=$((attempts + 1))
			if timeout 5 "$O" -D "$via" debug write-bench --count 1 --inflight 1 --value-size "$VALUE" >/dev/null 2>&1; then
				ms=$(ms_since "$t0")
				break
			fi
		done
		[[ $mode == stop ]] && kill_orch "$lead"
		[[ -n $ms ]] || die "orch failover ($mode) run $run: no write acknowledged within 10 s"
		s=$(ostatus "$via")
		new_term=$(jnum "$s" term)
		if [[ $mode == kill ]]; then OFAIL+=("$ms"); else OFAILP+=("$ms"); fi
		# When the new leader logged its election, to split the time into election and the rest.
		elected=$(cat "$WORK"/n?/orch.log | awk -v t="$tod" '
			function ms(x, a) { split(x, a, ":"); return (a[1] * 60 + a[2]) * 60000 + a[3] * 1000 }
			/ raft: leader, / && $1 > t { d = ms($1) - ms(t); if (best == "" || d < best) best = d }
			END { print best == "" ? "?" : best }')
		log "orch failover ($mode) run $run: $mode $(basename "$lead"), write acknowledged via $(basename "$via") after $ms ms ($attempts attempts; leader elected after ~$elected ms), new leader $(jstr "$s" leader_name), term $old_term -> $new_term"
		# Resume the killed node on its data dir, wait until it applied what the leader committed.
		timeout 60 "$O" init --data-dir "$lead" --detach >/dev/null || die "restarting $(basename "$lead") failed"
		lidx=$(jnum "$s" commit_index)
		local deadline=$(($(date +%s) + 20)) a
		while :; do
			a=$(jnum "$(ostatus "$lead")" applied_index)
			[[ -n $a && $a -ge $lidx ]] && break
			(($(date +%s) < deadline)) || die "restarted $(basename "$lead") did not catch up to $lidx in 20 s (at ${a:-?})"
			sleep 0.05
		done
		until [[ $(timeout 5 "$O" -D "$via" nodes -o json 2>/dev/null | grep -o '"role":"voter"' | wc -l) == 3 ]]; do
			(($(date +%s) < deadline)) || die "orch: 3 voters not back after run $run"
			sleep 0.05
		done
	}
	for mode in kill stop; do
		for run in $(seq 1 "$RUNS"); do
			budget
			orch_failover_run "$run" "$mode"
			sleep 1 # let the restarted node settle (heartbeats, link to the leader)
		done
	done
	for i in 1 2 3; do kill_orch "$WORK/n$i"; done
fi

if [[ $ONLY != orch ]]; then
	# ---- etcd cluster -------------------------------------------------------------------------
	# Same election/heartbeat timings as orch (500/100 ms) and pre-vote on, so that failover is
	# compared on equal settings; the write path uses etcd's defaults (WAL fdatasync per batch).
	[[ $ETCD_TLS == 1 ]] && etcd_tls_certs
	log "starting 3 etcd members ($ESCHEME)"
	declare -a EPEER=() ECLI=()
	for i in 1 2 3; do pick_port "EPEER[$i]"; pick_port "ECLI[$i]"; done
	for i in 1 2 3; do etcd_start "$i"; done
	deadline=$(($(date +%s) + 30))
	until [[ -n $(etcd_leader_idx) ]] && [[ $(curl -s -m 2 "${ECURL[@]}" -X POST "$ESCHEME://${ETCD_EP[1]}/v3/cluster/member/list" -d '{}' | grep -o '"clientURLs"' | wc -l) == 3 ]]; do
		(($(date +%s) < deadline)) || die "etcd: no 3-member cluster with a leader in 30 s (see $WORK/e1.log)"
		sleep 0.2
	done
	EL=$(etcd_leader_idx)
	EF=$((EL % 3 + 1))
	log "etcd: leader e$EL, follower used e$EF"
	etcd_run() { # key member count inflight
		local line
		budget
		line=$(timeout 120 "$EPB" "${EPB_TLS[@]}" --endpoint "${ETCD_EP[$2]}" --count "$3" --inflight "$4" --value-size "$VALUE") ||
			die "etcd bench $1 failed: $line"
		R[etcd_$1]=$line
		log "etcd $1: $line"
	}
	etcd_run lat_leader "$EL" "$LAT_COUNT" 1
	etcd_run lat_follower "$EF" "$LAT_COUNT" 1
	etcd_run tp64_leader "$EL" "$COUNT" 64
	etcd_run tp256_leader "$EL" "$COUNT" 256
	etcd_run tp64_follower "$EF" "$COUNT" 64
	etcd_run tp256_follower "$EF" "$COUNT" 256

	# ---- etcd failover (optional) ---------------------------------------------------------------
	if [[ $ETCD_FAILOVER == 1 ]]; then
		for mode in kill stop; do
			for run in $(seq 1 "$RUNS"); do
				budget
				l=$(etcd_leader_idx)
				[[ -n $l ]] || die "etcd failover: no leader before run $run"
				eps=""
				for i in 1 2 3; do [[ $i != "$l" ]] && eps+="${eps:+,}${ETCD_EP[$i]}"; done
				t0=$(date +%s%N)
				if [[ $mode == kill ]]; then kill -9 "${ETCD_PID[$l]}"; else kill -STOP "${ETCD_PID[$l]}"; fi
				line=$("$EPB" "${EPB_TLS[@]}" --until-ok "$eps" --since-ns "$t0" --deadline-ms 10000) || die "etcd failover ($mode) run $run: $line"
				[[ $mode == stop ]] && kill -9 "${ETCD_PID[$l]}"
				ms=$(field "$line" failover_ms)
				if [[ $mode == kill ]]; then EFAIL+=("$ms"); else EFAILP+=("$ms"); fi
				log "etcd failover ($mode) run $run: e$l, $line"
				target=$(jstr "$(estatus "${eps%%,*}")" raftIndex)
				etcd_start "$l"
				deadline=$(($(date +%s) + 20))
				while :; do
					s=$(estatus "${ETCD_EP[$l]}")
					idx=$(jstr "$s" raftIndex)
					[[ -n $idx && $idx -ge ${target:-0} && -n $(jstr "$s" leader) ]] && break
					(($(date +%s) < deadline)) || die "etcd: restarted e$l did not catch up in 20 s"
					sleep 0.05
				done
				sleep 1
			done
		done
	fi
	for i in 1 2 3; do kill -9 "${ETCD_PID[$i]}" 2>/dev/null || true; done
fi

# ---- report --------------------------------------------------------------------------------
echo
echo "Replicated writes, ${VALUE}-byte values, 3 nodes on 127.0.0.1, $(nproc) CPUs, etcd over $ESCHEME, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "ratio = orch/etcd (ops/s: >1 means orch is faster; latency: <1 means orch is faster)"
printf '%-24s | %9s %8s %8s | %9s %8s %8s | %6s %6s %6s\n' scenario "orch op/s" "p50 us" "p99 us" \
	"etcd op/s" "p50 us" "p99 us" "op/s" "p50" "p99"
printf '%s\n' "-------------------------+------------------------------+------------------------------+---------------------"
for k in lat_leader lat_follower tp64_leader tp256_leader tp64_follower tp256_follower; do
	o=${R[orch_$k]:-} e=${R[etcd_$k]:-}
	case $k in
	lat_*) label="1 at a time, ${k#lat_}" ;;
	tp64_*) label="64 in flight, ${k#tp64_}" ;;
	tp256_*) label="256 in flight, ${k#tp256_}" ;;
	esac
	printf '%-24s | %9s %8s %8s | %9s %8s %8s | %6s %6s %6s\n' "$label" \
		"$(field "$o" ops_per_sec)" "$(field "$o" p50_us)" "$(field "$o" p99_us)" \
		"$(field "$e" ops_per_sec)" "$(field "$e" p50_us)" "$(field "$e" p99_us)" \
		"$(ratio "$(field "$o" ops_per_sec)" "$(field "$e" ops_per_sec)")" \
		"$(ratio "$(field "$o" p50_us)" "$(field "$e" p50_us)")" \
		"$(ratio "$(field "$o" p99_us)" "$(field "$e" p99_us)")"
done
echo
# failover_report LABEL ORCH_RUNS... -- ETCD_RUNS...
failover_report() {
	local label=$1 om=- em=- omin omax emin emax
	shift
	local -a o=() e=()
	while (($#)) && [[ $1 != -- ]]; do o+=("$1"); shift; done
	(($#)) && shift
	e=("$@")
	echo "failover, $label -> next acknowledged write, ms:"
	if ((${#o[@]})); then
		read -r om omin omax <<<"$(stats "${o[@]}")"
		echo "  orch median $om (min $omin, max $omax; runs: ${o[*]})"
	fi
	if ((${#e[@]})); then
		read -r em emin emax <<<"$(stats "${e[@]}")"
		echo "  etcd median $em (min $emin, max $emax; runs: ${e[*]})"
	fi
	echo "  ratio orch/etcd $(ratio "$om" "$em")"
}
failover_report "kill -9 of the leader (its sockets close)" "${OFAIL[@]}" -- "${EFAIL[@]}"
failover_report "SIGSTOP of the leader (nothing closes: as a partition)" "${OFAILP[@]}" -- "${EFAILP[@]}"
log "done"
