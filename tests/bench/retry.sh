#!/usr/bin/env bash
# retry.sh: the body of `make bench-retry`: how late the retry service (services/retry)
# redelivers records that fall due, and how its memory grows with the records it holds.
#
# It starts a private stack (tools/stack.sh up with its own RUN_DIR and free ports, through
# tests/bench/common.sh) and stops the factory at once: the bench's hand-made redeliveries
# on retry.factory are for the bench's reader, not for the factory's handler. Then, with
# hand-made retry records for group `factory` (tests/bench/retry_load.py, headers as
# docs/retry.md has them):
#   1. memory, small: RETRY_SMALL records due in a day produced to `retry`; once GET /stats
#      shows them all pending, the retry process's VmHWM (peak RSS) is read;
#   2. lateness: RETRY_DUE records due uniformly over the next RETRY_SPREAD_S seconds (from
#      2 s on); each redelivery's lateness is the time a reader on retry.factory received it
#      minus its dozen-not-before (and, for comparison, the record's timestamp, which the
#      retry service's producer sets, minus its not-before): p50, p99, max;
#   3. memory, large: the retry service restarted (same environment, so that VmHWM starts
#      afresh) and RETRY_LARGE records due in a day, then VmHWM as in 1.
# The memory runs produce their records in one burst, except on the dev broker: it keeps only
# the newest 5 MiB of each partition (librdkafka's mock cluster, a fixed limit), about 9,500
# of these records, and drops older ones whether read or not, so a burst of 100,000 would
# lose the records the service had not fetched yet unless the service buffered the whole
# burst in memory, which is what the memory target forbids. There the records are produced
# in steps, never more than RETRY_WINDOW of them ahead of what GET /stats shows pending.
# The results are printed and recorded in docs/bench.md under "Retry service". The stack is
# stopped and RUN_DIR removed however the script ends.
#
# Settings (environment):
#   RETRY_DUE          records of the lateness run (10000)
#   RETRY_SPREAD_S     seconds they are spread over (60)
#   RETRY_SMALL        pending records of the small memory run (1000)
#   RETRY_LARGE        pending records of the large memory run (100000)
#   RETRY_WINDOW       memory runs: at most this many records produced but not yet pending
#                      (15000 on the dev broker: under 5 MiB of a partition even with the
#                      37 % of the records that the busiest one gets; 0, one burst, on
#                      another broker)
#   RETRY_MAX_LATE_MS  the target for the largest lateness (1000)
#   RETRY_DOC          where the run is recorded (docs/bench.md, after the line
#                      "<!-- retry runs -->"); "none" records nothing
#   KAFKA_<PROPERTY>   librdkafka properties for the services, passed on as they are
#                      (libcommon/kafka.c): KAFKA_QUEUED_MAX_MESSAGES_KBYTES=4096, for instance
#   BENCH_KAFKA=apache, BENCH_KAFKA_BOOTSTRAP   another broker (tests/bench/common.sh)
#   DOZEN_BIN          the programs (bin/)
# Exit status: 0 when the targets are met (largest lateness under RETRY_MAX_LATE_MS, none
# early, every record redelivered, the two peaks within 2x), 1 when one is not, 2 when the
# bench could not run.
set -eEuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/bench
BIN=${DOZEN_BIN:-$ROOT/bin}
BENCH_NAME=bench-retry
# say, die, is_int, the private stack and its clean-up, bounded, bench_machine.
# shellcheck source=tests/bench/common.sh
. "$HERE/common.sh"

DUE=${RETRY_DUE:-10000}
SPREAD_S=${RETRY_SPREAD_S:-60}
SMALL=${RETRY_SMALL:-1000}
LARGE=${RETRY_LARGE:-100000}
if [ -n "${BENCH_KAFKA_BOOTSTRAP:-}" ] || [ "${BENCH_KAFKA:-}" = apache ]; then
    WINDOW=${RETRY_WINDOW:-0}
else
    WINDOW=${RETRY_WINDOW:-15000}
fi
MAX_LATE_MS=${RETRY_MAX_LATE_MS:-1000}
DOC=${RETRY_DOC:-$ROOT/docs/bench.md}
MARKER='<!-- retry runs -->'
GROUP=factory
LOAD=$HERE/retry_load.py

is_int "$DUE" 1 200000 || die "RETRY_DUE: must be an integer in 1..200000, not '$DUE'"
is_int "$SPREAD_S" 1 600 || die "RETRY_SPREAD_S: must be seconds in 1..600, not '$SPREAD_S'"
is_int "$SMALL" 1 500000 || die "RETRY_SMALL: must be an integer in 1..500000, not '$SMALL'"
is_int "$LARGE" 1 500000 || die "RETRY_LARGE: must be an integer in 1..500000, not '$LARGE'"
is_int "$WINDOW" 0 500000 || die "RETRY_WINDOW: must be an integer in 0..500000, not '$WINDOW'"
is_int "$MAX_LATE_MS" 1 600000 || die "RETRY_MAX_LATE_MS: must be milliseconds in 1..600000, not '$MAX_LATE_MS'"
DUE=$((10#$DUE)); SPREAD_S=$((10#$SPREAD_S)); SMALL=$((10#$SMALL)); LARGE=$((10#$LARGE))
WINDOW=$((10#$WINDOW))
MAX_LATE_MS=$((10#$MAX_LATE_MS))
if [ "$DOC" != none ] && ! grep -qxF "$MARKER" "$DOC" 2>/dev/null; then
    die "RETRY_DOC: $DOC has no line '$MARKER' to record the run after (RETRY_DOC=none records nothing)"
fi
need_tools psql curl /usr/bin/python3
/usr/bin/python3 -c 'import confluent_kafka' 2>/dev/null ||
    die "python3-confluent-kafka is not installed (make deps installs it)"
need_programs

# Called by the clean-up when the bench could not run (exit status 2).
bench_on_failure() {
    [ -f "$RUN/logs/retry.log" ] || return 0
    say "--- last lines of the retry log:"
    tail -n 15 "$RUN/logs/retry.log" || true
}

# ---------------------------------------------------------------------------------------
# The private stack (common.sh: stopped and removed however the script ends)

mapfile -t KAFKA_PROPS < <(kafka_props_env)
bench_stack_up "${KAFKA_PROPS[@]}"
# shellcheck source=/dev/null
RETRY_URL=$(. "$RUN/env" && printf '%s' "$RETRY_URL")
[ -n "$RETRY_URL" ] || die "stack.sh wrote no RETRY_URL in $RUN/env"

# pid_of NAME: the pid stack.sh recorded for NAME, checked to run BIN/NAME.
pid_of() {
    local pid exe
    pid=$(cat "$RUN/pids/$1.pid" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [ "${exe% (deleted)}" = "$(readlink -f "$BIN/$1")" ] || return 1
    echo "$pid"
}

# stop_service NAME: SIGTERM to the stack's NAME, up to 15 s for it to exit.
stop_service() {
    local pid i
    pid=$(pid_of "$1") || die "$1 is not running"
    kill -TERM "$pid"
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    die "$1 (pid $pid) did not stop within 15 s"
}

# wait_assigned TIMEOUT: until the retry service's consumer (log line since the last start)
# has partitions of `retry` and GET /stats answers.
wait_assigned() {
    local deadline=$((SECONDS + $1))
    until tail -n +"$RETRY_LOG_FROM" "$RUN/logs/retry.log" | grep -q 'kafka_partitions_assigned' &&
        curl -fsS -m 2 "$RETRY_URL/stats" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || die "the retry service's consumer got no partitions within $1 s"
        sleep 0.2
    done
}

# restart_retry: the retry service stopped and started again with the environment
# stack.sh gave it, in its own session, its pid where stack.sh keeps it (so that
# `stack.sh down` stops it) and its output appended to its log.
restart_retry() {
    local pid
    local -a environ
    pid=$(pid_of retry) || die "the retry service is not running"
    mapfile -d '' environ <"/proc/$pid/environ"
    stop_service retry
    RETRY_LOG_FROM=$(($(wc -l <"$RUN/logs/retry.log") + 1))
    env -i "${environ[@]}" setsid "$BIN/retry" >>"$RUN/logs/retry.log" 2>&1 </dev/null &
    echo "$!" >"$RUN/pids/retry.pid"
    wait_assigned 60
    pid_of retry >/dev/null || die "the restarted retry service is not running"
}

# vm_hwm: the retry process's peak resident set size, in kB.
vm_hwm() {
    local pid
    pid=$(pid_of retry) || die "the retry service is not running"
    awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status"
}

# The factory would take the redeliveries on retry.factory as its own: stop it (stack.sh
# down later finds it stopped and removes its pid file).
stop_service factory
RETRY_LOG_FROM=1
wait_assigned 60
bounded 30 "$RUN/topic.out" /usr/bin/python3 "$LOAD" topic broker="$BROKER" group="$GROUP" ||
    die "could not make topic retry.$GROUP: $(tail -n 3 "$RUN/topic.out")"
PROBLEMS=()

# ---------------------------------------------------------------------------------------
# 1. Memory with RETRY_SMALL pending

say "== memory: $SMALL records due in a day, until GET /stats shows them pending"
rc=0
bounded 300 "$RUN/small.out" /usr/bin/python3 "$LOAD" pending broker="$BROKER" group="$GROUP" \
    n="$SMALL" url="$RETRY_URL" timeout=240 window="$WINDOW" || rc=$?
[ $rc = 0 ] || die "the small memory run failed: $(tail -n 3 "$RUN/small.out")"
SMALL_OUT=$(grep '^PENDING ' "$RUN/small.out")
HWM_SMALL=$(vm_hwm)
say "   $SMALL_OUT: VmHWM $HWM_SMALL kB"

# ---------------------------------------------------------------------------------------
# 2. Lateness of RETRY_DUE records due over RETRY_SPREAD_S seconds

psql_q -c "DELETE FROM retry_pending WHERE group_id = '$GROUP'" >/dev/null
say "== lateness: $DUE records due uniformly over ${SPREAD_S} s (the $SMALL far ones deleted)"
rc=0
bounded $((SPREAD_S + 120)) "$RUN/lateness.out" /usr/bin/python3 "$LOAD" lateness \
    broker="$BROKER" group="$GROUP" n="$DUE" spread_ms=$((SPREAD_S * 1000)) lead_ms=2000 \
    timeout=30 || rc=$?
case $rc in
0) ;;
1) PROBLEMS+=("$(sed -n 's/^PROBLEM //p' "$RUN/lateness.out")") ;;
*) die "the lateness run failed (status $rc): $(tail -n 3 "$RUN/lateness.out")" ;;
esac
LATE_RECV=$(grep '^LATENESS by=receive ' "$RUN/lateness.out" || true)
LATE_TS=$(grep '^LATENESS by=timestamp ' "$RUN/lateness.out" || true)
SEEN=$(grep '^SEEN ' "$RUN/lateness.out" || true)
HWM_DUE=$(vm_hwm)
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
[ -n "$LATE_RECV" ] || die "no redelivery was seen: $(tail -n 3 "$RUN/lateness.out")"
say "   $LATE_RECV"
say "   $LATE_TS"
say "   $SEEN"
max_recv=$(field "$LATE_RECV" max_ms)
awk -v m="$max_recv" -v t="$MAX_LATE_MS" 'BEGIN { exit !(m < t) }' ||
    PROBLEMS+=("the latest redelivery was $max_recv ms late (target: under $MAX_LATE_MS ms)")
early=$(( $(field "$LATE_RECV" early) + $(field "$LATE_TS" early) ))
[ "$early" = 0 ] || PROBLEMS+=("redeliveries before their not-before: $(field "$LATE_TS" early) by timestamp")
[ "$(field "$SEEN" duplicates)" = 0 ] ||
    say "   (duplicates are allowed: redelivery is at least once)"

# ---------------------------------------------------------------------------------------
# 3. Memory with RETRY_LARGE pending, in a fresh retry process

left=$(psql_q -c "SELECT count(*) FROM retry_pending")
[ "$left" = 0 ] || die "$left rows still pending after the lateness run"
say "== memory: retry service restarted, $LARGE records due in a day"
restart_retry
HWM_FRESH=$(vm_hwm)
rc=0
bounded 400 "$RUN/large.out" /usr/bin/python3 "$LOAD" pending broker="$BROKER" group="$GROUP" \
    n="$LARGE" url="$RETRY_URL" timeout=360 window="$WINDOW" || rc=$?
[ $rc = 0 ] || die "the large memory run failed: $(tail -n 3 "$RUN/large.out")"
LARGE_OUT=$(grep '^PENDING ' "$RUN/large.out")
HWM_LARGE=$(vm_hwm)
say "   $LARGE_OUT: VmHWM $HWM_LARGE kB (fresh: $HWM_FRESH kB)"
RATIO=$(awk -v a="$HWM_LARGE" -v b="$HWM_SMALL" 'BEGIN { printf "%.2f", a / b }')
awk -v r="$RATIO" 'BEGIN { exit !(r <= 2 && r >= 0.5) }' ||
    PROBLEMS+=("peak RSS with $LARGE pending is ${RATIO}x the one with $SMALL (target: within 2x)")

# ---------------------------------------------------------------------------------------
# Report

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
REPORT=$RUN/report.md
{
    say "| lateness of a redelivery (ms after its dozen-not-before) | redeliveries | min | p50 | p99 | max |"
    say "|---|--:|--:|--:|--:|--:|"
    say "| **received by a reader on retry.$GROUP** | $(field "$LATE_RECV" n) |" \
        "$(field "$LATE_RECV" min_ms) | $(field "$LATE_RECV" p50_ms) |" \
        "$(field "$LATE_RECV" p99_ms) | **$(field "$LATE_RECV" max_ms)** |"
    say "| record timestamp (set by the retry service's producer) | $(field "$LATE_TS" n) |" \
        "$(field "$LATE_TS" min_ms) | $(field "$LATE_TS" p50_ms) |" \
        "$(field "$LATE_TS" p99_ms) | $(field "$LATE_TS" max_ms) |"
    say ""
    say "| retry process, peak RSS (VmHWM) | MiB |"
    say "|---|--:|"
    say "| $SMALL pending (after start-up) | $(mb "$HWM_SMALL") |"
    say "| after the lateness run ($DUE redelivered) | $(mb "$HWM_DUE") |"
    say "| restarted, before any record | $(mb "$HWM_FRESH") |"
    say "| $LARGE pending (same process) | $(mb "$HWM_LARGE") |"
    say "| **ratio $LARGE / $SMALL pending** | **$RATIO** |"
    say ""
    say "Producing and storing: $SMALL in $(field "$SMALL_OUT" stored_s) s," \
        "$LARGE in $(field "$LARGE_OUT" stored_s) s (from the first record produced to" \
        "GET /stats showing them all pending); $SEEN."
} >"$REPORT"

bench_machine
CODE="commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
SETUP="hand-made retry records for group $GROUP (attempt 1 of 8, CloudEvents and dozen-* headers per docs/retry.md);"
SETUP+=" $DUE due uniformly over ${SPREAD_S} s starting 2 s after they were produced;"
SETUP+=" retry service with its defaults (RETRY_BATCH 500), factory stopped;"
if [ "$WINDOW" -gt 0 ]; then
    SETUP+=" memory runs produced at most $WINDOW records ahead of GET /stats (RETRY_WINDOW);"
else
    SETUP+=" memory runs produced in one burst (RETRY_WINDOW 0);"
fi
if [ "${#KAFKA_PROPS[@]}" -gt 0 ]; then
    SETUP+=" services with ${KAFKA_PROPS[*]};"
else
    SETUP+=" librdkafka settings of the services at their defaults;"
fi
SETUP+=" broker: $BROKER_TEXT; PostgreSQL with its default settings; everything on this one machine"

bench_report_and_record
