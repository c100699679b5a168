#!/usr/bin/env bash
# restock.sh: the body of `make bench-restock`: how long the restock loop takes, from the
# order that finds the shelf empty (409) to the stock being back, beyond the factory's delay.
#
# It starts a private stack (tools/stack.sh up with its own RUN_DIR and free ports: its own
# PostgreSQL, dev broker, sales, stock, factory and the legacy factory stand-in with
# FACTORY_DELAY_MS), seeds RESTOCK_SKUS SKUs restock-00.. with restock_batch RESTOCK_BATCH
# and that much stock, waits until the factory's and stock's consumers have partitions, and
# runs depletion cycles one at a time, the SKUs in rotation (never two cycles at once, so
# that no cycle waits behind another's work):
#   POST /orders for the whole batch (201, remaining 0), then one more (409: time t0);
#   GET /inventory/{sku} on stock every RESTOCK_POLL_MS until the level is the batch again
#   (time t1); the cycle's figure is t1 - t0 - the cycle's factory delay.
# RESTOCK_WARMUP cycles per SKU first are not counted. Then it splits each cycle into its
# stages from the timestamps in PostgreSQL (outbox, processed_events, production_orders),
# prints p50/p95/p99/max and the CPU each process used, and records the run in docs/bench.md
# under "Restock latency". The stack is stopped and RUN_DIR removed however the script ends.
#
# Settings (environment):
#   RESTOCK_SKUS           SKUs in rotation (10)
#   RESTOCK_CYCLES         measured cycles per SKU (10: 100 in all with 10 SKUs)
#   RESTOCK_WARMUP         cycles per SKU before the measured ones, not counted (1)
#   RESTOCK_BATCH          each SKU's restock_batch, ordered whole in every cycle (20)
#   FACTORY_DELAY_MS       the legacy factory's least delay before it delivers (200)
#   RESTOCK_POLL_MS        interval of the stock level reads while waiting (5)
#   RESTOCK_JITTER_MS      each cycle starts after a random pause of 0..this, and its
#                          factory delay is FACTORY_DELAY_MS plus another random 0..this
#                          (set through the legacy factory's POST /admin/mode; the cycle's
#                          own delay is subtracted): 500, the dev broker's fetch cycle, so
#                          that neither Kafka hop falls into step with the consumers' fetches
#   RESTOCK_CYCLE_TIMEOUT  seconds one cycle may take before the bench fails (10)
#   RESTOCK_DOC            where the run is recorded (docs/bench.md, after the line
#                          "<!-- restock runs -->"); "none" records nothing
#   KAFKA_<PROPERTY>       librdkafka properties for the services, passed on as they are
#                          (libcommon/kafka.c): KAFKA_FETCH_WAIT_MAX_MS=10, for instance
#   BENCH_KAFKA=apache, BENCH_KAFKA_BOOTSTRAP   another broker (tests/bench/common.sh)
#   DOZEN_BIN              the programs (bin/)
# Exit status: 0 when every cycle went as expected, 1 when one did not (a wrong answer, the
# level not back within RESTOCK_CYCLE_TIMEOUT, or raised by more than one batch; the bench
# stops at that cycle and reports what it measured), 2 when the bench could not run.
set -eEuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/bench
BIN=${DOZEN_BIN:-$ROOT/bin}
BENCH_NAME=bench-restock
# say, die, is_int, the private stack and its clean-up, bounded, CPU ticks, bench_machine.
# shellcheck source=tests/bench/common.sh
. "$HERE/common.sh"

NSKUS=${RESTOCK_SKUS:-10}
CYCLES=${RESTOCK_CYCLES:-10}
WARMUP=${RESTOCK_WARMUP:-1}
BATCH=${RESTOCK_BATCH:-20}
DELAY_MS=${FACTORY_DELAY_MS:-200}
POLL_MS=${RESTOCK_POLL_MS:-5}
JITTER_MS=${RESTOCK_JITTER_MS:-500}
CYCLE_TIMEOUT=${RESTOCK_CYCLE_TIMEOUT:-10}
DOC=${RESTOCK_DOC:-$ROOT/docs/bench.md}
MARKER='<!-- restock runs -->'

is_int "$NSKUS" 1 100 || die "RESTOCK_SKUS: must be an integer in 1..100, not '$NSKUS'"
is_int "$CYCLES" 1 1000 || die "RESTOCK_CYCLES: must be an integer in 1..1000, not '$CYCLES'"
is_int "$WARMUP" 0 10 || die "RESTOCK_WARMUP: must be an integer in 0..10, not '$WARMUP'"
# One order takes the whole batch, and sales takes 1..1000 per order.
is_int "$BATCH" 1 1000 || die "RESTOCK_BATCH: must be an integer in 1..1000, not '$BATCH'"
is_int "$DELAY_MS" 0 60000 || die "FACTORY_DELAY_MS: must be milliseconds in 0..60000, not '$DELAY_MS'"
is_int "$POLL_MS" 1 1000 || die "RESTOCK_POLL_MS: must be milliseconds in 1..1000, not '$POLL_MS'"
is_int "$JITTER_MS" 0 10000 || die "RESTOCK_JITTER_MS: must be milliseconds in 0..10000, not '$JITTER_MS'"
is_int "$CYCLE_TIMEOUT" 1 600 || die "RESTOCK_CYCLE_TIMEOUT: must be seconds in 1..600, not '$CYCLE_TIMEOUT'"
NSKUS=$((10#$NSKUS)); CYCLES=$((10#$CYCLES)); WARMUP=$((10#$WARMUP)); BATCH=$((10#$BATCH))
DELAY_MS=$((10#$DELAY_MS)); POLL_MS=$((10#$POLL_MS)); JITTER_MS=$((10#$JITTER_MS))
CYCLE_TIMEOUT=$((10#$CYCLE_TIMEOUT))
if [ "$DOC" != none ] && ! grep -qxF "$MARKER" "$DOC" 2>/dev/null; then
    die "RESTOCK_DOC: $DOC has no line '$MARKER' to record the run after (RESTOCK_DOC=none records nothing)"
fi
need_tools psql curl /usr/bin/python3
need_programs

# ---------------------------------------------------------------------------------------
# The private stack (common.sh: stopped and removed however the script ends)

# Called by the clean-up when the bench could not run (exit status 2).
bench_on_failure() {
    local svc
    for svc in legacy-factory factory stock; do
        [ -f "$RUN/logs/$svc.log" ] || continue
        say "--- last lines of the $svc log:"
        tail -n 10 "$RUN/logs/$svc.log" || true
    done
}

mapfile -t KAFKA_PROPS < <(kafka_props_env)
bench_stack_up FACTORY_DELAY_MS="$DELAY_MS" "${KAFKA_PROPS[@]}"

# The delay really is the one we subtract: ask the legacy factory.
mode_delay=$(curl -fsS -m 5 "$LEGACY_FACTORY_URL/admin/mode" |
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["delay_ms"])') ||
    die "could not read the legacy factory's mode"
[ "$mode_delay" = "$DELAY_MS" ] ||
    die "the legacy factory runs with delay_ms=$mode_delay, not FACTORY_DELAY_MS=$DELAY_MS"
# A KAFKA_ variable librdkafka does not know is skipped with a warning: say so rather than
# measure something else than asked.
for prop in "${KAFKA_PROPS[@]}"; do
    for svc in sales stock factory; do
        skipped=$(grep -m 1 "kafka_conf_env_skipped var=${prop%%=*} " "$RUN/logs/$svc.log" ||
                  true)
        [ -z "$skipped" ] || die "$svc skipped ${prop%%=*}: $skipped"
    done
done

SKUS=()
for ((i = 0; i < NSKUS; i++)); do SKUS+=("$(printf 'restock-%02d' "$i")"); done
say "== seeding $NSKUS SKUs ${SKUS[0]}..${SKUS[-1]}: restock_batch $BATCH, $BATCH in stock"
psql_q -v nskus="$NSKUS" -v batch="$BATCH" <<'SQL'
INSERT INTO inventory (sku, quantity, restock_batch)
SELECT 'restock-' || lpad(i::text, 2, '0'), :batch, :batch FROM generate_series(0, :nskus - 1) AS i
ON CONFLICT (sku) DO UPDATE SET quantity = EXCLUDED.quantity, restock_batch = EXCLUDED.restock_batch;
SQL

# Until both consumers have joined their groups, a depletion would wait for the join.
say "== waiting for the factory's and stock's consumers to get partitions"
deadline=$((SECONDS + 90))
for svc in factory stock; do
    until grep -q 'kafka_partitions_assigned' "$RUN/logs/$svc.log"; do
        [ $SECONDS -lt $deadline ] || die "$svc's consumer got no partitions within 90 s"
        sleep 0.2
    done
done

# ---------------------------------------------------------------------------------------
# The cycles: a small driver with one keep-alive connection to sales and one to stock (curl
# would fork once per read, and its start-up would be the resolution of the measurement).

cat >"$RUN/cycles.py" <<'PY'
"""Runs depletion cycles one at a time and writes one line per measured cycle."""
import http.client
import json
import math
import random
import sys
import time
import urllib.parse


class Problem(Exception):
    pass


class Client:
    """One keep-alive HTTP connection; a GET is tried once more on a closed connection."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.conn = u.hostname, u.port, None

    def call(self, method, path, body=None):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                data = None if body is None else json.dumps(body)
                headers = {} if body is None else {"Content-Type": "application/json"}
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                if r.will_close:
                    self.conn.close()
                    self.conn = None
                return r.status, json.loads(raw) if raw else None
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if method != "GET" or attempt == 2:
                    raise


def nearest_rank(sorted_values, p):
    return sorted_values[max(0, math.ceil(p * len(sorted_values)) - 1)]


def main():
    a = dict(arg.split("=", 1) for arg in sys.argv[1:])
    sales, stock = Client(a["sales"]), Client(a["stock"])
    skus = a["skus"].split(",")
    batch, delay_ms = int(a["batch"]), int(a["delay_ms"])
    poll_s, timeout_s = int(a["poll_ms"]) / 1000, int(a["timeout_s"])
    warmup, cycles = int(a["warmup"]), int(a["cycles"])
    legacy, jitter_ms, rng = Client(a["legacy"]), int(a["jitter_ms"]), random.Random(1)
    latencies = []
    with open(a["out"], "w") as out:
        out.write("sku\tcycle\torder_id\tdelay_ms\tt0\tt1\tlatency_ms\treads\n")
        try:
            for cycle in range(warmup + cycles):
                for sku in skus:
                    path = "/inventory/" + sku
                    delay = delay_ms + rng.randint(0, jitter_ms)
                    st, mode = legacy.call("POST", "/admin/mode", {"delay_ms": delay})
                    if st != 200 or mode.get("delay_ms") != delay:
                        raise Problem(f"setting the legacy factory's delay gave {st} {mode}")
                    time.sleep(rng.uniform(0, jitter_ms / 1000))
                    st, body = sales.call("POST", "/orders", {"sku": sku, "quantity": batch})
                    if st != 201 or body.get("remaining") != 0:
                        raise Problem(f"{sku} cycle {cycle}: ordering the batch gave {st} {body}")
                    st, body = sales.call("POST", "/orders", {"sku": sku, "quantity": 1})
                    t0, t0_wall = time.monotonic(), time.time()
                    if st != 409 or body.get("restock_requested") is not True:
                        raise Problem(f"{sku} cycle {cycle}: the order on an empty shelf gave "
                                      f"{st} {body}")
                    order_id, reads = body["order_id"], 0
                    while True:
                        start = time.monotonic()
                        st, level = stock.call("GET", path)
                        now, reads = time.monotonic(), reads + 1
                        if st != 200:
                            raise Problem(f"{sku} cycle {cycle}: GET {path} gave {st} {level}")
                        q = level["quantity"]
                        if q == batch:
                            t1, t1_wall = now, time.time()
                            break
                        if q != 0:
                            raise Problem(f"{sku} cycle {cycle}: level {q}, neither 0 nor the "
                                          f"batch {batch}")
                        if now - t0 > timeout_s:
                            raise Problem(f"{sku} cycle {cycle}: level still 0 after {timeout_s} s "
                                          f"(order {order_id})")
                        time.sleep(max(0.0, start + poll_s - time.monotonic()))
                    if cycle < warmup:
                        continue
                    ms = (t1 - t0) * 1000 - delay
                    latencies.append(ms)
                    out.write(f"{sku}\t{cycle - warmup}\t{order_id}\t{delay}\t{t0_wall:.6f}\t"
                              f"{t1_wall:.6f}\t{ms:.3f}\t{reads}\n")
                    out.flush()
        except Problem as e:
            print("PROBLEM", e, flush=True)
    if latencies:
        v = sorted(latencies)
        print(f"RESTOCK n={len(v)} min_ms={v[0]:.1f} p50_ms={nearest_rank(v, 0.5):.1f} "
              f"p95_ms={nearest_rank(v, 0.95):.1f} p99_ms={nearest_rank(v, 0.99):.1f} "
              f"max_ms={v[-1]:.1f} mean_ms={sum(v) / len(v):.1f}")
    return 0 if len(latencies) == cycles * len(skus) else 1


sys.exit(main())
PY

# cpu_sample: ticks of "total idle broker postgres sales stock factory legacy driver".
cpu_sample() {
    local broker_pid svc line
    broker_pid=$(cat "$RUN/pids/devbroker.pid" "$RUN/kafka/kafka.pid" 2>/dev/null || true)
    broker_pid=${broker_pid%%$'\n'*}
    line="$(machine_ticks) $(proc_ticks "${broker_pid:-0}") $(pg_ticks)"
    for svc in sales stock factory legacy-factory; do
        line+=" $(proc_ticks "$(cat "$RUN/pids/$svc.pid" 2>/dev/null || echo 0)")"
    done
    echo "$line $(children_ticks)"
}

ALL=$((NSKUS * (CYCLES + WARMUP)))
say "== $ALL cycles ($WARMUP warm-up and $CYCLES measured per SKU, one at a time)," \
    "factory delay $DELAY_MS + 0..$JITTER_MS ms, level read every ${POLL_MS} ms," \
    "0..$JITTER_MS ms between cycles"
before=$(cpu_sample)
t_start=$SECONDS
DRIVER_RC=0
# The time limit of the whole: every cycle at its own limit, its pause and extra delay.
bounded $((ALL * (CYCLE_TIMEOUT + 2 + 2 * JITTER_MS / 1000) + 30)) "$RUN/driver.out" \
    /usr/bin/python3 "$RUN/cycles.py" sales="$SALES_URL" stock="$STOCK_URL" \
    legacy="$LEGACY_FACTORY_URL" skus="$(IFS=,; echo "${SKUS[*]}")" batch="$BATCH" \
    delay_ms="$DELAY_MS" poll_ms="$POLL_MS" jitter_ms="$JITTER_MS" \
    timeout_s="$CYCLE_TIMEOUT" warmup="$WARMUP" cycles="$CYCLES" out="$RUN/cycles.tsv" ||
    DRIVER_RC=$?
after=$(cpu_sample)
ELAPSED=$((SECONDS - t_start))
PROBLEMS=()
while IFS= read -r line; do PROBLEMS+=("${line#PROBLEM }"); done < <(grep '^PROBLEM ' "$RUN/driver.out" || true)
case $DRIVER_RC in
0) ;;
1) [ "${#PROBLEMS[@]}" -gt 0 ] || PROBLEMS+=("the driver stopped early: $(tail -n 3 "$RUN/driver.out")") ;;
124 | 137) PROBLEMS+=("the cycles did not finish within their time limit") ;;
*) die "the driver failed (status $DRIVER_RC): $(tail -n 5 "$RUN/driver.out")" ;;
esac
SUMMARY=$(grep '^RESTOCK ' "$RUN/driver.out" || true)
MEASURED=$(($(wc -l <"$RUN/cycles.tsv") - 1))
if [ "$MEASURED" -eq 0 ]; then
    [ "${#PROBLEMS[@]}" -gt 0 ] || die "no cycle was measured: $(tail -n 3 "$RUN/driver.out")"
    printf '%s: no cycle was measured: %s\n' "$BENCH_NAME" "${PROBLEMS[0]}" >&2
    exit 1
fi
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
say "   $SUMMARY (${ELAPSED}s)"

# ---------------------------------------------------------------------------------------
# Where the time goes: each measured cycle followed through PostgreSQL's timestamps (now()
# of each transaction, one clock for all) and the bench's wall clock at t1.

psql_q -F $'\t' >"$RUN/stages.tsv" <<SQL
CREATE TEMP TABLE cycles (sku text, cycle int, order_id uuid, delay_ms int, t0 float8, t1 float8,
                          latency_ms float8, reads int);
\copy cycles FROM '$RUN/cycles.tsv' WITH (FORMAT csv, DELIMITER E'\t', HEADER true)
CREATE TEMP TABLE stages AS
SELECT c.order_id,
       extract(epoch FROM d.sent_at - o.created_at) * 1000 AS relay_sales,
       extract(epoch FROM po.created_at - d.sent_at) * 1000 AS kafka_factory,
       extract(epoch FROM po.requested_at - po.created_at) * 1000 AS factory_call,
       extract(epoch FROM po.delivered_at - po.requested_at) * 1000 - c.delay_ms AS legacy,
       extract(epoch FROM r.sent_at - po.delivered_at) * 1000 AS relay_factory,
       extract(epoch FROM se.processed_at - r.sent_at) * 1000 AS kafka_stock,
       (c.t1 - extract(epoch FROM se.processed_at)) * 1000 AS seen,
       extract(epoch FROM se.processed_at - o.created_at) * 1000 - c.delay_ms AS db_total
FROM cycles c
JOIN orders o ON o.id = c.order_id
JOIN outbox d ON d.topic = 'stock.depleted' AND d.payload::json ->> 'order_id' = c.order_id::text
JOIN production_orders po ON po.depletion_ce_id = d.ce_id
JOIN outbox r ON r.topic = 'stock.replenished'
     AND r.payload::json ->> 'production_order_id' = po.id::text
JOIN processed_events se ON se.consumer = 'stock' AND se.ce_id = r.ce_id;
SELECT count(*) FROM stages;
SELECT s.name,
       round(percentile_disc(0.50) WITHIN GROUP (ORDER BY s.v)::numeric, 1),
       round(percentile_disc(0.95) WITHIN GROUP (ORDER BY s.v)::numeric, 1),
       round(percentile_disc(0.99) WITHIN GROUP (ORDER BY s.v)::numeric, 1),
       round(max(s.v)::numeric, 1), round(avg(s.v)::numeric, 1)
FROM stages t CROSS JOIN LATERAL (VALUES
    (1, 'relay_sales', t.relay_sales), (2, 'kafka_factory', t.kafka_factory),
    (3, 'factory_call', t.factory_call), (4, 'legacy', t.legacy),
    (5, 'relay_factory', t.relay_factory), (6, 'kafka_stock', t.kafka_stock),
    (7, 'seen', t.seen), (8, 'db_total', t.db_total)) AS s(i, name, v)
GROUP BY s.i, s.name ORDER BY s.i;
SQL
TRACED=$(head -n 1 "$RUN/stages.tsv")
[ "$TRACED" = "$MEASURED" ] ||
    PROBLEMS+=("only $TRACED of the $MEASURED measured cycles could be followed through PostgreSQL")

# ---------------------------------------------------------------------------------------
# Report

pct_cpu() { # pct_cpu TICKS WALL_TICKS_PER_CPU: percent of one CPU
    awk -v t="$1" -v w="$2" 'BEGIN { if (w > 0) printf "%.1f", 100 * t / w; else print "-" }'
}
stage_text() {
    case $1 in
    relay_sales) echo "sales: the 409's transaction → stock.depleted acknowledged (commit, NOTIFY, relay, produce)" ;;
    kafka_factory) echo "Kafka → factory: acknowledged → production order opened (fetch)" ;;
    factory_call) echo "factory: order opened → legacy factory's answer recorded (worker, HTTP call)" ;;
    legacy) echo "legacy factory: answer recorded → delivery applied, minus the delay" ;;
    relay_factory) echo "factory: delivery applied → stock.replenished acknowledged (commit, NOTIFY, relay, produce)" ;;
    kafka_stock) echo "Kafka → stock: acknowledged → level raised (fetch)" ;;
    seen) echo "level raised → seen by the bench (commit, next read)" ;;
    db_total) echo "**the 409's transaction → level raised, minus the delay**" ;;
    esac
}

REPORT=$RUN/report.md
{
    say "| restock latency (t1 − t0 − the cycle's factory delay), ms | cycles | min | p50 | p95 | p99 | max | mean |"
    say "|---|--:|--:|--:|--:|--:|--:|--:|"
    if [ -n "$SUMMARY" ]; then
        say "| as the bench saw it | $(field "$SUMMARY" n) | $(field "$SUMMARY" min_ms) |" \
            "$(field "$SUMMARY" p50_ms) | $(field "$SUMMARY" p95_ms) | $(field "$SUMMARY" p99_ms) |" \
            "$(field "$SUMMARY" max_ms) | $(field "$SUMMARY" mean_ms) |"
    fi
    say ""
    say "Stages of the same cycles, in ms, from the timestamps in PostgreSQL (each is the start" \
        "of a transaction, so a stage includes the commit of the one before; the stages of a" \
        "cycle add up to its total; percentiles do not add up)."
    say ""
    say "| stage | p50 | p95 | p99 | max | mean |"
    say "|---|--:|--:|--:|--:|--:|"
    tail -n +2 "$RUN/stages.tsv" | while IFS=$'\t' read -r name p50 p95 p99 max mean; do
        say "| $(stage_text "$name") | $p50 | $p95 | $p99 | $max | $mean |"
    done
    say ""
    read -r -a a <<<"$before"
    read -r -a b <<<"$after"
    per_cpu=$(( (b[0] - a[0]) / NCPU ))
    say "CPU over the ${ELAPSED} s of cycles, in % of one CPU ($NCPU CPUs; the machine's" \
        "busy time includes everything else running on it):"
    say ""
    say "| broker | PostgreSQL | sales | stock | factory | legacy factory | bench driver | machine busy |"
    say "|--:|--:|--:|--:|--:|--:|--:|--:|"
    row="|"
    for ((k = 2; k < 9; k++)); do row+=" $(pct_cpu $((b[k] - a[k])) "$per_cpu") |"; done
    row+=" $(pct_cpu $(( (b[0] - a[0]) - (b[1] - a[1]) )) "$per_cpu") |"
    say "$row"
} >"$REPORT"

bench_machine
PG_VERSION=$(psql_q -c "SHOW server_version")
# Read-only: the commit the checkout is at (uncommitted changes are not shown).
CODE="commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
SETUP="$NSKUS SKUs in rotation, $CYCLES measured cycles each after $WARMUP warm-up, one cycle at a time"
SETUP+=" after a random pause of 0..$JITTER_MS ms;"
SETUP+=" restock_batch $BATCH; factory delay FACTORY_DELAY_MS=$DELAY_MS plus a random 0..$JITTER_MS ms per cycle (subtracted); level read every $POLL_MS ms over keep-alive HTTP;"
SETUP+=" broker: $BROKER_TEXT;"
if [ "${#KAFKA_PROPS[@]}" -gt 0 ]; then
    SETUP+=" services with ${KAFKA_PROPS[*]};"
else
    SETUP+=" librdkafka settings of the services at their defaults;"
fi
SETUP+=" PostgreSQL $PG_VERSION with its default settings; everything on this one machine"

bench_report_and_record
