#!/usr/bin/env bash
# both.sh: the system tests of `make test`: the pass on the dev broker and the pass on
# Apache Kafka (tests/system/on-apache-kafka.sh), side by side. Each pass has its own
# PostgreSQL server, broker and free ports, so they share nothing but the CPU; the tests
# wait on conditions with deadlines, not on sleeps, so they hold under that load.
# DOZEN_TEST_SPLIT=1 runs each file where its subject lives (ON_KAFKA / ON_DEV / ON_BOTH in
# tests/system/conftest.py).
#
#   tests/system/both.sh [pytest arguments]
#
# The dev pass prints as it goes; the Apache Kafka pass's output follows when it ends.
# Exits non-zero when either pass failed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
export DOZEN_TEST_SPLIT=1 PYTHON

log=$(mktemp /tmp/dozen-kafka-pass-XXXXXX.log)
# Its own process group, so that an interrupted run stops the whole pass (pytest, the
# services it started, the broker) and not only the script.
setsid "$ROOT/tests/system/on-apache-kafka.sh" "$@" >"$log" 2>&1 &
kafka_pid=$!

stop_kafka_pass() {
    if kill -0 "$kafka_pid" 2>/dev/null; then
        kill -TERM -- "-$kafka_pid" 2>/dev/null
        wait "$kafka_pid" 2>/dev/null
    fi
    rm -f "$log"
}
trap stop_kafka_pass EXIT
trap 'exit 130' INT TERM

echo "== system tests on the dev broker (bin/devbroker, librdkafka's mock cluster);"
echo "   the pass on Apache Kafka runs alongside, its output follows"
"$PYTHON" -m pytest -q -p no:cacheprovider "$@"
dev_rc=$?

wait "$kafka_pid"
kafka_rc=$?
cat "$log"
if [ "$dev_rc" != 0 ] || [ "$kafka_rc" != 0 ]; then
    echo "FAILED: system tests: dev broker pass exit $dev_rc, Apache Kafka pass exit $kafka_rc" >&2
    exit 1
fi
