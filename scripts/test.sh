#!/bin/sh
# Runs every test of orch: installs what is missing (scripts/setup.sh, idempotent), builds
# with warnings as errors, then runs the unit tests and the integration tests
# (test/run.py; arguments are passed on, e.g. a test name to run only matching tests).
# Needs root on Debian 12 (packages; later tests use runc, cgroups and namespaces).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
[ "$(id -u)" = 0 ] || { echo "test: run as root (setup installs packages; tests need root)" >&2; exit 1; }
scripts/setup.sh
vendor/zig/zig build -Dwerror=true
scripts/build-release.sh v0.15.0   # the previous release, for the upgrade test (cached)
exec python3 test/run.py "$@"
