#!/usr/bin/env bash
# notify.sh: the body of `make bench-notify`: how long the notifier (services/notifier) takes
# to deliver one daily bulletin to NOTIFY_SUBSCRIBERS subscribers through the SMS stand-in
# (tools/sms-gateway), and its peak memory meanwhile.
#
# It starts a private stack (tools/stack.sh up with its own RUN_DIR and free ports, through
# tests/bench/common.sh): its own PostgreSQL, broker, the notifier, the open-data and SMS
# stand-ins and the rest. The bulletin's schedule is put 12 hours away (so that only the
# bench's run happens) and its deadline 10 minutes after the run. Then:
#   1. NOTIFY_SUBSCRIBERS subscribers +821000000001.. are inserted into `subscribers` with
#      one INSERT ... SELECT generate_series (direct SQL: the bench measures sending, not
#      the subscriber API); GET /subscribers must count them all;
#   2. the open-data stand-in is reset to mode ok, the SMS stand-in reset to no failures;
#   3. POST /bulletins/run (admin token) must answer 202 with started true: time t0. A small
#      driver then reads the SMS stand-in's GET /admin/stats and the notifier's
#      GET /bulletins/{date} every NOTIFY_POLL_MS over keep-alive connections until the
#      stand-in shows NOTIFY_SUBSCRIBERS accepted and the bulletin messages.sent as many:
#      time t1. The figure is t1 - t0;
#   4. after NOTIFY_SETTLE_S more seconds it checks that nothing more was sent and that the
#      stand-in holds one message per subscriber with the bulletin's text, splits the run
#      into stages from the deliveries' timestamps in PostgreSQL, and reads the notifier's
#      VmHWM (peak RSS) from /proc and the CPU each process used.
# The results are printed and recorded in docs/bench.md under "Notifier". The stack is
# stopped and RUN_DIR removed however the script ends.
#
# Settings (environment):
#   NOTIFY_SUBSCRIBERS  subscribers (10000)
#   NOTIFY_MAX_S        the target: every SMS accepted and counted sent within this (20 s)
#   NOTIFY_TIMEOUT_S    how long the bench waits for the run to finish at all (120 s)
#   NOTIFY_POLL_MS      interval of the progress reads (50)
#   NOTIFY_SETTLE_S     wait after the end before checking that nothing more is sent (3)
#   NOTIFY_DOC          where the run is recorded (docs/bench.md, after the line
#                       "<!-- notify runs -->"); "none" records nothing
#   SMS_CONCURRENCY, SMS_TIMEOUT, SMS_SEND_LEASE, SMS_MAX_ATTEMPTS, SMS_RETRY_INITIAL,
#   SMS_RETRY_MAX, SMS_POLL_INTERVAL   the notifier's sender settings, passed on when set
#   SMS_RATE            messages a second (10000 unless set: the bench is of the notifier)
#   KAFKA_<PROPERTY>    librdkafka properties for the services, passed on as they are
#   BENCH_KAFKA=apache, BENCH_KAFKA_BOOTSTRAP   another broker (tests/bench/common.sh)
#   DOZEN_BIN           the programs (bin/)
# Exit status: 0 when the target is met (and every subscriber got exactly one SMS with the
# bulletin's text), 1 when it is not, 2 when the bench could not run.
set -eEuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/bench
BIN=${DOZEN_BIN:-$ROOT/bin}
BENCH_NAME=bench-notify
# say, die, is_int, the private stack and its clean-up, bounded, CPU ticks, bench_machine.
# shellcheck source=tests/bench/common.sh
. "$HERE/common.sh"

N=${NOTIFY_SUBSCRIBERS:-10000}
MAX_S=${NOTIFY_MAX_S:-20}
TIMEOUT_S=${NOTIFY_TIMEOUT_S:-120}
POLL_MS=${NOTIFY_POLL_MS:-50}
SETTLE_S=${NOTIFY_SETTLE_S:-3}
DOC=${NOTIFY_DOC:-$ROOT/docs/bench.md}
MARKER='<!-- notify runs -->'
# The bulletin's zone: the notifier's default, and the open-data stand-in's (stack.sh gives
# the stand-in BULLETIN_TZ), so that both mean the same day by "today".
TZ_NAME=Asia/Seoul

# The SMS stand-in keeps the last 100000 messages, which the check of step 4 reads back.
is_int "$N" 1 100000 || die "NOTIFY_SUBSCRIBERS: must be an integer in 1..100000, not '$N'"
is_int "$MAX_S" 1 3600 || die "NOTIFY_MAX_S: must be seconds in 1..3600, not '$MAX_S'"
is_int "$TIMEOUT_S" 1 3600 || die "NOTIFY_TIMEOUT_S: must be seconds in 1..3600, not '$TIMEOUT_S'"
is_int "$POLL_MS" 1 1000 || die "NOTIFY_POLL_MS: must be milliseconds in 1..1000, not '$POLL_MS'"
is_int "$SETTLE_S" 0 60 || die "NOTIFY_SETTLE_S: must be seconds in 0..60, not '$SETTLE_S'"
N=$((10#$N)); MAX_S=$((10#$MAX_S)); TIMEOUT_S=$((10#$TIMEOUT_S)); POLL_MS=$((10#$POLL_MS))
SETTLE_S=$((10#$SETTLE_S))
[ "$TIMEOUT_S" -ge "$MAX_S" ] ||
    die "NOTIFY_TIMEOUT_S ($TIMEOUT_S) must be at least NOTIFY_MAX_S ($MAX_S)"
if [ "$DOC" != none ] && ! grep -qxF "$MARKER" "$DOC" 2>/dev/null; then
    die "NOTIFY_DOC: $DOC has no line '$MARKER' to record the run after (NOTIFY_DOC=none records nothing)"
fi
need_tools psql curl /usr/bin/python3
need_programs

# Called by the clean-up when the bench could not run (exit status 2).
bench_on_failure() {
    local svc
    for svc in notifier sms-gateway; do
        [ -f "$RUN/logs/$svc.log" ] || continue
        say "--- last lines of the $svc log:"
        tail -n 15 "$RUN/logs/$svc.log" || true
    done
}

# ---------------------------------------------------------------------------------------
# The private stack (common.sh: stopped and removed however the script ends)

mapfile -t KAFKA_PROPS < <(kafka_props_env)
# The notifier's sender settings the caller set, passed on (only the notifier reads SMS_*
# besides the SMS stand-in, which takes only the account from stack.sh).
NOTIFIER_PROPS=()
for var in SMS_CONCURRENCY SMS_TIMEOUT SMS_SEND_LEASE SMS_MAX_ATTEMPTS SMS_RETRY_INITIAL \
           SMS_RETRY_MAX SMS_POLL_INTERVAL; do
    [ -z "${!var:-}" ] || NOTIFIER_PROPS+=("$var=${!var}")
done
# The bench measures the notifier, not a long code's 1 message a second: SMS_RATE is high
# unless the caller sets it.
NOTIFIER_PROPS+=("SMS_RATE=${SMS_RATE:-10000}")
# A schedule 12 hours from now, in the bulletin's zone: no scheduled run during the bench.
CRON="$(TZ=$TZ_NAME date -d '+12 hours' '+%-M %-H') * * *"
bench_stack_up "${KAFKA_PROPS[@]}" "${NOTIFIER_PROPS[@]}" BULLETIN_TZ="$TZ_NAME" \
    BULLETIN_CRON="$CRON" BULLETIN_DEADLINE=10m
# shellcheck source=/dev/null
read -r NOTIFIER_URL OPEN_DATA_URL SMS_GATEWAY_URL ADMIN_TOKEN < <(
    . "$RUN/env" && printf '%s %s %s %s\n' "${NOTIFIER_URL:-}" "${OPEN_DATA_URL:-}" \
        "${SMS_GATEWAY_URL:-}" "${ADMIN_TOKEN:-}") || true
[ -n "${ADMIN_TOKEN:-}" ] ||
    die "stack.sh wrote no NOTIFIER_URL, OPEN_DATA_URL, SMS_GATEWAY_URL and ADMIN_TOKEN in $RUN/env"

# pid_of NAME: the pid stack.sh recorded for NAME, checked to run BIN/NAME.
pid_of() {
    local pid exe
    pid=$(cat "$RUN/pids/$1.pid" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [ "${exe% (deleted)}" = "$(readlink -f "$BIN/$1")" ] || return 1
    echo "$pid"
}

# proc_status PID FIELD: a field of /proc/PID/status (VmHWM, VmRSS in kB; Threads).
proc_status() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

NOTIFIER_PID=$(pid_of notifier) || die "the notifier is not running"
GATEWAY_PID=$(pid_of sms-gateway) || die "the SMS stand-in is not running"

# Until the notifier's consumer has joined its group, the run would wait for the join.
say "== waiting for the notifier's consumer to get partitions"
deadline=$((SECONDS + 90))
until grep -q 'kafka_partitions_assigned' "$RUN/logs/notifier.log"; do
    [ $SECONDS -lt $deadline ] || die "the notifier's consumer got no partitions within 90 s"
    pid_of notifier >/dev/null || die "the notifier exited"
    sleep 0.2
done

# ---------------------------------------------------------------------------------------
# 1. The subscribers

say "== inserting $N subscribers (+8210 and 8 digits) with one INSERT ... SELECT"
t_sql=$(date +%s.%N)
psql_q -v n="$N" <<'SQL'
INSERT INTO subscribers (id, phone, name)
SELECT gen_random_uuid(), '+8210' || lpad(i::text, 8, '0'), 'bench ' || i
FROM generate_series(1, :n) AS i;
SQL
SEED_S=$(awk -v a="$t_sql" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
total=$(curl -fsS -m 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$NOTIFIER_URL/subscribers?limit=1" |
        /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["total"])' 2>/dev/null) ||
    die "GET /subscribers did not answer with a total"
[ "$total" = "$N" ] || die "GET /subscribers counts $total subscribers, not $N"
say "   $N subscribers in ${SEED_S} s; GET /subscribers counts $total"

# ---------------------------------------------------------------------------------------
# 2. The stand-ins

curl -fsS -m 10 -X POST "$OPEN_DATA_URL/admin/reset" >/dev/null || die "could not reset the open-data stand-in"
curl -fsS -m 10 -X POST "$OPEN_DATA_URL/admin/mode" -d '{"mode": "ok"}' >/dev/null ||
    die "could not set the open-data stand-in to mode ok"
curl -fsS -m 10 -X POST "$SMS_GATEWAY_URL/admin/reset" >/dev/null || die "could not reset the SMS stand-in"
HWM_BEFORE=$(proc_status "$NOTIFIER_PID" VmHWM)

# ---------------------------------------------------------------------------------------
# 3. The run, and 4. the checks: a small driver with one keep-alive connection per program
# (curl would fork once per read, and its start-up would be the resolution of the figures).

cat >"$RUN/driver.py" <<'PY'
"""`run`: runs one bulletin and follows it to the end; `check`: checks what was sent.
Prints RESULT, CHECK and PROBLEM lines; exit status 2 when it could not do its work."""
import collections
import http.client
import json
import sys
import time
import urllib.parse


class Client:
    """One keep-alive HTTP connection; a GET is tried once more on a closed connection."""

    def __init__(self, url, token=None):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.conn, self.token = u.hostname, u.port, None, token

    def call(self, method, path, body=None):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                headers = {}
                if body is not None:
                    headers["Content-Type"] = "application/json"
                if self.token:
                    headers["Authorization"] = "Bearer " + self.token
                self.conn.request(method, path, body=None if body is None else json.dumps(body),
                                  headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                if r.will_close:
                    self.conn.close()
                    self.conn = None
                try:
                    doc = json.loads(raw) if raw else None
                except ValueError:
                    doc = raw.decode(errors="replace")
                return r.status, doc
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if method != "GET" or attempt == 2:
                    raise


def say(*words):
    print(*words, flush=True)


def expected_body(feed):
    """The feed's figures, and the bulletin SMS the spec makes of them."""
    st, daily = feed.call("GET", "/daily")
    if st != 200:
        say("FATAL the open-data stand-in answered GET /daily with", st, daily)
        sys.exit(2)
    return daily, (f"dozen {daily['date']}: confirmed {daily['confirmed']}, recovered "
                   f"{daily['recovered']}, in treatment {daily['in_treatment']}, "
                   f"deaths {daily['deaths']}")


def run(a, notifier, gateway, feed):
    """POST /bulletins/run, then read progress until both counts reach n (or time out)."""
    n, timeout_s, poll_s = int(a["n"]), int(a["timeout_s"]), int(a["poll_ms"]) / 1000
    daily, _ = expected_body(feed)
    t0_wall, t0 = time.time(), time.monotonic()
    st, answer = notifier.call("POST", "/bulletins/run")
    t_answer = time.monotonic() - t0
    if st != 202 or not isinstance(answer, dict) or answer.get("started") is not True:
        say("FATAL POST /bulletins/run answered", st, json.dumps(answer)[:400],
            "(202 with started true was expected: a bulletin for today already existed?)")
        return 2
    date = (answer.get("bulletin") or {}).get("date")
    if date != daily["date"]:
        say(f"PROBLEM the run's date is {date}, the feed's today {daily['date']}")
    path = f"/bulletins/{date}"

    t_first = t_accepted = t_sent = None
    reads = 0
    while True:
        start = time.monotonic()
        st, stats = gateway.call("GET", "/admin/stats")
        if st != 200:
            say("FATAL GET /admin/stats on the SMS stand-in answered", st, stats)
            return 2
        st, bulletin = notifier.call("GET", path)
        if st != 200:
            say(f"FATAL GET {path} answered", st, bulletin)
            return 2
        now, reads = time.monotonic() - t0, reads + 1
        accepted = stats.get("accepted", 0)
        sent = (bulletin.get("messages") or {}).get("sent", 0)
        if t_first is None and accepted > 0:
            t_first = now
        if t_accepted is None and accepted >= n:
            t_accepted = now
        if t_sent is None and sent >= n:
            t_sent = now
        if t_accepted is not None and t_sent is not None:
            break
        if bulletin.get("state") == "unavailable":
            say(f"PROBLEM the bulletin became unavailable: reason {bulletin.get('reason')}, "
                f"error {bulletin.get('error')}")
            break
        if now > timeout_s:
            say(f"PROBLEM not finished after {timeout_s} s: the SMS stand-in accepted {accepted}, "
                f"the bulletin shows {json.dumps(bulletin.get('messages'))}, state "
                f"{bulletin.get('state')}")
            break
        time.sleep(max(0.0, start + poll_s - time.monotonic()))

    fmt = lambda v: "-" if v is None else f"{v:.3f}"
    say(f"RESULT t0_wall={t0_wall:.6f} answer_s={t_answer:.3f} first_s={fmt(t_first)} "
        f"accepted_s={fmt(t_accepted)} sent_s={fmt(t_sent)} reads={reads} date={date}")
    return 0


def check(a, notifier, gateway, feed):
    """After the run: nothing more sent, one SMS per number with the spec's text, the
    bulletin's own account of it right."""
    n, path = int(a["n"]), f"/bulletins/{a['date']}"
    daily, want_body = expected_body(feed)
    st, stats = gateway.call("GET", "/admin/stats")
    st2, bulletin = notifier.call("GET", path)
    st3, msgs = gateway.call("GET", "/messages")
    if st != 200 or st2 != 200 or st3 != 200:
        say("FATAL the final reads answered", st, st2, st3)
        return 2
    m = bulletin.get("messages") or {}
    say(f"CHECK gateway_accepted={stats.get('accepted')} gateway_failed={stats.get('failed')} "
        f"gateway_refused={stats.get('refused')} gateway_rejected={stats.get('rejected')} "
        f"state={bulletin.get('state')} attempts={bulletin.get('attempts')} "
        f"retries={bulletin.get('retries')} total={m.get('total')} sent={m.get('sent')} "
        f"pending={m.get('pending')} failed={m.get('failed')} cancelled={m.get('cancelled')}")
    messages = msgs.get("messages") or []
    per_number = collections.Counter(x.get("to") for x in messages)
    twice = sum(1 for c in per_number.values() if c > 1)
    wrong = [x.get("body") for x in messages if x.get("body") != want_body]
    senders = sorted({str(x.get("from")) for x in messages})
    say(f"CHECK messages={len(messages)} numbers={len(per_number)} twice={twice} "
        f"wrong_body={len(wrong)} from={','.join(senders)}")

    if stats.get("accepted") != n:
        say(f"PROBLEM the SMS stand-in accepted {stats.get('accepted')} messages for {n} subscribers")
    if twice:
        say(f"PROBLEM {twice} numbers got more than one SMS")
    if len(per_number) != n:
        say(f"PROBLEM {len(per_number)} numbers got an SMS, not {n}")
    if wrong:
        say(f"PROBLEM {len(wrong)} messages do not have the bulletin's text "
            f"'{want_body}'; the first: '{wrong[0]}'")
    if bulletin.get("state") != "sent":
        say(f"PROBLEM the bulletin's state is {bulletin.get('state')}, not sent")
    if (m.get("total"), m.get("sent"), m.get("pending"), m.get("failed")) != (n, n, 0, 0):
        say(f"PROBLEM GET {path} shows messages {json.dumps(m)}, not {n} sent of {n}")
    if bulletin.get("attempts") != 1 or bulletin.get("retries") != 0:
        say(f"PROBLEM the bulletin shows attempts {bulletin.get('attempts')} and retries "
            f"{bulletin.get('retries')} for a feed that was valid at once (1 and 0 expected)")
    if bulletin.get("figures") != {k: daily[k] for k in
                                   ("confirmed", "recovered", "in_treatment", "deaths")}:
        say(f"PROBLEM the bulletin's figures {bulletin.get('figures')} are not the feed's")
    return 0


def main():
    phase = sys.argv[1]
    a = dict(arg.split("=", 1) for arg in sys.argv[2:])
    notifier = Client(a["notifier"], a["token"])
    gateway, feed = Client(a["gateway"]), Client(a["feed"])
    return (run if phase == "run" else check)(a, notifier, gateway, feed)


sys.exit(main())
PY

cpu_sample() { # ticks of "total idle broker postgres notifier sms-gateway"
    local broker_pid
    broker_pid=$(cat "$RUN/pids/devbroker.pid" "$RUN/kafka/kafka.pid" 2>/dev/null || true)
    broker_pid=${broker_pid%%$'\n'*}
    echo "$(machine_ticks) $(proc_ticks "${broker_pid:-0}") $(pg_ticks)" \
        "$(proc_ticks "$NOTIFIER_PID") $(proc_ticks "$GATEWAY_PID")"
}

say "== one bulletin to $N subscribers: POST /bulletins/run, then until the SMS stand-in has" \
    "accepted $N and the bulletin counts $N sent (target: under $MAX_S s)"
DRIVER_ARGS=(notifier="$NOTIFIER_URL" gateway="$SMS_GATEWAY_URL" feed="$OPEN_DATA_URL"
             token="$ADMIN_TOKEN" n="$N")
before=$(cpu_sample)
rc=0
bounded $((TIMEOUT_S + 120)) "$RUN/run.out" /usr/bin/python3 "$RUN/driver.py" run \
    "${DRIVER_ARGS[@]}" timeout_s="$TIMEOUT_S" poll_ms="$POLL_MS" || rc=$?
after=$(cpu_sample)
[ "$rc" = 0 ] || die "the driver failed (status $rc): $(tail -n 5 "$RUN/run.out")"
pid_of notifier >/dev/null || die "the notifier exited during the run"
HWM_AFTER=$(proc_status "$NOTIFIER_PID" VmHWM)
RSS_AFTER=$(proc_status "$NOTIFIER_PID" VmRSS)
THREADS=$(proc_status "$NOTIFIER_PID" Threads)
cat "$RUN/run.out"
RESULT=$(grep '^RESULT ' "$RUN/run.out") || die "the driver printed no result"
RUN_DATE=$(sed -n 's/.* date=\([0-9-]*\).*/\1/p' <<<"$RESULT")
[ -n "$RUN_DATE" ] || die "the driver printed no date: $RESULT"

say "== checks, after $SETTLE_S s more: nothing more sent, one SMS per subscriber"
sleep "$SETTLE_S"
rc=0
bounded 120 "$RUN/check.out" /usr/bin/python3 "$RUN/driver.py" check "${DRIVER_ARGS[@]}" \
    date="$RUN_DATE" || rc=$?
[ "$rc" = 0 ] || die "the checks failed (status $rc): $(tail -n 5 "$RUN/check.out")"
cat "$RUN/check.out"

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
PROBLEMS=()
while IFS= read -r line; do PROBLEMS+=("${line#PROBLEM }"); done < <(
    grep -h '^PROBLEM ' "$RUN/run.out" "$RUN/check.out" || true)
CHECKS=$(sed -n 's/^CHECK //p' "$RUN/check.out" | paste -sd ' ')
ACCEPTED_S=$(field "$RESULT" accepted_s)
SENT_S=$(field "$RESULT" sent_s)
if [ "$ACCEPTED_S" = - ] || [ "$SENT_S" = - ]; then
    TOTAL_S=-
    PROBLEMS+=("the bulletin did not reach all $N subscribers (target: under $MAX_S s)")
else
    TOTAL_S=$(awk -v a="$ACCEPTED_S" -v b="$SENT_S" 'BEGIN { printf "%.2f", (a > b ? a : b) }')
    awk -v t="$TOTAL_S" -v m="$MAX_S" 'BEGIN { exit !(t < m) }' ||
        PROBLEMS+=("the bulletin took $TOTAL_S s to reach $N subscribers (target: under $MAX_S s)")
fi

# Stages from PostgreSQL's timestamps (now() of each transaction) and the bench's t0 (the
# same machine's clock): the request's transaction writes bulletin.requested to the outbox;
# the relay publishes it; the notifier's consumer checks the feed and creates the day's
# deliveries in one transaction; each is marked sent in its own.
psql_q -F '|' -v day="$RUN_DATE" -v t0="$(field "$RESULT" t0_wall)" >"$RUN/stages.txt" <<'SQL'
SELECT round((extract(epoch FROM o.created_at) - :t0)::numeric, 3),
       round((extract(epoch FROM o.sent_at) - :t0)::numeric, 3),
       round((extract(epoch FROM d.created) - :t0)::numeric, 3),
       round((extract(epoch FROM d.first_sent) - :t0)::numeric, 3),
       round((extract(epoch FROM d.last_sent) - :t0)::numeric, 3),
       d.sent, d.multi, d.uncertain, d.total
FROM (SELECT min(created_at) AS created, min(sent_at) AS first_sent, max(sent_at) AS last_sent,
             count(*) FILTER (WHERE status = 'sent') AS sent,
             count(*) FILTER (WHERE attempts > 1) AS multi,
             count(*) FILTER (WHERE uncertain) AS uncertain, count(*) AS total
      FROM deliveries WHERE message_key = 'day:' || :'day') AS d
LEFT JOIN (SELECT created_at, sent_at FROM outbox
           WHERE topic = 'bulletins' AND msg_key = :'day' ORDER BY id LIMIT 1) AS o ON true;
SQL
IFS='|' read -r REQ_S PUB_S CREATED_S FIRST_SENT_S LAST_SENT_S DB_SENT MULTI UNCERTAIN DB_TOTAL \
    <"$RUN/stages.txt"
[ "$DB_TOTAL" = "$N" ] || PROBLEMS+=("PostgreSQL holds $DB_TOTAL deliveries for the day, not $N")
RATE=$(awk -v n="$DB_SENT" -v a="$FIRST_SENT_S" -v b="$LAST_SENT_S" \
    'BEGIN { if (b > a) printf "%.0f", n / (b - a); else print "-" }')

# ---------------------------------------------------------------------------------------
# Report

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
pct_cpu() { # pct_cpu TICKS WALL_TICKS_PER_CPU: percent of one CPU
    awk -v t="$1" -v w="$2" 'BEGIN { if (w > 0) printf "%.1f", 100 * t / w; else print "-" }'
}
diff_s() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "") print "-"; else printf "%.2f", b - a }'; }
REPORT=$RUN/report.md
{
    say "| one bulletin to $N subscribers, seconds after POST /bulletins/run | s |"
    say "|---|--:|"
    say "| the 202 answer | $(field "$RESULT" answer_s) |"
    say "| the request's transaction (PostgreSQL's clock from here on) | $REQ_S |"
    say "| bulletin.requested acknowledged by the broker (the notifier's outbox relay) | $PUB_S |"
    say "| the notifier's consumer starts the day's transaction (fetch, feed checked) | $CREATED_S |"
    say "| first SMS marked sent (the $N deliveries committed, a sender's first send) | $FIRST_SENT_S |"
    say "| last SMS marked sent | $LAST_SENT_S |"
    say "| first SMS accepted by the gateway (as the bench saw it) | $(field "$RESULT" first_s) |"
    say "| all $N accepted by the gateway (GET /admin/stats) | $ACCEPTED_S |"
    say "| GET /bulletins/{date} shows messages.sent = $N | $SENT_S |"
    say "| **both: the figure (target: under $MAX_S s)** | **$TOTAL_S** |"
    say ""
    say "Sending: $(diff_s "$FIRST_SENT_S" "$LAST_SENT_S") s from the first SMS marked sent to" \
        "the last, $RATE SMS/s; deliveries with more than one attempt: $MULTI, marked" \
        "uncertain: $UNCERTAIN. Progress read every $POLL_MS ms ($(field "$RESULT" reads) reads)."
    say ""
    say "| notifier, memory | MiB |"
    say "|---|--:|"
    say "| peak RSS (VmHWM) before the run, $N subscribers stored | $(mb "$HWM_BEFORE") |"
    say "| **peak RSS (VmHWM) after the run** | **$(mb "$HWM_AFTER")** |"
    say "| RSS after the run ($THREADS threads) | $(mb "$RSS_AFTER") |"
    say ""
    read -r -a a <<<"$before"
    read -r -a b <<<"$after"
    per_cpu=$(((b[0] - a[0]) / NCPU))
    say "CPU from just before the request to the end of the run, in % of one CPU ($NCPU CPUs;" \
        "the machine's busy time includes everything else running on it):"
    say ""
    say "| broker | PostgreSQL | notifier | SMS stand-in | machine busy |"
    say "|--:|--:|--:|--:|--:|"
    row="|"
    for ((k = 2; k < 6; k++)); do row+=" $(pct_cpu $((b[k] - a[k])) "$per_cpu") |"; done
    row+=" $(pct_cpu $(((b[0] - a[0]) - (b[1] - a[1]))) "$per_cpu") |"
    say "$row"
    say ""
    say "Checks ${SETTLE_S} s after the end: $CHECKS."
} >"$REPORT"

bench_machine
PG_VERSION=$(psql_q -c "SHOW server_version")
# Read-only: the commit the checkout is at, and whether the sources differ from it.
CODE="commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" --no-optional-locks status --porcelain -- services libcommon \
           tools migrations 2>/dev/null)" ]; then
    CODE+=" with uncommitted changes to the sources"
fi
SETUP="$N subscribers inserted directly into PostgreSQL (one INSERT ... SELECT generate_series, ${SEED_S} s; numbers +8210 and 8 digits, no SKUs);"
SETUP+=" feed: the open-data stand-in in mode ok; SMS gateway: the stand-in, no failures, no delay;"
SETUP+=" BULLETIN_TZ=$TZ_NAME, BULLETIN_DEADLINE=10m, no scheduled run during the bench;"
if [ "${#NOTIFIER_PROPS[@]}" -gt 0 ]; then
    SETUP+=" notifier with ${NOTIFIER_PROPS[*]};"
else
    SETUP+=" notifier's sender settings at their defaults (SMS_CONCURRENCY 8);"
fi
if [ "${#KAFKA_PROPS[@]}" -gt 0 ]; then
    SETUP+=" services with ${KAFKA_PROPS[*]};"
fi
SETUP+=" broker: $BROKER_TEXT; PostgreSQL $PG_VERSION with its default settings; everything on this one machine"

bench_report_and_record
