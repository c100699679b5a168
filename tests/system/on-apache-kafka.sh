#!/usr/bin/env bash
# on-apache-kafka.sh: runs the system tests against a real Apache Kafka broker started for
# this run only (own ports and data directory, stopped at the end whatever happens).
#
#   tests/system/on-apache-kafka.sh [pytest arguments]
#
# Where CI=true a broker that cannot be started fails the run; elsewhere the run is skipped
# with the reason printed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
KAFKA_SH=$ROOT/tools/kafka/kafka.sh

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

data=$(mktemp -d /tmp/dozen-kafka-XXXXXX)
export KAFKA_DATA_DIR=$data
KAFKA_PORT=$(free_port)
KAFKA_CONTROLLER_PORT=$(free_port)
export KAFKA_PORT KAFKA_CONTROLLER_PORT

cleanup() {
    "$KAFKA_SH" down >/dev/null 2>&1 || true
    rm -rf "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! out=$("$KAFKA_SH" up 2>&1); then
    printf '%s\n' "$out" | tail -n 20 >&2
    if [ "${CI:-}" = true ]; then
        echo "FAILED: the Apache Kafka broker could not be started (see above); CI needs it." >&2
        exit 1
    fi
    echo "SKIPPED: system tests on Apache Kafka: the broker could not be started (see above)."
    exit 0
fi
bootstrap=$(printf '%s\n' "$out" | tail -n 1)
echo "== system tests on Apache Kafka ($(basename "$(dirname "$("$KAFKA_SH" fetch 2>/dev/null)")")) at $bootstrap"

DOZEN_TEST_BROKER=external KAFKA_BOOTSTRAP=$bootstrap DOZEN_KAFKA_CTL=$KAFKA_SH \
    "$PYTHON" -m pytest -q -p no:cacheprovider "$@"
