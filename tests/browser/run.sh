#!/usr/bin/env bash
# run.sh: the browser tests. Starts a stack of its own (tools/stack.sh with a RUN_DIR of its
# own on free ports), runs tests/browser/test.mjs in Debian's chromium through playwright-core,
# and stops the stack again, pass or fail. Exit 0 when every test passed; 77 (skipped, with
# the reason printed) only when chromium is installed but cannot start here (a container
# without the kernel features it needs). A missing chromium, node or playwright-core is a
# failure: `make deps` and `make test-browser` install them, so their absence is a broken setup.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/browser
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

skip() { printf 'test-browser: SKIPPED: %s\n' "$*"; exit 77; }
fail() { printf 'test-browser: FAILED: %s\n' "$*" >&2; exit 1; }
[ -x "$CHROMIUM" ] || fail "no $CHROMIUM (make deps installs Debian's chromium)"
command -v node >/dev/null || fail "no node (make deps installs Debian's nodejs)"
[ -f "$HERE/node_modules/playwright-core/package.json" ] ||
    fail "no playwright-core in $HERE/node_modules (make test-browser installs it with npm)"
# Can chromium start here at all? (a container without the kernel features it needs)
if ! out=$(timeout 30 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
        --disable-background-networking --dump-dom about:blank 2>&1); then
    skip "chromium cannot start: $(printf '%s' "$out" | tail -n 3)"
fi

RUN=$(mktemp -d /tmp/dozen-browser.XXXXXX)
chmod 755 "$RUN"   # PostgreSQL runs as its own user and must reach its data under it
cleanup() {
    RUN_DIR=$RUN "$ROOT/tools/stack.sh" down >/dev/null 2>&1 || true
    if [ -n "${KEEP_RUN:-}" ]; then echo "test-browser: logs kept in $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT

# Nine free ports, asked of the kernel (bound and released at once).
read -r -a P < <(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(9)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
for s in ss: s.close()')
export RUN_DIR=$RUN DOZEN_BIN=$ROOT/bin PGPORT=${P[0]} SALES_PORT=${P[1]} STOCK_PORT=${P[2]} \
       FACTORY_PORT=${P[3]} NOTIFIER_PORT=${P[4]} RETRY_PORT=${P[5]} LEGACY_FACTORY_PORT=${P[6]} \
       OPEN_DATA_PORT=${P[7]} SMS_GATEWAY_PORT=${P[8]}
# A delivery that lands in a few seconds, and sign-up codes that expire within the test.
export FACTORY_DELAY_MS=${FACTORY_DELAY_MS:-1500} SIGNUP_CODE_TTL=${SIGNUP_CODE_TTL:-8s}
"$ROOT/tools/stack.sh" up > "$RUN/up.log" 2>&1 || { cat "$RUN/up.log"; exit 1; }
set -a
. "$RUN/env"
set +a
export DOZEN_ROOT=$ROOT CHROMIUM SCREENSHOTS=${SCREENSHOTS:-$ROOT/docs/screenshots}
mkdir -p "$SCREENSHOTS"
cd "$HERE"
timeout "${BROWSER_TIMEOUT:-300}" node test.mjs "$@"
