#!/bin/sh
# Builds orch as it was at a release tag (default v0.15.0) into vendor/releases/TAG/orch,
# once: the upgrade test (test/integration/test_upgrade.py) runs it beside the current
# build. The tag's tree comes from this clone (git archive), built with the same staged Zig
# (vendor/zig) into its own cache; about 25 s the first time, nothing after.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:-v0.15.0}
out="$here/vendor/releases/$tag"
[ -x "$out/orch" ] && exit 0
command -v git >/dev/null || { echo "build-release: git is needed to build $tag" >&2; exit 1; }
# a clone made without tags still has the release's commit in its history
case $tag in
v0.15.0) commit=62b826fd2ffeba4de56f462ad04880a74e6b275d ;;
*) commit= ;;
esac
if git -C "$here" rev-parse -q --verify "refs/tags/$tag^{commit}" >/dev/null; then
	rev=$tag
elif [ -n "$commit" ] && git -C "$here" cat-file -e "$commit^{commit}" 2>/dev/null; then
	rev=$commit
else
	echo "build-release: neither tag $tag nor its commit is in this clone ($here): fetch it (git fetch --tags) or clone with history" >&2
	exit 1
fi
[ -x "$here/vendor/zig/zig" ] || { echo "build-release: no staged Zig at vendor/zig: run scripts/setup.sh" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C "$here" archive "$rev" | tar -x -C "$tmp"
mkdir -p "$tmp/vendor"
ln -s "$(readlink -f "$here/vendor/zig")" "$tmp/vendor/zig"
(cd "$tmp" && vendor/zig/zig build -Dversion="${tag#v}" --cache-dir "$here/.zig-cache/release-$tag" >&2)
mkdir -p "$out"
cp "$tmp/zig-out/bin/orch" "$out/orch.tmp"
mv "$out/orch.tmp" "$out/orch"
echo "build-release: $out/orch (orch ${tag#v})" >&2
