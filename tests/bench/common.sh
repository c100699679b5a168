# shellcheck shell=bash disable=SC2034  # what is set here is read by the scripts that source it
# common.sh: what the benches (bench.sh, restock.sh) share: messages, checks, a private
# stack on free ports in its own RUN_DIR that is stopped and removed however the script
# ends, bounded runs of a load generator, CPU ticks from /proc and the machine's description.
#
# Sourced, not run, by a script that has set ROOT (the checkout), BIN (the programs) and
# BENCH_NAME (the prefix of its error messages), and `set -eEuo pipefail`. Sourcing installs
# the EXIT/ERR/INT/TERM traps. A script may define bench_on_failure, which the clean-up calls
# (before stopping the stack) when the script exits with status 2; it sees RUN.
#
# Settings (environment), read by bench_stack_up:
#   BENCH_KAFKA_BOOTSTRAP  a Kafka broker to use instead of a private dev broker
#   BENCH_KAFKA=apache     a private Apache Kafka broker (tools/kafka) on free ports, with its
#                          data in RUN_DIR, instead of the dev broker

say() { printf '%s\n' "$*"; }
die() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; exit 2; }

# is_int VALUE MIN MAX: true when VALUE is a decimal integer in MIN..MAX.
is_int() { [[ "$1" =~ ^[0-9]{1,6}$ ]] && [ "$((10#$1))" -ge "$2" ] && [ "$((10#$1))" -le "$3" ]; }

# need_tools TOOL...: dies naming the first one that is not installed.
need_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool is not installed (make bench-deps installs it)"
    done
}

# What tools/stack.sh starts (its SERVICES line), and the port variables it reads (its
# NAME=${NAME:-number} lines), read from the script so that a program added there is
# covered here too: every port gets a free one, so that a bench never meets `make up`.
read -r -a STACK_SERVICES < <(sed -n 's/^SERVICES=(\(.*\))$/\1/p' "$ROOT/tools/stack.sh")
mapfile -t STACK_PORT_VARS < <(sed -n 's/^\([A-Z_]*PORT\)=\${\1:-[0-9]*}$/\1/p' "$ROOT/tools/stack.sh")

# need_programs: dies naming the first program of the stack that is not built.
need_programs() {
    local prog
    if [ "${#STACK_SERVICES[@]}" -eq 0 ] || [ "${#STACK_PORT_VARS[@]}" -eq 0 ]; then
        die "could not read SERVICES and the *_PORT variables from tools/stack.sh"
    fi
    for prog in devbroker dozen-migrate "${STACK_SERVICES[@]}"; do
        [ -x "$BIN/$prog" ] || die "$BIN/$prog is missing: run make"
    done
}

# ---------------------------------------------------------------------------------------
# The private stack, and its removal however the script ends

RUN=
LOADGEN_PID=
STACK_ENV=()
DATABASE_URL=
SALES_URL=
STOCK_URL=
FACTORY_URL=
LEGACY_FACTORY_URL=
BROKER=
BROKER_TEXT=

stack() { env -i "${STACK_ENV[@]}" "$ROOT/tools/stack.sh" "$@"; }

bench_cleanup() {
    local rc=$?
    trap - EXIT ERR INT TERM
    if [ -n "$LOADGEN_PID" ]; then
        kill -TERM "$LOADGEN_PID" 2>/dev/null || true
        wait "$LOADGEN_PID" 2>/dev/null || true
    fi
    # STACK_ENV names RUN as RUN_DIR: without it stack.sh would act on the default .run/.
    if [ -n "$RUN" ] && [ -d "$RUN" ] && [ "${#STACK_ENV[@]}" -gt 0 ]; then
        if [ "$rc" = 2 ] && declare -F bench_on_failure >/dev/null; then
            bench_on_failure || true
        fi
        stack down >/dev/null 2>&1 || say "$BENCH_NAME: stack.sh down failed; processes of $RUN may be left"
        rm -rf "$RUN"
    elif [ -n "$RUN" ]; then
        rm -rf "$RUN"
    fi
    exit "$rc"
}
trap bench_cleanup EXIT
trap 'printf "%s: a command failed (line %s)\n" "$BENCH_NAME" "$LINENO" >&2; exit 2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# bounded SECONDS OUT CMD...: runs CMD with its output in OUT and kills it after SECONDS. It
# runs in the background so that a signal to this script ends the wait at once; the clean-up
# then stops it (timeout passes the signal on to CMD).
bounded() {
    local secs=$1 out=$2 rc=0
    shift 2
    timeout -k 5 "$secs" "$@" >"$out" 2>&1 </dev/null &
    LOADGEN_PID=$!
    wait "$LOADGEN_PID" || rc=$?
    LOADGEN_PID=
    return "$rc"
}

# free_ports N: N distinct free loopback ports on one line.
free_ports() {
    /usr/bin/python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()' "$1"
}

# bench_stack_up VAR=VALUE...: starts a private stack (tools/stack.sh up) in a new temporary
# RUN, every program on a free port and with a clean environment: the defaults plus the
# given variables. Sets RUN, STACK_ENV, each of STACK_PORT_VARS (PGPORT, SALES_PORT, …),
# DATABASE_URL, SALES_URL, STOCK_URL, FACTORY_URL, LEGACY_FACTORY_URL, BROKER (the bootstrap
# address) and BROKER_TEXT (what the broker is, for reports).
bench_stack_up() {
    local -a ports
    local i kport kcport where=
    case ${BENCH_KAFKA:-} in
    '' | apache) ;;
    *) die "BENCH_KAFKA: must be apache or unset, not '$BENCH_KAFKA'" ;;
    esac
    read -r -a ports < <(free_ports $((${#STACK_PORT_VARS[@]} + 2)))
    RUN=$(mktemp -d -t "dozen-$BENCH_NAME.XXXXXX")
    STACK_ENV=(PATH="$PATH" HOME="${HOME:-/root}" LANG=C.UTF-8 RUN_DIR="$RUN" DOZEN_BIN="$BIN")
    for ((i = 0; i < ${#STACK_PORT_VARS[@]}; i++)); do
        printf -v "${STACK_PORT_VARS[$i]}" '%s' "${ports[$i]}"
        STACK_ENV+=("${STACK_PORT_VARS[$i]}=${ports[$i]}")
        where+=" ${STACK_PORT_VARS[$i]}=${ports[$i]}"
    done
    kport=${ports[$i]}
    kcport=${ports[$((i + 1))]}
    STACK_ENV+=(LOG_LEVEL=info UP_TIMEOUT=60 "$@")
    if [ -n "${BENCH_KAFKA_BOOTSTRAP:-}" ]; then
        STACK_ENV+=(KAFKA_BOOTSTRAP="$BENCH_KAFKA_BOOTSTRAP")
    elif [ "${BENCH_KAFKA:-}" = apache ]; then
        STACK_ENV+=(KAFKA=apache KAFKA_PORT="$kport" KAFKA_CONTROLLER_PORT="$kcport")
    fi

    say "== starting a private stack in $RUN:$where"
    stack up >"$RUN/stack-up.log" 2>&1 || { cat "$RUN/stack-up.log" >&2; die "stack.sh up failed"; }
    # The env file stack.sh wrote (URLs and an address: no spaces), read in a subshell.
    # shellcheck source=/dev/null
    read -r DATABASE_URL SALES_URL STOCK_URL FACTORY_URL LEGACY_FACTORY_URL BROKER < <(
        . "$RUN/env" && printf '%s %s %s %s %s %s\n' "$DATABASE_URL" "$SALES_URL" "$STOCK_URL" \
            "$FACTORY_URL" "$LEGACY_FACTORY_URL" "$KAFKA_BOOTSTRAP")
    [ -n "$BROKER" ] || die "stack.sh wrote no usable $RUN/env"
    if [ -n "${BENCH_KAFKA_BOOTSTRAP:-}" ]; then
        BROKER_TEXT="Kafka at $BROKER"
    elif [ "${BENCH_KAFKA:-}" = apache ]; then
        BROKER_TEXT="Apache Kafka (private, single node, tools/kafka)"
    else
        BROKER_TEXT="dev broker (in-memory)"
    fi
    export PGCONNECT_TIMEOUT=10
}

# The KAFKA_<PROPERTY> variables of this environment (librdkafka properties for the
# services, see libcommon/kafka.c) as VAR=VALUE words; not KAFKA_BOOTSTRAP, not the
# variables of tools/kafka/kafka.sh. For scripts that pass them on to the stack.
kafka_props_env() {
    local var
    for var in $(compgen -e); do
        case $var in
        KAFKA_BOOTSTRAP | KAFKA_PORT | KAFKA_CONTROLLER_PORT | KAFKA_DATA_DIR | KAFKA_LOG_DIR | \
        KAFKA_HEAP_OPTS | KAFKA_JVM_OPTS | KAFKA_*_TIMEOUT) ;;
        KAFKA_[A-Z0-9]*) printf '%s=%s\n' "$var" "${!var}" ;;
        esac
    done
}

psql_q() { psql "$DATABASE_URL" -X -qAt -v ON_ERROR_STOP=1 "$@"; }

# ---------------------------------------------------------------------------------------
# CPU ticks from /proc

NCPU=$(nproc)

# proc_ticks PID [all]: utime+stime of PID (plus its reaped children's with "all"), 0 if gone.
proc_ticks() {
    local stat f
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    read -r -a f <<<"${stat##*) }" # f[0] is field 3 (state): utime is f[11]
    if [ "${2:-}" = all ]; then echo $((f[11] + f[12] + f[13] + f[14])); else echo $((f[11] + f[12])); fi
}

# pg_ticks: PostgreSQL's: the postmaster, its live children and the children it reaped.
pg_ticks() {
    local pm total child
    pm=$(head -n 1 "$RUN/pg/data/postmaster.pid" 2>/dev/null) || { echo 0; return; }
    total=$(proc_ticks "$pm" all)
    for child in $(ps -o pid= --ppid "$pm"); do
        total=$((total + $(proc_ticks "$child")))
    done
    echo "$total"
}

# children_ticks: CPU of the children this script has reaped (a load generator run through
# bounded() is reaped by timeout, and timeout by this shell, so it counts once it exited).
children_ticks() {
    local stat f
    stat=$(cat "/proc/$$/stat")
    read -r -a f <<<"${stat##*) }"
    echo $((f[13] + f[14]))
}

# machine_ticks: "total idle" over all CPUs (idle includes iowait).
machine_ticks() {
    local cpu user nice system idle iowait irq softirq steal rest
    read -r cpu user nice system idle iowait irq softirq steal rest </proc/stat
    echo "$((user + nice + system + idle + iowait + irq + softirq + steal)) $((idle + iowait))"
}

# bench_machine: sets WHEN (now, UTC) and MACHINE (CPUs, memory, kernel).
bench_machine() {
    local model
    WHEN=$(date -u '+%Y-%m-%d %H:%M UTC')
    model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
    MACHINE="$NCPU × ${model:-unknown CPU}, $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
}

# Prints the results (SETUP, the REPORT file, PROBLEMS) and, unless DOC is "none", records
# them in DOC right after the MARKER line, newest first. Exits 1 when there were problems.
# Uses the caller's WHEN, MACHINE, CODE, BROKER_TEXT, KAFKA_PROPS and RUN.
bench_report_and_record() {
    say ""
    say "== results ($WHEN; $MACHINE; $CODE)"
    say "$SETUP"
    say ""
    cat "$REPORT"
    if [ "${#PROBLEMS[@]}" -gt 0 ]; then
        say ""
        say "PROBLEMS:"
        printf '  - %s\n' "${PROBLEMS[@]}"
    fi

    if [ "$DOC" != none ]; then
        {
            say ""
            say "#### Run of $WHEN: $BROKER_TEXT, ${KAFKA_PROPS[*]:-librdkafka defaults}"
            say ""
            say "Machine: $MACHINE. Code: $CODE. $SETUP."
            say ""
            cat "$REPORT"
            if [ "${#PROBLEMS[@]}" -gt 0 ]; then
                say ""
                say "Problems in this run:"
                say ""
                printf -- '- %s\n' "${PROBLEMS[@]}"
            fi
        } >"$RUN/entry.md"
        # Newest first, right after the marker; the rest of the file stays as it is.
        awk -v marker="$MARKER" -v entry="$RUN/entry.md" '
            { print }
            $0 == marker && !done { while ((getline line < entry) > 0) print line; done = 1 }
        ' "$DOC" >"$RUN/doc.md"
        cat "$RUN/doc.md" >"$DOC"
        say ""
        say "recorded in $DOC"
    fi

    [ "${#PROBLEMS[@]}" -eq 0 ] || exit 1
}
