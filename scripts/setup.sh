#!/bin/sh
# Installs what orch needs to build, run and test on Debian 12 (as root), then builds it.
# Idempotent: packages already present and a Zig already staged are left alone.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
manifest="$here/vendor/manifest"
pkgs=$(awk '$1=="deb-build"||$1=="deb-run"{for(i=2;i<=NF;i++)print $i}' "$manifest")
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	[ "$(id -u)" = 0 ] || { echo "setup: need root to install:$missing" >&2; exit 1; }
	echo "setup: installing Debian packages:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
zigpin=$(awk '$1=="zig"{print $2}' "$manifest")
zigver=${zigpin#ziglang==}
zigdir="$here/vendor/zig"
if [ ! -x "$zigdir/zig" ] || [ "$("$zigdir/zig" version)" != "$zigver" ]; then
	echo "setup: staging Zig $zigver from PyPI"
	command -v python3 >/dev/null || { apt-get install -y -qq python3-minimal >/dev/null; }
	command -v pip3 >/dev/null || python3 -m pip --version >/dev/null 2>&1 || apt-get install -y -qq python3-pip >/dev/null
	tmp=$(mktemp -d)
	python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$zigpin"
	rm -rf "$zigdir"
	python3 - "$tmp" "$here/vendor" <<'PY'
import sys, zipfile, glob, os, shutil
whl = glob.glob(os.path.join(sys.argv[1], "ziglang-*.whl"))[0]
out = os.path.join(sys.argv[2], "stage-zig")
shutil.rmtree(out, ignore_errors=True)
zipfile.ZipFile(whl).extractall(out)
os.rename(os.path.join(out, "ziglang"), os.path.join(sys.argv[2], "zig"))
shutil.rmtree(out)
PY
	chmod +x "$zigdir/zig"
	rm -rf "$tmp"
fi
echo "setup: building orch"
cd "$here"
"$zigdir/zig" build -Doptimize=ReleaseSafe ${ORCH_BUILD_FLAGS:-} 
echo "setup: ok ($(file -b zig-out/bin/orch | cut -d, -f1-5))"
