# Sourced by the scripts that print headings (scripts/demo.sh): say TEXT prints "== TEXT"
# after a blank line, in bold only when standard output is a terminal and NO_COLOR is not
# set (to anything non-empty), so logs and pipes get plain text.
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi
