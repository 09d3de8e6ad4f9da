#!/bin/sh
# libFuzzer harnesses of the parsers that take outside input (test/fuzz/*.c, one per
# target), built with clang-14 and ASan+UBSan against the project's sources.
#
#   scripts/fuzz.sh                   builds every harness, then fuzzes each for 60 s
#   scripts/fuzz.sh TARGET [SECONDS]  builds, then fuzzes TARGET (default 300 s)
#   scripts/fuzz.sh check [TARGET]    builds, then runs each harness (or one) over its seed
#                                     corpus and regression inputs and fuzzes for
#                                     FUZZ_CHECK_SECONDS (8); what the test suite runs
#   scripts/fuzz.sh build             builds only
#   scripts/fuzz.sh list              names the targets
#
# Inputs: test/fuzz/corpus/TARGET (seeds, read only), test/fuzz/regress/TARGET (inputs that
# once crashed, kept as regression cases). New inputs a long run finds go to
# $FUZZ_OUT/TARGET/corpus (default zig-out/fuzz/run), crashes to $FUZZ_OUT/TARGET/.
# Exit status 1 when a harness crashed, leaked or timed out; the input is named.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
CC=${FUZZ_CC:-clang-14}
build=zig-out/fuzz
out=${FUZZ_OUT:-$here/$build/run}
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cflags='-std=c11 -D_GNU_SOURCE -g -O1 -Isrc -Itest/fuzz -DORCH_VERSION="fuzz" -w'
libs="-lraft -luv -llz4 -lmsgpackc -lyaml -lz -lzstd -lssl -lcrypto -lpthread -lm"

targets() {
	for f in test/fuzz/*.c; do
		b=$(basename "$f" .c)
		[ "$b" = common ] || echo "$b"
	done
}

need() {
	command -v "$CC" >/dev/null || { echo "fuzz: $CC not found (scripts/setup.sh installs it: vendor/manifest)" >&2; exit 2; }
	rt=$("$CC" -print-resource-dir)/lib/linux/libclang_rt.fuzzer-x86_64.a
	[ -f "$rt" ] || { echo "fuzz: libFuzzer runtime missing ($rt): install libclang-rt-14-dev" >&2; exit 2; }
}

# One object per source file, rebuilt when the source or any header is newer; then one
# archive, so each harness links only what it uses.
build_all() {
	need
	mkdir -p "$build/obj"
	newest_h=$(find src test/fuzz -name '*.h' -newer "$build/lib.a" 2>/dev/null | head -1)
	[ -f "$build/lib.a" ] || newest_h=all
	find src -name '*.c' ! -path src/main.c | sort | while read -r f; do
		o="$build/obj/$(echo "$f" | tr / _).o"
		if [ -n "$newest_h" ] || [ ! -f "$o" ] || [ "$f" -nt "$o" ]; then echo "$f $o"; fi
	done >"$build/todo"
	if [ -s "$build/todo" ]; then
		echo "fuzz: compiling $(wc -l <"$build/todo") sources" >&2
		# the flags go through the environment: unquoted there, their quotes stay literal
		FUZZ_CMD="$CC $cflags $san -fsanitize=fuzzer-no-link" xargs -P "$(nproc)" -L 1 sh -c '$FUZZ_CMD -c "$0" -o "$1"' <"$build/todo"
		rm -f "$build/lib.a"
		ar rcs "$build/lib.a" "$build"/obj/*.o
	fi
	for t in $(targets); do
		bin="$build/$t"
		if [ ! -x "$bin" ] || [ "test/fuzz/$t.c" -nt "$bin" ] || [ "$build/lib.a" -nt "$bin" ] || [ test/fuzz/common.h -nt "$bin" ]; then
			# shellcheck disable=SC2086
			$CC $cflags $san -fsanitize=fuzzer "test/fuzz/$t.c" "$build/lib.a" $libs -o "$bin"
		fi
	done
}

# Several runs may start at once (the test suite, a long run): one builds, the others wait.
locked_build() {
	mkdir -p "$build"
	exec 9>"$build/.lock"
	flock 9
	build_all
	flock -u 9
}

# run TARGET SECONDS WORKDIR: fuzzes from the seeds and regression inputs; new inputs go
# to WORKDIR/corpus.
run() {
	t=$1 secs=$2 work=$3
	[ -x "$build/$t" ] || { echo "fuzz: no target $t (scripts/fuzz.sh list)" >&2; exit 2; }
	mkdir -p "$work/corpus" test/fuzz/corpus/"$t"
	dirs="$work/corpus $here/test/fuzz/corpus/$t"
	[ -d test/fuzz/regress/"$t" ] && dirs="$dirs $here/test/fuzz/regress/$t"
	opts=""
	[ -f "test/fuzz/$t.dict" ] && opts="-dict=$here/test/fuzz/$t.dict"
	# shellcheck disable=SC2086
	if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1 \
		"$build/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		-print_final_stats=1 -artifact_prefix="$work/" $opts $dirs >"$work/log" 2>&1; then
		echo "FAIL fuzz $t: see $work/log" >&2
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|artifact_prefix|Test unit written)' "$work/log" | head -8 >&2
		return 1
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
	echo "ok fuzz $t: $execs runs in ${secs}s"
}

cmd=${1:-all}
case "$cmd" in
list) targets ;;
build) locked_build ;;
check)
	locked_build
	tmp=$(mktemp -d)
	rc=0
	for t in ${2:-$(targets)}; do
		run "$t" "${FUZZ_CHECK_SECONDS:-8}" "$tmp/$t" || rc=1
	done
	[ $rc = 0 ] && rm -rf "$tmp"
	exit $rc
	;;
all)
	locked_build
	rc=0
	for t in $(targets); do run "$t" 60 "$out/$t" || rc=1; done
	exit $rc
	;;
*)
	locked_build
	run "$cmd" "${2:-300}" "$out/$cmd"
	;;
esac
