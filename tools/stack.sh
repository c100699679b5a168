#!/usr/bin/env bash
# stack.sh: starts and stops the local dozen system; the body of `make up`, `make down` and
# `make logs`. Everything lives under RUN_DIR (default .run/): PostgreSQL's data, logs, pid
# files and the env file that other tools read.
#
#   tools/stack.sh up      start what is not running, return when every service is healthy
#   tools/stack.sh down    stop everything `up` started; PostgreSQL's data stays
#   tools/stack.sh logs    follow every log
#
# Settings (environment): RUN_DIR, DOZEN_BIN, PGPORT (55432), SALES_PORT (8080),
# STOCK_PORT (8081), FACTORY_PORT (8082), NOTIFIER_PORT (8083), RETRY_PORT (8084),
# LEGACY_FACTORY_PORT (9101), OPEN_DATA_PORT (9102), SMS_GATEWAY_PORT (9103),
# KAFKA_BOOTSTRAP (use this broker instead of the dev broker; the address RUN/env itself
# exports for the stack's own broker is recognised as such, so `. .run/env; make up` is safe),
# KAFKA=apache (start a real Apache Kafka broker with tools/kafka/kafka.sh instead),
# ADMIN_TOKEN (default: generated once and kept in RUN_DIR/admin_token), UP_TIMEOUT (60 s),
# INSTANCE_ID (1: the services' static consumer group membership; with INSTANCES=N, instance
# k is INSTANCE_ID k), INSTANCES (1..9: how many of each service, see below),
# KAFKA=cluster (a three-node Apache Kafka cluster, tools/kafka/kafka.sh cluster, with topics
# created at replication 3 and min.insync.replicas 2), NETNS_INSTANCE, NETNS_PATH and
# NETNS_DATABASE_URL (together: start that one instance, say sales.2, inside the network
# namespace at NETNS_PATH with that DATABASE_URL; the chaos suite's `cut` nemesis, which
# made the namespace and forwards the instance's port, Kafka and PostgreSQL into it, see
# tests/netcut.py; a change to them restarts that instance).
#
# Several instances (INSTANCES=N): instance k of a service listens on its port + 100*(k-1)
# (sales 8080, 8180, 8280 ...; stock 8081, 8181 ...), has INSTANCE_ID k, and its pid file and
# log are NAME.pid/NAME.log for k=1 and NAME.k.pid/NAME.k.log after. The stand-ins run once.
# A smaller N on the next `up` stops the instances above it; `down` stops them all.
# Passed on as they are: BULLETIN_* to the notifier (BULLETIN_SOURCE_URL defaults to the
# open-data stand-in, in the BULLETIN_SOURCE_FORMAT asked for; when it names a real feed,
# the stand-in is not started and BULLETIN_SOURCE_FORMAT and BULLETIN_SOURCE_KEY go with
# it), OPEN_DATA_* to the open-data stand-in (OPEN_DATA_TZ defaults to
# BULLETIN_TZ, so that both agree on "today"), SMS_GATEWAY_* to the SMS stand-in, SMS_RATE
# (default 1 message a second, a Twilio long code's; toll-free 3, short code 100) and
# SMS_STATUS_CALLBACK_URL to the notifier; a change to them restarts that program on the
# next `up`. The notifier sends through the SMS stand-in, with the stand-in's account
# (SMS_SID and SMS_TOKEN below), unless SMS_GATEWAY_URL names a real provider (say
# https://api.twilio.com) with SMS_ACCOUNT_SID, SMS_AUTH_TOKEN and SMS_FROM: then those go
# to the notifier (through its environment, never a command line; the token is not written
# anywhere) and the stand-in is not started (stopped if it runs).
# The legacy factory: LEGACY_FACTORY_URL naming another than the stand-in's address makes the
# factory service call that one (the real Legacy Factory API) and the stand-in is not started
# (stopped if it runs); FACTORY_CALLBACK_URL (how that factory reaches the factory service,
# default http://127.0.0.1:FACTORY_PORT) and LEGACY_FACTORY_ID, LEGACY_FACTORY_REQUESTER,
# LEGACY_FACTORY_GROUP_ID go to the factory service; the stand-in's knobs (FACTORY_DELAY_MS,
# LEGACY_FACTORY_FAIL_NEXT, ...) to the stand-in. A change to them restarts that program.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN=${RUN_DIR:-$ROOT/.run}
BIN=${DOZEN_BIN:-$ROOT/bin}
PGPORT=${PGPORT:-55432}
SALES_PORT=${SALES_PORT:-8080}
STOCK_PORT=${STOCK_PORT:-8081}
FACTORY_PORT=${FACTORY_PORT:-8082}
LEGACY_FACTORY_PORT=${LEGACY_FACTORY_PORT:-9101}
RETRY_PORT=${RETRY_PORT:-8084}
NOTIFIER_PORT=${NOTIFIER_PORT:-8083}
OPEN_DATA_PORT=${OPEN_DATA_PORT:-9102}
SMS_GATEWAY_PORT=${SMS_GATEWAY_PORT:-9103}
UP_TIMEOUT=${UP_TIMEOUT:-60}
# Each service's stable name among its instances: with it, a service that crashed and is
# started again rejoins its consumer group as the same member and resumes at once.
INSTANCE=${INSTANCE_ID:-1}
INSTANCES=${INSTANCES:-1}
[[ "$INSTANCES" =~ ^[1-9]$ ]] || { printf 'stack: INSTANCES must be 1 to 9 (got %s)\n' "$INSTANCES" >&2; exit 1; }
[ -z "${NETNS_INSTANCE:-}" ] || { [ -e "${NETNS_PATH:-}" ] && [ -n "${NETNS_DATABASE_URL:-}" ]; } ||
    { printf 'stack: NETNS_INSTANCE=%s needs NETNS_PATH (a namespace; got %s) and NETNS_DATABASE_URL\n' "$NETNS_INSTANCE" "${NETNS_PATH:-}" >&2; exit 1; }
# Started in this order (the stand-ins of the outside world first), stopped in reverse.
SERVICES=(legacy-factory open-data sms-gateway retry sales stock factory notifier)
# The legacy factory the factory service calls: the stand-in unless the environment names
# another one (the stand-in's own address, which RUN/env exports, is no such request).
LEGACY_STANDIN_URL=http://127.0.0.1:$LEGACY_FACTORY_PORT
if [ -n "${LEGACY_FACTORY_URL:-}" ] && [ "${LEGACY_FACTORY_URL%/}" != "$LEGACY_STANDIN_URL" ]; then
    LEGACY_TARGET=${LEGACY_FACTORY_URL%/}
else
    LEGACY_TARGET=$LEGACY_STANDIN_URL
fi
FACTORY_CALLBACK=${FACTORY_CALLBACK_URL:-http://127.0.0.1:$FACTORY_PORT}
# The ones that run INSTANCES times (the stand-ins of the outside world run once).
SCALED=(retry sales stock factory notifier)
# The SMS stand-in's account, given to the stand-in and to the notifier alike, and the
# notifier's sender id. Not secrets: the stand-in listens on loopback and sends nothing on.
SMS_SID=ACdozenlocal
SMS_TOKEN=dozen-local-sms-token
SMS_SENDER=dozen
# Stand-ins not started because the environment names the real system (stopped if running).
SKIP_STANDINS=()
[ "$LEGACY_TARGET" = "$LEGACY_STANDIN_URL" ] || SKIP_STANDINS+=(legacy-factory)
# The feed: the open-data stand-in (JSON at /daily, or the data portal's XML service with a
# key of its own) unless BULLETIN_SOURCE_URL names a real one. The key is a secret: it
# reaches the notifier through its environment only, never a command line or a file.
FEED_FORMAT=${BULLETIN_SOURCE_FORMAT:-dozen-json}
if [ -n "${BULLETIN_SOURCE_URL:-}" ]; then
    FEED_URL=$BULLETIN_SOURCE_URL
    FEED_KEY=${BULLETIN_SOURCE_KEY:-}
    SKIP_STANDINS+=(open-data)
elif [ "$FEED_FORMAT" = datagokr-covid19 ]; then
    FEED_URL=http://127.0.0.1:$OPEN_DATA_PORT/openapi/service/rest/Covid19/getCovid19InfStateJson
    FEED_KEY=${BULLETIN_SOURCE_KEY:-dozen-local-key}
else
    FEED_URL=http://127.0.0.1:$OPEN_DATA_PORT/daily
    FEED_KEY=${BULLETIN_SOURCE_KEY:-}
fi
skipped() {
    local s
    for s in "${SKIP_STANDINS[@]}"; do [ "$s" = "$1" ] && return 0; done
    return 1
}
# The SMS provider: the stand-in unless SMS_GATEWAY_URL names another one (RUN/env exports
# the stand-in's: `. .run/env; make up` keeps it); its account is checked by sms_provider.
SMS_STANDIN_URL=http://127.0.0.1:$SMS_GATEWAY_PORT
SMS_URL=$SMS_STANDIN_URL
REAL_SMS=0
if [ -n "${SMS_GATEWAY_URL:-}" ] && [ "$SMS_GATEWAY_URL" != "$SMS_STANDIN_URL" ]; then
    REAL_SMS=1
    SMS_URL=$SMS_GATEWAY_URL
    SKIP_STANDINS+=(sms-gateway)
fi
# The feed's zone: the notifier's unless set, so that both mean the same day by "today".
OPEN_DATA_TZ_EFFECTIVE=${OPEN_DATA_TZ:-${BULLETIN_TZ:-Asia/Seoul}}

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
LOGS=$RUN/logs
PIDS=$RUN/pids
SETTINGS=$RUN/settings
PGDIR=$RUN/pg

say() { printf '%s\n' "$*"; }
die() { printf 'stack: %s\n' "$*" >&2; exit 1; }

# Runs a command as the PostgreSQL owner: the postgres user when we are root (PostgreSQL
# refuses to run as root), ourselves otherwise.
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_owner() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }

# prog_of NAME: the program an instance name runs (sales.2 -> sales).
prog_of() { printf '%s\n' "${1%.[0-9]}"; }

# port_of SERVICE K: the port of instance K of SERVICE (its base port + 100*(K-1)).
port_of() {
    local base
    case $1 in
        sales) base=$SALES_PORT ;; stock) base=$STOCK_PORT ;; factory) base=$FACTORY_PORT ;;
        notifier) base=$NOTIFIER_PORT ;; retry) base=$RETRY_PORT ;;
        legacy-factory) base=$LEGACY_FACTORY_PORT ;; open-data) base=$OPEN_DATA_PORT ;;
        sms-gateway) base=$SMS_GATEWAY_PORT ;;
    esac
    printf '%s\n' "$((base + 100 * ($2 - 1)))"
}

# inst_name SERVICE K: the instance's name for pid files and logs (sales, sales.2, ...).
inst_name() { if [ "$2" = 1 ]; then printf '%s\n' "$1"; else printf '%s.%s\n' "$1" "$2"; fi; }

# pid_alive NAME: true when RUN/pids/NAME.pid names a live process running BIN/<program of NAME>.
pid_alive() {
    local f=$PIDS/$1.pid pid exe
    [ -f "$f" ] || return 1
    pid=$(cat "$f")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    exe=${exe% (deleted)}
    [ "$exe" = "$(readlink -f "$BIN/$(prog_of "$1")")" ]
}

# stop_pid NAME: SIGTERM, up to 15 s for a clean exit, then SIGKILL.
stop_pid() {
    local name=$1 pid i
    if pid_alive "$name"; then
        pid=$(cat "$PIDS/$name.pid")
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name did not stop within 15 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        say "stopped $name"
    fi
    rm -f "$PIDS/$name.pid"
}

# start_bg NAME ARG...: starts BIN/NAME ARG... in its own session, with the variables in
# the array START_ENV added to its environment and its output appended to its log; inside
# the network namespace NETNS_PATH when NAME is NETNS_INSTANCE (nsenter execs the program,
# so the pid is still the program's).
START_ENV=()
DEV_BROKER_ENV=()
start_bg() {
    local name=$1; shift
    local pid i wrap=()
    [ "$name" != "${NETNS_INSTANCE:-}" ] || wrap=(nsenter --net="$NETNS_PATH" --)
    # The settings go through the environment of a subshell that execs the program, never
    # through a command line (env VAR=... would show the admin token in ps for a moment).
    (
        [ ${#START_ENV[@]} -eq 0 ] || export "${START_ENV[@]}"
        exec setsid "${wrap[@]}" "$BIN/$(prog_of "$name")" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null
    ) &
    pid=$!
    echo "$pid" >"$PIDS/$name.pid"
    # $! is the subshell's pid until it and setsid have exec'd the program: wait for that, so that
    # pid_alive, which checks what the pid runs, is not fooled by the moment in between.
    for ((i = 0; i < 50; i++)); do
        pid_alive "$name" && return 0
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
}

# settings_of NAME: what NAME gets from the caller's environment beyond RUN/env (the
# pass-through variables above), one VAR=VALUE a line, sorted; empty for most programs.
# Kept in SETTINGS/NAME when NAME starts: a difference on the next `up` restarts NAME. The
# *_URL and *_PORT that RUN/env exports are left out: a shell that sourced RUN/env is no
# reason for a restart (the ports are compared through RUN/env itself).
settings_of() {
    {
        case $1 in
        notifier)
            # the key's digest only: a changed key restarts the notifier, the key stays out
            env | grep -E '^(BULLETIN|SIGNUP)_' | grep -v '^BULLETIN_SOURCE_KEY=' || true
            [ -z "$FEED_KEY" ] ||
                echo "BULLETIN_SOURCE_KEY_SHA256=$(printf '%s' "$FEED_KEY" | sha256sum | cut -d' ' -f1)"
            env | grep -E '^(SMS_RATE|SMS_STATUS_CALLBACK_URL)=' || true
            if [ $REAL_SMS = 1 ]; then
                # the token only as a digest: a new one restarts the notifier, and the
                # settings file does not hold it
                echo "SMS_GATEWAY_URL=$SMS_URL"
                echo "SMS_ACCOUNT_SID=$SMS_SID"
                echo "SMS_FROM=$SMS_SENDER"
                echo "SMS_AUTH_TOKEN_SHA256=$(printf '%s' "$SMS_TOKEN" | sha256sum | cut -d' ' -f1)"
            fi ;;
        open-data)
            echo "OPEN_DATA_TZ=$OPEN_DATA_TZ_EFFECTIVE"
            env | grep '^OPEN_DATA_' | grep -Ev '^OPEN_DATA_(URL|PORT)=' || true ;;
        sms-gateway) env | grep '^SMS_GATEWAY_' | grep -Ev '^SMS_GATEWAY_(URL|PORT)=' || true ;;
        legacy-factory)
            env | grep -E '^(LEGACY_FACTORY_|FACTORY_DELAY_MS=)' |
                grep -Ev '^LEGACY_FACTORY_(URL|PORT|ID|REQUESTER|GROUP_ID)=' || true ;;
        factory)
            echo "FACTORY_CALLBACK_URL=$FACTORY_CALLBACK"
            env | grep -E '^LEGACY_FACTORY_(ID|REQUESTER|GROUP_ID)=' || true ;;
        esac
    } | LC_ALL=C sort -u
}

pg_up() {
    [ -n "$PGBIN" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql (run make deps)"
    mkdir -p "$PGDIR"
    chown "$(pg_owner)" "$PGDIR"
    chmod 700 "$PGDIR"
    as_pg test -w "$PGDIR" ||
        die "user $(pg_owner) cannot write $PGDIR: put the checkout where $(pg_owner) can reach it, or set RUN_DIR"
    if [ ! -f "$PGDIR/data/PG_VERSION" ]; then
        say "initialising PostgreSQL in $PGDIR/data"
        as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U "$(pg_owner)" --auth-local=peer \
            --auth-host=scram-sha-256 --no-instructions >"$LOGS/initdb.log" 2>&1 ||
            die "initdb failed: see $LOGS/initdb.log"
    fi
    if ! as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
        touch "$LOGS/postgres.log"; chown "$(pg_owner)" "$LOGS/postgres.log"
        as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$LOGS/postgres.log" -w -t 30 \
            -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1" start >/dev/null ||
            die "PostgreSQL did not start: see $LOGS/postgres.log"
        say "started PostgreSQL on 127.0.0.1:$PGPORT"
    fi
    # The application's role and database, created once. The password only guards the
    # loopback listener of a development server.
    as_pg "$PGBIN/psql" -h "$PGDIR" -p "$PGPORT" -d postgres -qAt -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
SELECT 'CREATE ROLE dozen LOGIN PASSWORD ''dozen''' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dozen')\gexec
SELECT 'CREATE DATABASE dozen OWNER dozen' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'dozen')\gexec
SQL
}

# own_bootstrap: true when KAFKA_BOOTSTRAP is the address this stack itself wrote into
# RUN/env for its own broker (the dev broker, or the Apache Kafka broker of KAFKA=apache):
# a shell that sourced RUN/env passes it back, and that is no request for an external
# cluster. The broker RUN/env was written for is recorded there as DOZEN_BROKER.
own_bootstrap() {
    local own kind
    [ -f "$RUN/env" ] || return 1
    own=$(sed -n 's/^export KAFKA_BOOTSTRAP=//p' "$RUN/env")
    kind=$(sed -n 's/^export DOZEN_BROKER=//p' "$RUN/env")
    [ -n "$own" ] && [ "$KAFKA_BOOTSTRAP" = "$own" ] && { [ "$kind" = dev ] || [ "$kind" = apache ] || [ "$kind" = cluster ]; }
}

broker_up() {
    if [ -n "${KAFKA_BOOTSTRAP:-}" ] && own_bootstrap; then
        say "KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP is this stack's own broker (from $RUN/env), not an external cluster"
        unset KAFKA_BOOTSTRAP
    fi
    if [ -n "${KAFKA_BOOTSTRAP:-}" ]; then
        BROKER_KIND=external
        stop_pid devbroker
        BOOTSTRAP=$KAFKA_BOOTSTRAP
        say "using Kafka at $BOOTSTRAP"
        return
    fi
    if [ "${KAFKA:-}" = cluster ]; then
        # Three Apache Kafka nodes (tools/kafka cluster), data under RUN_DIR/kafka-cluster.
        stop_pid devbroker
        [ ! -f "$RUN/kafka.managed" ] || apache_down
        local out
        out=$(KAFKA_CLUSTER_DIR="$RUN/kafka-cluster" "$ROOT/tools/kafka/kafka.sh" cluster up) ||
            die "the Kafka cluster did not start: see $RUN/kafka-cluster/node-*/kafka.log"
        BOOTSTRAP=$(printf '%s\n' "$out" | tail -n 1)
        BROKER_KIND=cluster
        touch "$RUN/kafka-cluster.managed"
        export TOPIC_REPLICATION_FACTOR=${TOPIC_REPLICATION_FACTOR:-3}
        export TOPIC_MIN_INSYNC_REPLICAS=${TOPIC_MIN_INSYNC_REPLICAS:-2}
        say "Apache Kafka cluster at $BOOTSTRAP (topics: replication $TOPIC_REPLICATION_FACTOR, min.insync.replicas $TOPIC_MIN_INSYNC_REPLICAS)"
        return
    fi
    [ ! -f "$RUN/kafka-cluster.managed" ] || cluster_down
    if [ "${KAFKA:-}" = apache ]; then
        # A real Apache Kafka broker (tools/kafka), data under RUN_DIR/kafka; `down` stops it.
        stop_pid devbroker
        local out
        out=$(KAFKA_DATA_DIR="$RUN/kafka" "$ROOT/tools/kafka/kafka.sh" up) ||
            die "Apache Kafka did not start: see $RUN/kafka/kafka.log"
        BOOTSTRAP=$(printf '%s\n' "$out" | tail -n 1)
        BROKER_KIND=apache
        touch "$RUN/kafka.managed"
        say "Apache Kafka at $BOOTSTRAP"
        return
    fi
    [ ! -f "$RUN/kafka.managed" ] || apache_down
    BROKER_KIND=dev
    if ! pid_alive devbroker; then
        if [ -s "$RUN/devbroker.addr" ]; then
            # It ran before and is gone (killed, or the machine restarted): what it held is lost.
            say "WARNING: the dev broker ($(cat "$RUN/devbroker.addr")) is not running any more."
            say "WARNING: starting a new one: it keeps topics in memory only, so every topic starts"
            say "WARNING: EMPTY (events that were not consumed yet are gone); every service restarts with it."
        fi
        rm -f "$RUN/devbroker.addr"
        START_ENV=()
        start_bg devbroker --addr-file "$RUN/devbroker.addr"
    fi
    local i
    for ((i = 0; i < 100; i++)); do
        [ -s "$RUN/devbroker.addr" ] && break
        pid_alive devbroker || die "the dev broker exited: see $LOGS/devbroker.log"
        sleep 0.1
    done
    [ -s "$RUN/devbroker.addr" ] || die "the dev broker printed no address: see $LOGS/devbroker.log"
    BOOTSTRAP=$(cat "$RUN/devbroker.addr")
    # The mock cluster holds an empty fetch for the whole fetch.wait.max.ms (500 ms by
    # default) instead of answering when data arrives: ask for shorter waits.
    DEV_BROKER_ENV=(KAFKA_FETCH_WAIT_MAX_MS="${KAFKA_FETCH_WAIT_MAX_MS:-20}")
    say "dev broker (in-memory) at $BOOTSTRAP"
}

admin_token() {
    if [ -n "${ADMIN_TOKEN:-}" ]; then
        echo "$ADMIN_TOKEN"
    else
        if [ ! -s "$RUN/admin_token" ]; then
            (umask 077; od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$RUN/admin_token")
        fi
        cat "$RUN/admin_token"
    fi
}

# With a real SMS provider (REAL_SMS, above): its account, token and sender, all required,
# for the notifier.
sms_provider() {
    [ $REAL_SMS = 1 ] || return 0
    local v
    for v in SMS_ACCOUNT_SID SMS_AUTH_TOKEN SMS_FROM; do
        [ -n "${!v:-}" ] || die "SMS_GATEWAY_URL names a real SMS provider: set $v too"
    done
    SMS_SID=$SMS_ACCOUNT_SID
    SMS_TOKEN=$SMS_AUTH_TOKEN
    SMS_SENDER=$SMS_FROM
}

wait_healthy() {
    local name=$1 url=$2 deadline=$((SECONDS + UP_TIMEOUT))
    until curl -fsS -m 2 "$url/readyz" >/dev/null 2>&1; do
        pid_alive "$name" || die "$name exited: see $LOGS/$name.log"
        [ $SECONDS -lt $deadline ] || die "$name not ready after ${UP_TIMEOUT}s ($(curl -sS -m 2 "$url/readyz" 2>&1 | head -c 300)): see $LOGS/$name.log"
        sleep 0.2
    done
}

cmd_up() {
    local svc
    mkdir -p "$RUN" "$LOGS" "$PIDS" "$SETTINGS"
    chmod 755 "$RUN"
    for svc in dozen-migrate "${SERVICES[@]}"; do
        [ -x "$BIN/$svc" ] || die "$BIN/$svc is missing: run make"
    done
    pg_up
    broker_up

    local token database_url env_new callback=()
    token=$(admin_token)
    sms_provider
    # The stand-in POSTs status callbacks to the notifier on loopback; a real provider
    # needs a public URL, so only the caller can give one.
    if [ -n "${SMS_STATUS_CALLBACK_URL:-}" ]; then
        callback=(SMS_STATUS_CALLBACK_URL="$SMS_STATUS_CALLBACK_URL")
    elif [ $REAL_SMS = 0 ]; then
        callback=(SMS_STATUS_CALLBACK_URL="http://127.0.0.1:$NOTIFIER_PORT")
    fi
    database_url="postgresql://dozen:dozen@127.0.0.1:$PGPORT/dozen"
    DATABASE_URL=$database_url "$BIN/dozen-migrate" --dir "$ROOT/migrations" \
        --seed "$ROOT/migrations/seed.sql" >>"$LOGS/migrate.log" 2>&1 ||
        die "migrations failed: see $LOGS/migrate.log"

    env_new=$(cat <<EOF
export DATABASE_URL=$database_url
export KAFKA_BOOTSTRAP=$BOOTSTRAP
export DOZEN_BROKER=$BROKER_KIND
export ADMIN_TOKEN=$token
export SALES_URL=http://127.0.0.1:$SALES_PORT
export STOCK_URL=http://127.0.0.1:$STOCK_PORT
export FACTORY_URL=http://127.0.0.1:$FACTORY_PORT
export RETRY_URL=http://127.0.0.1:$RETRY_PORT
export LEGACY_FACTORY_URL=$LEGACY_TARGET
export NOTIFIER_URL=http://127.0.0.1:$NOTIFIER_PORT
export OPEN_DATA_URL=http://127.0.0.1:$OPEN_DATA_PORT
export SMS_GATEWAY_URL=$SMS_URL
export DOZEN_INSTANCES=$INSTANCES
EOF
)
    # Services started with other settings (a new broker address, another port) or from an
    # older binary are restarted; the others are left running.
    local restart=0
    [ "$env_new" = "$(cat "$RUN/env" 2>/dev/null)" ] || restart=1
    # RUN/env holds the admin token and the database password: readable by its owner only.
    (umask 077; printf '%s\n' "$env_new" >"$RUN/env.new")
    chmod 600 "$RUN/env.new"
    mv -f "$RUN/env.new" "$RUN/env"

    START_ENV=(DATABASE_URL="$database_url" KAFKA_BOOTSTRAP="$BOOTSTRAP"
               ADMIN_TOKEN="$token" LOG_LEVEL="${LOG_LEVEL:-info}" INSTANCE_ID="$INSTANCE"
               SALES_PORT="$SALES_PORT" STOCK_PORT="$STOCK_PORT" FACTORY_PORT="$FACTORY_PORT"
               LEGACY_FACTORY_PORT="$LEGACY_FACTORY_PORT" RETRY_PORT="$RETRY_PORT"
               LEGACY_FACTORY_URL="${LEGACY_TARGET:-http://127.0.0.1:$LEGACY_FACTORY_PORT}"
               FACTORY_CALLBACK_URL="${FACTORY_CALLBACK:-http://127.0.0.1:$FACTORY_PORT}"
               NOTIFIER_PORT="$NOTIFIER_PORT" OPEN_DATA_PORT="$OPEN_DATA_PORT"
               SMS_GATEWAY_PORT="$SMS_GATEWAY_PORT" OPEN_DATA_TZ="$OPEN_DATA_TZ_EFFECTIVE"
               BULLETIN_SOURCE_URL="${FEED_URL:-http://127.0.0.1:$OPEN_DATA_PORT/daily}"
               BULLETIN_SOURCE_FORMAT="$FEED_FORMAT"
               BULLETIN_SOURCE_KEY="$FEED_KEY"
               SMS_GATEWAY_URL="${SMS_URL:-http://127.0.0.1:$SMS_GATEWAY_PORT}"
               SMS_ACCOUNT_SID="$SMS_SID" SMS_AUTH_TOKEN="$SMS_TOKEN" SMS_FROM="$SMS_SENDER"
               "${callback[@]}" "${DEV_BROKER_ENV[@]}")
    [ -z "${SMS_RATE:-}" ] || START_ENV+=(SMS_RATE="$SMS_RATE")
    local settings base_env=("${START_ENV[@]}") name k n port
    # Instances above INSTANCES (a smaller N than last time) go first.
    for svc in "${SCALED[@]}"; do
        for ((k = INSTANCES + 1; k <= 9; k++)); do
            [ ! -f "$PIDS/$svc.$k.pid" ] || stop_pid "$svc.$k"
        done
    done
    for svc in "${SERVICES[@]}"; do
        if skipped "$svc"; then
            pid_alive "$svc" && stop_pid "$svc" && say "stopped $svc (the real one is configured)"
            continue
        fi
        n=1
        [[ " ${SCALED[*]} " != *" $svc "* ]] || n=$INSTANCES
        for ((k = 1; k <= n; k++)); do
            name=$(inst_name "$svc" "$k")
            port=$(port_of "$svc" "$k")
            settings=$(settings_of "$svc"; [ "$n" = 1 ] || echo "INSTANCE_ID=$k"
                       [ "$name" != "${NETNS_INSTANCE:-}" ] ||
                           printf 'NETNS_PATH=%s\nNETNS_DATABASE_URL_SHA256=%s\n' "$NETNS_PATH" \
                                  "$(printf '%s' "$NETNS_DATABASE_URL" | sha256sum | cut -d' ' -f1)")
            if pid_alive "$name" && { [ $restart = 1 ] || [ "$BIN/$svc" -nt "$PIDS/$name.pid" ] ||
                                      [ "$settings" != "$(cat "$SETTINGS/$name" 2>/dev/null)" ]; }; then
                stop_pid "$name"
            fi
            if ! pid_alive "$name"; then
                printf '%s\n' "$settings" >"$SETTINGS/$name"
                START_ENV=("${base_env[@]}")
                if ((n > 1)); then
                    # Its own port and name; the factory's callback comes back to it.
                    START_ENV+=("$(printf '%s' "$svc" | tr 'a-z-' 'A-Z_')_PORT=$port"
                                INSTANCE_ID="$k")
                    [ "$svc" != factory ] || START_ENV+=(FACTORY_CALLBACK_URL="http://127.0.0.1:$port")
                fi
                [ "$name" != "${NETNS_INSTANCE:-}" ] || START_ENV+=(DATABASE_URL="$NETNS_DATABASE_URL")
                start_bg "$name"
                say "started $name (pid $(cat "$PIDS/$name.pid"), port $port)"
            fi
        done
    done
    START_ENV=("${base_env[@]}")
    local where=
    for svc in "${SERVICES[@]}"; do
        skipped "$svc" && continue
        n=1
        [[ " ${SCALED[*]} " != *" $svc "* ]] || n=$INSTANCES
        for ((k = 1; k <= n; k++)); do
            wait_healthy "$(inst_name "$svc" "$k")" "http://127.0.0.1:$(port_of "$svc" "$k")"
            ((k == 1)) || where+="  $(printf '%-9s' "$svc") instance $k: http://127.0.0.1:$(port_of "$svc" "$k")   (INSTANCE_ID=$k, log $LOGS/$svc.$k.log)"$'\n'
        done
    done

    cat <<EOF

dozen is up.
  sales     http://127.0.0.1:$SALES_PORT   (POST /orders, GET /orders/{id})
  stock     http://127.0.0.1:$STOCK_PORT   (GET /inventory, GET|PUT /inventory/{sku})
  factory   http://127.0.0.1:$FACTORY_PORT   (GET /production-orders; callbacks at $FACTORY_CALLBACK/deliveries/{id})
  notifier  http://127.0.0.1:$NOTIFIER_PORT   (POST /subscribers, POST /bulletins/run, GET /bulletins/{date})
  retry     http://127.0.0.1:$RETRY_PORT   (GET /stats)
  legacy factory             $LEGACY_TARGET   ($([ "$LEGACY_TARGET" = "$LEGACY_STANDIN_URL" ] && echo "stand-in: GET /admin/manufactures, POST /admin/mode" || echo "the real one, from LEGACY_FACTORY_URL"))
  open data (stand-in)       http://127.0.0.1:$OPEN_DATA_PORT   (GET /daily, POST /admin/mode)
  SMS gateway                $SMS_URL   ($( [ $REAL_SMS = 1 ] && echo "a real provider, not started here" || echo "stand-in: GET /messages, GET /admin/stats"))
  SMS rate                   ${SMS_RATE:-1} a second from $SMS_SENDER   (SMS_RATE; 1 is a long code's)
  kafka     $BOOTSTRAP
  postgres  $database_url
  logs      $LOGS/        settings: . $RUN/env
EOF
    if [ -n "$where" ]; then
        printf '\n%s instances of each service (instance 1 as above, INSTANCE_ID=1):\n%s' "$INSTANCES" "$where"
    fi
}

# Stops the Kafka cluster that `KAFKA=cluster up` started (its data stays).
cluster_down() {
    KAFKA_CLUSTER_DIR="$RUN/kafka-cluster" "$ROOT/tools/kafka/kafka.sh" cluster down >/dev/null 2>&1 &&
        say "stopped the Kafka cluster (data kept in $RUN/kafka-cluster)"
    rm -f "$RUN/kafka-cluster.managed"
}

# Stops the Apache Kafka broker that `KAFKA=apache up` started (its data stays).
apache_down() {
    KAFKA_DATA_DIR="$RUN/kafka" "$ROOT/tools/kafka/kafka.sh" down >/dev/null &&
        say "stopped Apache Kafka (data kept in $RUN/kafka)"
    rm -f "$RUN/kafka.managed"
}

cmd_down() {
    local i
    local k
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
        for ((k = 9; k >= 2; k--)); do
            [ ! -f "$PIDS/${SERVICES[$i]}.$k.pid" ] || stop_pid "${SERVICES[$i]}.$k"
        done
        stop_pid "${SERVICES[$i]}"
    done
    stop_pid devbroker
    [ ! -f "$RUN/kafka.managed" ] || apache_down
    [ ! -f "$RUN/kafka-cluster.managed" ] || cluster_down
    if [ -n "$PGBIN" ] && [ -f "$PGDIR/data/PG_VERSION" ] &&
       as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
        as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null
        say "stopped PostgreSQL (data kept in $PGDIR/data)"
    fi
}

cmd_logs() {
    [ -d "$LOGS" ] || die "no logs yet under $LOGS: run make up"
    exec tail -n 50 -F "$LOGS"/*.log
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    logs) cmd_logs ;;
    *) die "usage: stack.sh up|down|logs" ;;
esac
