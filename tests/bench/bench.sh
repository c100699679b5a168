#!/usr/bin/env bash
# bench.sh: the body of `make bench`: orders per second and latency of sales' POST /orders
# under wrk, next to pgbench running the same SQL transaction on the same database.
#
# It starts a private stack (tools/stack.sh up with its own RUN_DIR and free ports: its own
# PostgreSQL with the server's default durability settings, dev broker, sales, stock),
# seeds 100 SKUs bench-000..bench-099 and one hot SKU bench-hot, and runs
#   wrk -t2 against POST /orders, one of the 100 SKUs at random, with 16 and 64 connections;
#   the same on bench-hot alone;
#   pgbench -c DB_POOL_SIZE -j2 -M prepared -n with tests/bench/order.sql (the 100 SKUs)
#   and order_hot.sql (bench-hot), with the per-row NOTIFY trigger the outbox had before
#   migration 0014 put back for these runs (the transaction sales used to run), then
#   without it (the ceiling: the same transaction with nothing in its way);
# each for BENCH_DURATION seconds after a BENCH_WARMUP-second warm-up. It prints a table
# (orders/s, p50, p99, non-2xx, wrk/pgbench ratio, CPU per process, sales' peak RSS) and
# appends it to docs/bench.md. The stack is stopped and RUN_DIR removed however it ends.
#
# Settings (environment):
#   DB_POOL_SIZE        sales' PostgreSQL pool and pgbench's client count (16)
#   BENCH_DURATION      seconds per measured run (15)
#   BENCH_WARMUP        seconds of warm-up before each run (3)
#   BENCH_DOC           where the results are appended (docs/bench.md); "none" skips it
#   BENCH_KAFKA_BOOTSTRAP  a Kafka broker to use instead of a private dev broker
#   DOZEN_BIN           the programs (bin/)
# Exit status: 0 when every run completed without errors (a missed target is reported, not
# a failure), 1 when a run had non-2xx answers, socket errors or failed transactions, 2 when
# the bench could not run.
set -eEuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/bench
BIN=${DOZEN_BIN:-$ROOT/bin}
BENCH_NAME=bench
# say, die, is_int, the private stack and its clean-up, bounded, CPU ticks, bench_machine.
# shellcheck source=tests/bench/common.sh
. "$HERE/common.sh"
POOL=${DB_POOL_SIZE:-16}
DURATION=${BENCH_DURATION:-15}
WARMUP=${BENCH_WARMUP:-3}
DOC=${BENCH_DOC:-$ROOT/docs/bench.md}
THREADS=2
CONNS=(16 64)
NSKUS=100
STOCK_LEVEL=100000000
TARGET_RAND=1.6   # wrk on 100 SKUs / pgbench (trigger), c16 and c64 (issue 15)
TARGET_HOT=2.5    # wrk on the hot SKU / pgbench hot (trigger)
TARGET_P99_MS=30  # wrk on 100 SKUs, c64

is_int "$POOL" 1 256 || die "DB_POOL_SIZE: must be an integer in 1..256, not '$POOL'"
is_int "$DURATION" 1 120 || die "BENCH_DURATION: must be seconds in 1..120, not '$DURATION'"
is_int "$WARMUP" 0 60 || die "BENCH_WARMUP: must be seconds in 0..60, not '$WARMUP'"
POOL=$((10#$POOL)); DURATION=$((10#$DURATION)); WARMUP=$((10#$WARMUP))
need_tools wrk pgbench psql curl /usr/bin/python3
need_programs

# ---------------------------------------------------------------------------------------
# The private stack (common.sh: stopped and removed however the script ends)

# Called by the clean-up when the bench could not run (exit status 2).
bench_on_failure() {
    if [ -f "$RUN/logs/sales.log" ]; then
        say "--- last lines of the sales log but its order_answered lines:"
        grep -v ' order_answered ' "$RUN/logs/sales.log" | tail -n 20 || true
    fi
}

# The services get a clean environment: every setting at its default but the pool size.
bench_stack_up DB_POOL_SIZE="$POOL"

# stack.sh does not list DB_POOL_SIZE among the variables it sets, but the services inherit
# its environment (stock too, which then keeps that many idle connections): check that sales
# took the value from its start line, which it logs just after it starts listening.
SALES_PID=$(cat "$RUN/pids/sales.pid")
for ((i = 0; i < 50; i++)); do
    grep -q "db_pool=[0-9]" "$RUN/logs/sales.log" && break
    sleep 0.1
done
grep -q "db_pool=$POOL\b" "$RUN/logs/sales.log" ||
    die "sales did not log db_pool=$POOL at start: DB_POOL_SIZE did not reach it"

psql_q() { psql "$DATABASE_URL" -X -qAt -v ON_ERROR_STOP=1 "$@"; }

say "== seeding $NSKUS SKUs bench-000..bench-$(printf '%03d' $((NSKUS - 1))) and bench-hot with $STOCK_LEVEL each"
psql_q -v nskus="$NSKUS" -v level="$STOCK_LEVEL" <<'SQL'
INSERT INTO inventory (sku, quantity)
SELECT 'bench-' || lpad(i::text, 3, '0'), :level FROM generate_series(0, :nskus - 1) AS i
UNION ALL SELECT 'bench-hot', :level
ON CONFLICT (sku) DO UPDATE SET quantity = EXCLUDED.quantity;
ANALYZE inventory;
SQL
n=$(psql_q -c "SELECT count(*) FROM inventory WHERE sku LIKE 'bench-%'")
[ "$n" = $((NSKUS + 1)) ] || die "seeding left $n bench SKUs instead of $((NSKUS + 1))"
PG_SETTINGS=$(psql_q -F ' ' -c "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name)
    FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method',
    'shared_buffers', 'max_connections', 'full_page_writes')")
PG_VERSION=$(psql_q -c "SHOW server_version")

# ---------------------------------------------------------------------------------------
# CPU accounting, from /proc: ticks of sales, of PostgreSQL (the postmaster, its live
# children and the children it reaped), of the dev broker, of this script's reaped children
# (wrk or pgbench: the load generator) and of the whole machine.

# cpu_sample: "total idle sales postgres broker loadgen" in ticks (total and idle over all
# CPUs; idle includes iowait).
cpu_sample() {
    local broker_pid
    broker_pid=$(cat "$RUN/pids/devbroker.pid" 2>/dev/null || echo 0)
    echo "$(machine_ticks) $(proc_ticks "$SALES_PID") $(pg_ticks) $(proc_ticks "$broker_pid")" \
         "$(children_ticks)"
}

# cpu_report BEFORE AFTER: "sales postgres broker loadgen other idle" in percent of one CPU;
# other is the rest of the machine (other users' processes, the kernel's own threads).
cpu_report() {
    local -a a b
    read -r -a a <<<"$1"
    read -r -a b <<<"$2"
    local per_cpu=$(( (b[0] - a[0]) / NCPU ))
    [ "$per_cpu" -gt 0 ] || per_cpu=1
    local sales=$((b[2] - a[2])) pg=$((b[3] - a[3])) broker=$((b[4] - a[4]))
    local loadgen=$((b[5] - a[5])) idle=$((b[1] - a[1]))
    local other=$((b[0] - a[0] - idle - sales - pg - broker - loadgen))
    [ "$other" -ge 0 ] || other=0
    local x
    for x in "$sales" "$pg" "$broker" "$loadgen" "$other" "$idle"; do
        printf '%d ' $((x * 100 / per_cpu))
    done
}

# ---------------------------------------------------------------------------------------
# Wait events: one psql session samples the active client backends' wait events every
# 100 ms during a measured run ("CPU" when a backend waits for nothing).

# wait_sampler_start KEY SECONDS: in the background, into $RUN/waits-KEY.txt.
wait_sampler_start() {
    local n=$(($2 * 10)) i
    for ((i = 0; i < n; i++)); do
        echo "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity"
        echo "  WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid();"
        echo "SELECT pg_sleep(0.1);"
    done | psql "$DATABASE_URL" -X -qAt >"$RUN/waits-$1.txt" 2>/dev/null &
    WAIT_PID=$!
}
wait_sampler_stop() { wait "$WAIT_PID" 2>/dev/null || true; }

# waits_top KEY: the four most frequent wait events, "event pct%, ...".
waits_top() {
    grep -v '^$' "$RUN/waits-$1.txt" 2>/dev/null | sort | uniq -c | sort -rn |
        awk '{ n[NR] = $1; e[NR] = $2; t += $1 } END {
            if (t == 0) { print "-"; exit }
            for (i = 1; i <= NR && i <= 4; i++)
                printf "%s%s %.0f%%", (i > 1 ? ", " : ""), e[i], 100 * n[i] / t
            print "" }'
}

# The per-row NOTIFY trigger of the outbox before migration 0014, for the pgbench runs that
# measure the transaction sales used to run (their rows have producer 'bench': the sales
# relay reads the notifications and ignores them).
trigger_on() {
    psql_q <<'SQL'
CREATE OR REPLACE FUNCTION bench_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dozen_outbox', NEW.producer);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS bench_outbox_notify ON outbox;
CREATE TRIGGER bench_outbox_notify AFTER INSERT ON outbox
    FOR EACH ROW EXECUTE FUNCTION bench_outbox_notify();
SQL
}
trigger_off() {
    psql_q -c "DROP TRIGGER IF EXISTS bench_outbox_notify ON outbox" \
           -c "DROP FUNCTION IF EXISTS bench_outbox_notify()"
}

# ---------------------------------------------------------------------------------------
# The runs. Results are kept per scenario key in these arrays.

declare -A RPS P50 P99 BAD CPU BACKLOG WAITS BATCH
PROBLEMS=()

# field LINE NAME: the value of NAME=value in LINE.
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }

# batch_stats: "sum count": orders placed in batches (dozen_orders_batch_size_sum) and the
# statements that placed them (dozen_orders_statement_skus_count).
batch_stats() {
    curl -fsS --max-time 5 "$SALES_URL/metrics" 2>/dev/null | awk '
        /^dozen_orders_batch_size_sum/ { s = $2 } /^dozen_orders_statement_skus_count/ { c = $2 }
        END { printf "%d %d\n", s, c }'
}

unsent() { psql_q -c "SELECT count(*) FROM outbox WHERE producer = 'sales' AND sent_at IS NULL"; }

# run_wrk KEY MODE CONNECTIONS
run_wrk() {
    local key=$1 mode=$2 conns=$3 out=$RUN/wrk-$1.txt line before after
    local args=(-t"$THREADS" -c"$conns" --timeout 10s -s "$HERE/orders.lua" "$SALES_URL/orders"
                -- "$mode" "$NSKUS")
    say "== wrk $mode, $conns connections: ${WARMUP}s warm-up, ${DURATION}s measured"
    if [ "$WARMUP" -gt 0 ]; then
        bounded $((WARMUP + 30)) "$RUN/wrk-$key-warmup.txt" wrk -d"${WARMUP}s" "${args[@]}" ||
            die "wrk warm-up failed: $(tail -n 3 "$RUN/wrk-$key-warmup.txt")"
    fi
    local b0 b1
    b0=$(batch_stats)
    before=$(cpu_sample)
    wait_sampler_start "$key" "$DURATION"
    bounded $((DURATION + 30)) "$out" wrk -d"${DURATION}s" --latency "${args[@]}" ||
        die "wrk failed: $(tail -n 3 "$out")"
    after=$(cpu_sample)
    wait_sampler_stop
    WAITS[$key]=$(waits_top "$key")
    b1=$(batch_stats)
    BATCH[$key]=$(awk -v a="$b0" -v b="$b1" 'BEGIN { split(a, x, " "); split(b, y, " ")
        n = y[2] - x[2]; if (n > 0) printf "%.2f", (y[1] - x[1]) / n; else print "-" }')
    line=$(grep '^BENCH ' "$out") || die "wrk printed no BENCH line: $(tail -n 3 "$out")"
    RPS[$key]=$(field "$line" rps)
    P50[$key]=$(field "$line" p50_ms)
    P99[$key]=$(field "$line" p99_ms)
    BAD[$key]=$(field "$line" non2xx)
    CPU[$key]=$(cpu_report "$before" "$after")
    BACKLOG[$key]=$(unsent)
    local sockerr=$(( $(field "$line" connect) + $(field "$line" read) + $(field "$line" write) +
                      $(field "$line" timeout) ))
    [ "${BAD[$key]}" = 0 ] || PROBLEMS+=("wrk $mode c$conns: ${BAD[$key]} answers were not 2xx")
    [ "$sockerr" = 0 ] || PROBLEMS+=("wrk $mode c$conns: $sockerr socket errors or timeouts ($line)")
    say "   $line"
}

# run_pgbench KEY SCRIPT: -c POOL -j 2, per-transaction log for the percentiles.
run_pgbench() {
    local key=$1 script=$2 out=$RUN/pgbench-$1.txt before after processed failed
    local args=(-n -M prepared -c "$POOL" -j 2 -f "$HERE/$script")
    say "== pgbench $script, $POOL clients: ${WARMUP}s warm-up, ${DURATION}s measured"
    if [ "$WARMUP" -gt 0 ]; then
        bounded $((WARMUP + 30)) "$RUN/pgbench-$key-warmup.txt" \
            pgbench "${args[@]}" -T "$WARMUP" "$DATABASE_URL" ||
            die "pgbench warm-up failed: $(tail -n 3 "$RUN/pgbench-$key-warmup.txt")"
    fi
    mkdir -p "$RUN/pglog-$key"
    before=$(cpu_sample)
    wait_sampler_start "$key" "$DURATION"
    bounded $((DURATION + 30)) "$out" pgbench "${args[@]}" -T "$DURATION" -r -l \
        --log-prefix="$RUN/pglog-$key/tx" "$DATABASE_URL" ||
        PROBLEMS+=("pgbench $script exited with an error: $(grep -m 1 error "$out" || tail -n 1 "$out")")
    after=$(cpu_sample)
    wait_sampler_stop
    WAITS[$key]=$(waits_top "$key")
    RPS[$key]=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out")
    [ -n "${RPS[$key]}" ] || die "pgbench printed no tps: $(tail -n 3 "$out")"
    processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
    BAD[$key]=${failed:-0}
    [ "${BAD[$key]}" = 0 ] || PROBLEMS+=("pgbench $script: ${BAD[$key]} failed transactions")
    # The log's third column is the transaction's latency in microseconds.
    read -r P50[$key] P99[$key] < <(cat "$RUN/pglog-$key"/tx.* | awk '{ print $3 }' | sort -n |
        awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "- -"; exit }
            i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++
            i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++
            printf "%.3f %.3f\n", v[i50] / 1000, v[i99] / 1000 }')
    CPU[$key]=$(cpu_report "$before" "$after")
    BACKLOG[$key]=$(unsent)
    say "   tps=${RPS[$key]} processed=${processed:-?} failed=${BAD[$key]} p50_ms=${P50[$key]} p99_ms=${P99[$key]}"
    sed -n '/^statement latencies/,$p' "$out" | sed 's/^/   /'
}

for c in "${CONNS[@]}"; do run_wrk "rand-$c" random "$c"; done
for c in "${CONNS[@]}"; do run_wrk "hot-$c" hot "$c"; done
trigger_on
run_pgbench pg-rand order.sql
run_pgbench pg-hot order_hot.sql
trigger_off
run_pgbench pg-rand-nt order.sql
run_pgbench pg-hot-nt order_hot.sql

HWM_KB=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SALES_PID/status" 2>/dev/null || true)
[ -n "$HWM_KB" ] || die "sales (pid $SALES_PID) is gone: no VmHWM to read"
SALES_THREADS=$(sed -n 's/^Threads:[[:space:]]*//p' "/proc/$SALES_PID/status")

# ---------------------------------------------------------------------------------------
# Report

pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f", 100 * a / b; else print "-" }'; }
fmt() { awk -v a="$1" -v d="$2" 'BEGIN { if (a == "-" || a == "") print "-"; else printf("%." d "f", a) }'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "-" && a >= b) }'; }
# us_per KEY PERCENT: microseconds of CPU per order at the run's rate.
us_per() { awk -v p="$2" -v r="${RPS[$1]}" 'BEGIN { if (r > 0) printf "%.0f", p * 10000 / r; else print "-" }'; }

RUNS=(rand-16 rand-64 hot-16 hot-64 pg-rand pg-hot pg-rand-nt pg-hot-nt)
run_name() {
    case $1 in
    rand-*) echo "wrk 100 SKUs c${1#rand-}" ;;
    hot-*) echo "wrk hot SKU c${1#hot-}" ;;
    pg-rand) echo "pgbench 100 SKUs c$POOL" ;;
    pg-hot) echo "pgbench hot SKU c$POOL" ;;
    pg-rand-nt) echo "pgbench 100 SKUs c$POOL, no trigger" ;;
    pg-hot-nt) echo "pgbench hot SKU c$POOL, no trigger" ;;
    esac
}

REPORT=$RUN/report.md
{
    say "| scenario | connections | orders/s | p50 ms | p99 ms | non-2xx | vs pgbench (trigger) | vs pgbench, no trigger |"
    say "|---|--:|--:|--:|--:|--:|--:|--:|"
    for c in "${CONNS[@]}"; do
        say "| wrk → sales, 100 SKUs | $c | $(fmt "${RPS[rand-$c]}" 0) | $(fmt "${P50[rand-$c]}" 2) |" \
            "$(fmt "${P99[rand-$c]}" 2) | ${BAD[rand-$c]} | $(ratio "${RPS[rand-$c]}" "${RPS[pg-rand]}")x |" \
            "$(ratio "${RPS[rand-$c]}" "${RPS[pg-rand-nt]}")x |"
    done
    for c in "${CONNS[@]}"; do
        say "| wrk → sales, hot SKU | $c | $(fmt "${RPS[hot-$c]}" 0) | $(fmt "${P50[hot-$c]}" 2) |" \
            "$(fmt "${P99[hot-$c]}" 2) | ${BAD[hot-$c]} | $(ratio "${RPS[hot-$c]}" "${RPS[pg-hot]}")x |" \
            "$(ratio "${RPS[hot-$c]}" "${RPS[pg-hot-nt]}")x |"
    done
    say "| pgbench, 100 SKUs, per-row NOTIFY trigger | $POOL | $(fmt "${RPS[pg-rand]}" 0) | $(fmt "${P50[pg-rand]}" 2) |" \
        "$(fmt "${P99[pg-rand]}" 2) | ${BAD[pg-rand]} failed | 1.00x | $(ratio "${RPS[pg-rand]}" "${RPS[pg-rand-nt]}")x |"
    say "| pgbench, hot SKU, per-row NOTIFY trigger | $POOL | $(fmt "${RPS[pg-hot]}" 0) | $(fmt "${P50[pg-hot]}" 2) |" \
        "$(fmt "${P99[pg-hot]}" 2) | ${BAD[pg-hot]} failed | 1.00x | $(ratio "${RPS[pg-hot]}" "${RPS[pg-hot-nt]}")x |"
    say "| pgbench, 100 SKUs, no trigger | $POOL | $(fmt "${RPS[pg-rand-nt]}" 0) | $(fmt "${P50[pg-rand-nt]}" 2) |" \
        "$(fmt "${P99[pg-rand-nt]}" 2) | ${BAD[pg-rand-nt]} failed | $(ratio "${RPS[pg-rand-nt]}" "${RPS[pg-rand]}")x | 1.00x |"
    say "| pgbench, hot SKU, no trigger | $POOL | $(fmt "${RPS[pg-hot-nt]}" 0) | $(fmt "${P50[pg-hot-nt]}" 2) |" \
        "$(fmt "${P99[pg-hot-nt]}" 2) | ${BAD[pg-hot-nt]} failed | $(ratio "${RPS[pg-hot-nt]}" "${RPS[pg-hot]}")x | 1.00x |"
    say ""
    say "CPU during each measured run, in % of one CPU ($NCPU CPUs: $((NCPU * 100))% in all;" \
        "sales includes its outbox relay; other: the rest of the machine, such as other" \
        "users' processes), and per order in µs; backlog: sales' outbox rows not yet" \
        "published when the run ended; batch: orders per statement (sales'" \
        "dozen_orders_batch_size_sum over dozen_orders_statement_skus_count); waits: the" \
        "active client backends' wait events," \
        "sampled every 100 ms (CPU: waiting for nothing)."
    say ""
    say "| run | sales | PostgreSQL | broker | wrk/pgbench | other | idle | sales µs/order | PostgreSQL µs/order | backlog | batch | waits |"
    say "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
    for key in "${RUNS[@]}"; do
        read -r s p b l o i <<<"${CPU[$key]}"
        say "| $(run_name "$key") | $s | $p | $b | $l | $o | $i | $(us_per "$key" "$s") |" \
            "$(us_per "$key" "$p") | ${BACKLOG[$key]} | ${BATCH[$key]:--} | ${WAITS[$key]} |"
    done
    say ""
    busiest=0; busiest_run=
    for key in "${RUNS[@]}"; do
        read -r s p b l o i <<<"${CPU[$key]}"
        if [ "$o" -gt "$busiest" ]; then busiest=$o; busiest_run=$key; fi
    done
    if [ "$busiest" -gt 25 ]; then
        say "NOTE: the machine was not quiet: other processes took up to $busiest% of a CPU" \
            "(run $busiest_run), so these figures understate what the system can do."
        say ""
    fi
    say "- sales peak RSS (VmHWM): $((HWM_KB / 1024)) MiB ($HWM_KB kB), $SALES_THREADS threads after the runs"
    verdict="- Targets (issue 15): 100 SKUs at least ${TARGET_RAND}x pgbench with the trigger ($(fmt "${RPS[pg-rand]}" 0) tps):"
    for c in "${CONNS[@]}"; do
        r=$(ratio "${RPS[rand-$c]}" "${RPS[pg-rand]}")
        if ge "$r" "$TARGET_RAND"; then ok=met; else ok=MISSED; fi
        verdict+=" c$c ${r}x $ok;"
    done
    verdict+=" hot SKU at least ${TARGET_HOT}x ($(fmt "${RPS[pg-hot]}" 0) tps):"
    for c in "${CONNS[@]}"; do
        r=$(ratio "${RPS[hot-$c]}" "${RPS[pg-hot]}")
        if ge "$r" "$TARGET_HOT"; then ok=met; else ok=MISSED; fi
        verdict+=" c$c ${r}x $ok;"
    done
    if ge "$TARGET_P99_MS" "${P99[rand-64]}"; then ok=met; else ok=MISSED; fi
    verdict+=" p99 at c64 on 100 SKUs under $TARGET_P99_MS ms: $(fmt "${P99[rand-64]}" 1) ms $ok"
    say "$verdict"
} >"$REPORT"

bench_machine
SETUP="PostgreSQL $PG_VERSION ($PG_SETTINGS: the server's defaults, durable commits);"
SETUP+=" sales DB_POOL_SIZE=$POOL, LOG_LEVEL=info, broker: $BROKER_TEXT;"
SETUP+=" wrk $THREADS threads, pgbench -c $POOL -j 2 -M prepared -n; ${DURATION}s per run after ${WARMUP}s of warm-up;"
SETUP+=" everything on this one machine"

say ""
say "== results ($WHEN; $MACHINE)"
say "$SETUP"
say ""
cat "$REPORT"
if [ "${#PROBLEMS[@]}" -gt 0 ]; then
    say ""
    say "PROBLEMS:"
    printf '  - %s\n' "${PROBLEMS[@]}"
fi

if [ "$DOC" != none ]; then
    if [ ! -s "$DOC" ]; then
        printf '# Benchmark: POST /orders\n\n## Runs\n\n`make bench` (tests/bench/bench.sh) appends one section per run below.\n' >"$DOC"
    fi
    {
        say ""
        say "### Run of $WHEN"
        say ""
        say "Machine: $MACHINE. $SETUP."
        say ""
        cat "$REPORT"
        if [ "${#PROBLEMS[@]}" -gt 0 ]; then
            say ""
            say "Problems in this run:"
            say ""
            printf -- '- %s\n' "${PROBLEMS[@]}"
        fi
    } >>"$DOC"
    say ""
    say "appended to $DOC"
fi

[ "${#PROBLEMS[@]}" -eq 0 ] || exit 1
