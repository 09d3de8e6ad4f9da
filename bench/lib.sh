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
