#!/usr/bin/env bash
# run.sh: the body of `make chaos` and `make chaos-short`. Starts a fresh dozen stack of its
# own (RUN_DIR .run/chaos, ports 28080.. and 29101.., PostgreSQL on 55532), runs the
# workload, the nemesis and the checker (tests/chaos/chaos.py), and stops everything it
# started whatever happens. Exit status: the checker's (non-zero on a violation).
#
# Settings: CHAOS_DURATION (seconds of workload, 600), CHAOS_SEED (random by default),
# CHAOS_INSTANCES (2), CHAOS_KAFKA (cluster: three Apache Kafka nodes; dev: the dev broker;
# apache: one Apache Kafka broker), CHAOS_REPORT (the report's path, .run/chaos/report.txt).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export RUN_DIR=${CHAOS_RUN_DIR:-$ROOT/.run/chaos}
export DOZEN_BIN=${DOZEN_BIN:-$ROOT/bin}
export PGPORT=55532 SALES_PORT=28080 STOCK_PORT=28081 FACTORY_PORT=28082 NOTIFIER_PORT=28083
export RETRY_PORT=28084 LEGACY_FACTORY_PORT=29101 OPEN_DATA_PORT=29102 SMS_GATEWAY_PORT=29103
export INSTANCES=${CHAOS_INSTANCES:-2}
export CHAOS_DURATION=${CHAOS_DURATION:-600}
export CHAOS_SEED=${CHAOS_SEED:-$((RANDOM * 32768 + RANDOM))}
export CHAOS_KAFKA=${CHAOS_KAFKA:-cluster}
export CHAOS_REPORT=${CHAOS_REPORT:-$RUN_DIR/report.txt}
# Quick deliveries and short waits, so that restocks and retries happen many times a run.
export FACTORY_DELAY_MS=${FACTORY_DELAY_MS:-300}
# A production order whose callback a fault lost is asked for again after this (the
# factory's sweeper), well inside the checker's settle window.
export FACTORY_DELIVERY_TIMEOUT=${FACTORY_DELIVERY_TIMEOUT:-20s}
# A short code's rate: at make up's long-code default of 1 a second the workload's alerts
# would take longer to go out than the checker's settle window.
export SMS_RATE=${SMS_RATE:-100}
# A send that failed (the gateway's injected failures, PostgreSQL gone) is tried again within
# seconds, not after make up's backoff of up to 5 minutes, so that the day settles in time.
export SMS_RETRY_MAX=${SMS_RETRY_MAX:-5s}
export BULLETIN_RETRY_INTERVAL=${BULLETIN_RETRY_INTERVAL:-5s}
export BULLETIN_DEADLINE=${BULLETIN_DEADLINE:-30m}
export UP_TIMEOUT=${UP_TIMEOUT:-120}
unset KAFKA_BOOTSTRAP
case $CHAOS_KAFKA in
    cluster) export KAFKA=cluster ;;
    apache) export KAFKA=apache ;;
    dev) unset KAFKA ;;
    *) echo "chaos: CHAOS_KAFKA must be cluster, apache or dev (got $CHAOS_KAFKA)" >&2; exit 2 ;;
esac
[[ "$CHAOS_DURATION" =~ ^[0-9]{1,5}$ ]] && ((CHAOS_DURATION >= 10)) ||
    { echo "chaos: CHAOS_DURATION must be 10 to 99999 seconds (got $CHAOS_DURATION)" >&2; exit 2; }
[[ "$CHAOS_SEED" =~ ^[0-9]{1,18}$ ]] ||
    { echo "chaos: CHAOS_SEED must be a number (got $CHAOS_SEED)" >&2; exit 2; }

down() { "$ROOT/tools/stack.sh" down >/dev/null 2>&1 || true; }
trap down EXIT
# A fresh system each run: the checker reasons from an empty database and empty topics.
down
rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR"
echo "chaos: seed $CHAOS_SEED, $CHAOS_DURATION s, $INSTANCES instance(s) each, Kafka: $CHAOS_KAFKA"
if ! "$ROOT/tools/stack.sh" up >"$RUN_DIR/stack-up.log" 2>&1; then
    tail -n 30 "$RUN_DIR/stack-up.log" >&2
    echo "chaos: the stack did not start" >&2
    exit 1
fi
rc=0
/usr/bin/python3 "$ROOT/tests/chaos/chaos.py" || rc=$?
exit "$rc"
