#!/usr/bin/env bash
# kafka.sh: runs a real single-node Apache Kafka broker (KRaft, broker+controller) on 127.0.0.1
# for tests and local runs; the jars come from Maven Central through tools/kafka/pom.xml.
#
#   tools/kafka/kafka.sh up            fetch the jars if needed, format the storage if new,
#                                      start the broker, wait until it answers metadata
#                                      requests; the last stdout line is the bootstrap address
#   tools/kafka/kafka.sh down          SIGTERM, wait for the exit (then SIGKILL); data is kept
#   tools/kafka/kafka.sh stop-broker   the same as down
#   tools/kafka/kafka.sh start-broker  the same as up (same data)
#   tools/kafka/kafka.sh status        exit 0 and print the address if running and answering
#   tools/kafka/kafka.sh address       print the bootstrap address (whether running or not)
#   tools/kafka/kafka.sh fetch         only fetch the jars; print the libs directory
#   tools/kafka/kafka.sh topics ARGS   org.apache.kafka.tools.TopicCommand against this broker,
#                                      e.g. topics --create --topic t --partitions 3
#   tools/kafka/kafka.sh tool CLASS ARGS   any main class of the Kafka jars
#   tools/kafka/kafka.sh cluster up    a three-node KRaft cluster (each node broker and
#                                      controller) on 127.0.0.1; prints its bootstrap list
#   tools/kafka/kafka.sh cluster down  stop all three (data is kept)
#   tools/kafka/kafka.sh cluster stop ID | start ID   stop (SIGTERM) or start node ID (1-3)
#   tools/kafka/kafka.sh cluster status   one line per node; exit 0 when all three answer
#   tools/kafka/kafka.sh cluster address  print the bootstrap list
#
# Cluster node i listens on 127.0.0.1:KAFKA_CLUSTER_PORT+i-1 (PLAINTEXT: 19192, 19193,
# 19194) and 127.0.0.1:KAFKA_CLUSTER_CONTROLLER_PORT+i-1 (controller: 19292..19294); its
# data is KAFKA_CLUSTER_DIR/node-i (<repo>/.run/kafka-cluster/node-i). Internal topics have
# replication 3 and min.insync.replicas 2, as topics for dozen should
# (TOPIC_REPLICATION_FACTOR=3, TOPIC_MIN_INSYNC_REPLICAS=2).
#
# Settings (environment):
#   KAFKA_PORT (19092)             PLAINTEXT listener on 127.0.0.1
#   KAFKA_CONTROLLER_PORT (19093)  KRaft controller listener on 127.0.0.1
#   KAFKA_DATA_DIR (<repo>/.run/kafka)  server.properties, kafka.pid, logs/ (the log.dirs)
#   KAFKA_LOG_DIR (= KAFKA_DATA_DIR)    where kafka.log goes
#   DOZEN_KAFKA_VERSION (pom.xml's kafka.version, 4.4.0)  which Apache Kafka release to run,
#                                  e.g. 3.9.1; 4.x logs through log4j2, 3.x through reload4j
#   DOZEN_CACHE (~/.cache/dozen)   the jars go to $DOZEN_CACHE/kafka-<version>/libs
#   KAFKA_HEAP_OPTS (-Xms256m -Xmx512m), KAFKA_JVM_OPTS (-XX:+UseSerialGC and a few more)
#   KAFKA_UP_TIMEOUT (90 s), KAFKA_DOWN_TIMEOUT (60 s), KAFKA_FETCH_TIMEOUT (900 s),
#   KAFKA_TOOL_TIMEOUT (120 s: topics, tool)
set -euo pipefail
set +m

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
POM=$HERE/pom.xml
TEMPLATE=$HERE/server.properties.in
LOG4J=$HERE/log4j.properties
LOG4J2=$HERE/log4j2.properties

PORT=${KAFKA_PORT:-19092}
CPORT=${KAFKA_CONTROLLER_PORT:-19093}
DATA=${KAFKA_DATA_DIR:-$ROOT/.run/kafka}
LOGDIR=${KAFKA_LOG_DIR:-$DATA}
CACHE=${DOZEN_CACHE:-${HOME:?HOME is not set}/.cache/dozen}
UP_TIMEOUT=${KAFKA_UP_TIMEOUT:-90}
DOWN_TIMEOUT=${KAFKA_DOWN_TIMEOUT:-60}
FETCH_TIMEOUT=${KAFKA_FETCH_TIMEOUT:-900}
TOOL_TIMEOUT=${KAFKA_TOOL_TIMEOUT:-120}
HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}
JVM_OPTS=${KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError -XX:-UsePerfData -Djava.awt.headless=true}
# Short-lived tools (storage format, topic admin).
TOOL_OPTS="-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData -Djava.awt.headless=true"
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
LOG_ROTATE_BYTES=$((64 * 1024 * 1024))

ADDR=127.0.0.1:$PORT
# One node alone (`up`); cluster_node sets these for a node of the cluster.
NODE_ID=1
VOTERS=
REPLICATION=1
MIN_ISR=1
CLUSTER_SIZE=3
CLUSTER_PORT=${KAFKA_CLUSTER_PORT:-19192}
CLUSTER_CPORT=${KAFKA_CLUSTER_CONTROLLER_PORT:-19292}
CLUSTER_DIR=${KAFKA_CLUSTER_DIR:-$ROOT/.run/kafka-cluster}

say() { printf 'kafka: %s\n' "$*" >&2; }
die() { printf 'kafka: %s\n' "$*" >&2; exit 1; }

# Monotonic-enough clock in whole seconds (bash builtin, no fork).
now() { printf '%(%s)T' -1; }

check_uint() {
    local name=$1 value=$2 min=$3 max=$4
    if ! [[ "$value" =~ ^[0-9]{1,6}$ ]] || ((10#$value < min || 10#$value > max)); then
        die "$name must be an integer from $min to $max (got '$value')"
    fi
}

check_settings() {
    check_uint KAFKA_PORT "$PORT" 1 65535
    check_uint KAFKA_CONTROLLER_PORT "$CPORT" 1 65535
    [ "$((10#$PORT))" != "$((10#$CPORT))" ] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"
    PORT=$((10#$PORT)); CPORT=$((10#$CPORT)); ADDR=127.0.0.1:$PORT
    check_uint KAFKA_CLUSTER_PORT "$CLUSTER_PORT" 1 65000
    check_uint KAFKA_CLUSTER_CONTROLLER_PORT "$CLUSTER_CPORT" 1 65000
    CLUSTER_PORT=$((10#$CLUSTER_PORT)); CLUSTER_CPORT=$((10#$CLUSTER_CPORT))
    if ((CLUSTER_PORT < CLUSTER_CPORT + CLUSTER_SIZE && CLUSTER_CPORT < CLUSTER_PORT + CLUSTER_SIZE)); then
        die "KAFKA_CLUSTER_PORT and KAFKA_CLUSTER_CONTROLLER_PORT ranges overlap"
    fi
    check_uint KAFKA_UP_TIMEOUT "$UP_TIMEOUT" 1 3600
    check_uint KAFKA_DOWN_TIMEOUT "$DOWN_TIMEOUT" 1 3600
    check_uint KAFKA_FETCH_TIMEOUT "$FETCH_TIMEOUT" 1 86400
    check_uint KAFKA_TOOL_TIMEOUT "$TOOL_TIMEOUT" 1 86400
    local name value
    for name in DATA LOGDIR CACHE CLUSTER_DIR; do
        value=${!name}
        [ -n "$value" ] || die "$name is empty"
        # Commas split log.dirs, backslashes are escapes in .properties files, colons split
        # the Java class path.
        case $value in
            *,* | *\\* | *:* | *$'\n'*) die "unsupported character (',', '\\', ':' or newline) in path '$value'" ;;
        esac
    done
}

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"; }

# Absolute, existing directories for DATA and LOGDIR.
prepare_dirs() {
    mkdir -p "$DATA" "$LOGDIR" || die "cannot create $DATA or $LOGDIR"
    DATA=$(cd "$DATA" && pwd)
    LOGDIR=$(cd "$LOGDIR" && pwd)
    PIDFILE=$DATA/kafka.pid
    PROPS=$DATA/server.properties
    LOGFILE=$LOGDIR/kafka.log
    KLOGDIRS=$DATA/logs
}

# Serialises up and down on one data directory (fd 8), bounded.
lock_data() {
    exec 8>"$DATA/.kafka.sh.lock" || die "cannot open $DATA/.kafka.sh.lock"
    flock -w "$((UP_TIMEOUT + DOWN_TIMEOUT))" 8 ||
        die "another kafka.sh holds $DATA/.kafka.sh.lock for too long"
}

kafka_version() {
    local v=${DOZEN_KAFKA_VERSION:-}
    if [ -z "$v" ]; then
        v=$(sed -n 's:.*<kafka\.version>\([^<]*\)</kafka\.version>.*:\1:p' "$POM" | head -n 1)
        [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "cannot read kafka.version from $POM"
    fi
    [[ "$v" =~ ^[0-9]{1,2}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] ||
        die "DOZEN_KAFKA_VERSION must be a release like 4.4.0 or 3.9.1 (got '$v')"
    printf '%s\n' "$v"
}

# log_setup VERSION: sets LOG_PROFILE (the pom's profile for that release's logging binding),
# and the java options that point its logging at our configuration: log4j2 since Kafka 4.0,
# reload4j before. log_opts LEVEL broker|tool prints them.
log_setup() {
    if ((10#${1%%.*} >= 4)); then
        LOG_PROFILE=log4j2
    else
        LOG_PROFILE=reload4j
    fi
}
log_opts() {
    local level=$1 out=System.out
    [ "$2" = broker ] || out=System.err
    if [ "$LOG_PROFILE" = log4j2 ]; then
        [ "$out" = System.out ] && out=SYSTEM_OUT || out=SYSTEM_ERR
        printf '%s\n' "-Dlog4j2.configurationFile=file:$LOG4J2"
    else
        printf '%s\n' "-Dlog4j.configuration=file:$LOG4J"
    fi
    printf '%s\n' "-Ddozen.kafka.log.level=$level" "-Ddozen.kafka.log.target=$out"
}

# fetch_libs: sets LIBS to a complete jar directory, downloading it when absent or made from
# another pom. The jars go into a temporary directory that is renamed when complete; the
# stamp file inside it (the pom's sha256) marks it as complete.
fetch_libs() {
    local version base stamp tmp old
    version=$(kafka_version)
    base=$CACHE/kafka-$version
    LIBS=$base/libs
    KAFKA_VERSION=$version
    log_setup "$version"
    stamp=$( { cat "$POM"; echo "$version $LOG_PROFILE"; } | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$LIBS/.pom.sha256" 2>/dev/null)" = "$stamp" ]; then
        return 0
    fi
    need mvn "install Maven (apt-get install maven)"
    mkdir -p "$base" || die "cannot create $base"
    exec 9>"$base/.lock" || die "cannot open $base/.lock"
    flock -w "$FETCH_TIMEOUT" 9 || die "another download into $base takes too long"
    if [ "$(cat "$LIBS/.pom.sha256" 2>/dev/null)" = "$stamp" ]; then
        exec 9>&-
        return 0
    fi
    # Leftovers of interrupted downloads (nobody else holds the lock now).
    rm -rf "$base"/libs.tmp.* "$base"/libs.old.*
    tmp=$(mktemp -d "$base/libs.tmp.XXXXXX") || die "cannot create a directory in $base"
    chmod 755 "$tmp"
    say "fetching Apache Kafka $version jars with Maven into $LIBS"
    if ! timeout "$FETCH_TIMEOUT" mvn -q -B -Dstyle.color=never -f "$POM" \
            -Dkafka.version="$version" -P "$LOG_PROFILE" \
            dependency:copy-dependencies -DincludeScope=runtime \
            -DoutputDirectory="$tmp" >"$tmp.log" 2>&1; then
        tail -n 30 "$tmp.log" >&2 || true
        rm -rf "$tmp" "$tmp.log"
        die "Maven could not fetch the Kafka jars (see above)"
    fi
    rm -f "$tmp.log"
    if [ ! -f "$tmp/kafka_2.13-$version.jar" ] || [ ! -f "$tmp/kafka-tools-$version.jar" ]; then
        rm -rf "$tmp"
        die "Maven ran but kafka_2.13-$version.jar or kafka-tools-$version.jar is missing"
    fi
    printf '%s\n' "$stamp" >"$tmp/.pom.sha256"
    if [ -e "$LIBS" ]; then
        old=$base/libs.old.$$
        mv "$LIBS" "$old" && rm -rf "$old"
    fi
    mv "$tmp" "$LIBS" || die "cannot rename $tmp to $LIBS"
    exec 9>&-
    say "jars ready in $LIBS"
}

# pid_ours: true when the pid file names a live JVM running kafka.Kafka on our properties.
# Sets PID.
pid_ours() {
    PID=
    [ -f "$PIDFILE" ] || return 1
    PID=$(head -c 32 "$PIDFILE" 2>/dev/null | tr -d '[:space:]')
    [[ "$PID" =~ ^[0-9]{1,10}$ ]] || { PID=; return 1; }
    local cmd
    cmd=$( { tr '\0' ' ' <"/proc/$PID/cmdline"; } 2>/dev/null) || return 1
    [[ "$cmd" == *" kafka.Kafka $PROPS"* ]]
}

# answering: true when the broker returns metadata naming itself (broker NODE_ID at our
# address).
answering() {
    local out
    out=$(timeout 10 kcat -b "$ADDR" -L -t __dozen_probe -m 2 2>/dev/null) || return 1
    [[ "$out" == *"broker $NODE_ID at $ADDR"* ]]
}

port_in_use() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

log_tail() {
    if [ -f "$LOGFILE" ]; then
        printf -- '--- last lines of %s ---\n' "$LOGFILE" >&2
        tail -n "${1:-40}" "$LOGFILE" >&2 || true
        printf -- '---\n' >&2
    fi
}

render_props() {
    local text tmp
    text=$(<"$TEMPLATE") || die "cannot read $TEMPLATE"
    # Quoted replacements: bash 5.2 would otherwise expand '&' in them.
    text=${text//@KAFKA_PORT@/"$PORT"}
    text=${text//@KAFKA_CONTROLLER_PORT@/"$CPORT"}
    text=${text//@LOG_DIRS@/"$KLOGDIRS"}
    text=${text//@NODE_ID@/"$NODE_ID"}
    text=${text//@QUORUM_VOTERS@/"${VOTERS:-1@127.0.0.1:$CPORT}"}
    text=${text//@REPLICATION_FACTOR@/"$REPLICATION"}
    text=${text//@MIN_ISR@/"$MIN_ISR"}
    tmp=$PROPS.tmp.$$
    printf '%s\n' "$text" >"$tmp" || die "cannot write $tmp"
    mv "$tmp" "$PROPS" || die "cannot rename $tmp to $PROPS"
}

# A random Kafka cluster id: 16 random bytes in URL-safe base64 without padding. Like
# Kafka's own Uuid.randomUuid, never one that starts with '-': kafka-storage's argument
# parser would read "-t -Xy..." as a missing value and an unknown option (one run in 64
# failed that way).
cluster_id() {
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        [ "${id:0:1}" = - ] || break
    done
    printf '%s' "$id"
}

format_storage() {
    if [ -f "$KLOGDIRS/meta.properties" ]; then
        return 0
    fi
    mkdir -p "$KLOGDIRS" || die "cannot create $KLOGDIRS"
    local id=${CLUSTER_ID:-} out
    [ -n "$id" ] || id=$(cluster_id)
    say "formatting KRaft storage in $KLOGDIRS (cluster id $id)"
    # shellcheck disable=SC2086
    local logopts
    mapfile -t logopts < <(log_opts WARN tool)
    if ! out=$(timeout 120 "$JAVA" $TOOL_OPTS "${logopts[@]}" \
            -cp "$LIBS/*" kafka.tools.StorageTool format --cluster-id="$id" -c "$PROPS" 2>&1); then
        printf '%s\n' "$out" >&2
        die "formatting the storage in $KLOGDIRS failed"
    fi
    [ -f "$KLOGDIRS/meta.properties" ] || {
        printf '%s\n' "$out" >&2
        die "format ran but $KLOGDIRS/meta.properties is missing"
    }
}

rotate_log() {
    local size
    size=$(stat -c %s "$LOGFILE" 2>/dev/null) || return 0
    if ((size > LOG_ROTATE_BYTES)); then
        mv -f "$LOGFILE" "$LOGFILE.1" || true
    fi
}

# stop_broker: SIGTERM, up to DOWN_TIMEOUT for a clean exit, then SIGKILL.
stop_broker() {
    local deadline
    if pid_ours; then
        say "stopping the broker (pid $PID)"
        kill -TERM "$PID" 2>/dev/null || true
        deadline=$(($(now) + DOWN_TIMEOUT))
        while kill -0 "$PID" 2>/dev/null && (($(now) < deadline)); do sleep 0.2; done
        if kill -0 "$PID" 2>/dev/null; then
            say "no exit after ${DOWN_TIMEOUT}s, sending SIGKILL"
            kill -KILL "$PID" 2>/dev/null || true
            deadline=$(($(now) + 10))
            while kill -0 "$PID" 2>/dev/null && (($(now) < deadline)); do sleep 0.1; done
            ! kill -0 "$PID" 2>/dev/null || die "pid $PID survives SIGKILL"
        fi
    fi
    rm -f "$PIDFILE"
}

# wait_answering DEADLINE: until the broker answers; fails when it exits or time runs out.
wait_answering() {
    local deadline=$1
    while :; do
        if ! kill -0 "$PID" 2>/dev/null; then
            log_tail 60
            rm -f "$PIDFILE"
            die "the broker exited during start-up (log: $LOGFILE)"
        fi
        # A refused connection is cheap to see; kcat would wait its whole -m timeout.
        if port_in_use "$PORT" && answering; then
            return 0
        fi
        if (($(now) >= deadline)); then
            log_tail 60
            stop_broker
            die "the broker did not answer on $ADDR within ${UP_TIMEOUT}s; stopped it (log: $LOGFILE)"
        fi
        sleep 0.2
    done
}

# launch: writes the properties, formats the storage once and starts the JVM in the
# background (PID, the pid file); the caller waits for it to answer.
launch() {
    render_props
    format_storage
    rotate_log
    printf '\n[kafka.sh %(%F %T)T] starting Apache Kafka %s on %s (node %s)\n' -1 "$KAFKA_VERSION" "$ADDR" "$NODE_ID" >>"$LOGFILE"
    # A session of its own: the broker outlives this script and its terminal. It must not
    # inherit the lock descriptors (7, 8, 9), or it would hold the locks for its whole life.
    # shellcheck disable=SC2086
    local logopts
    mapfile -t logopts < <(log_opts INFO broker)
    setsid "$JAVA" $HEAP_OPTS $JVM_OPTS "${logopts[@]}" \
        -cp "$LIBS/*" kafka.Kafka "$PROPS" >>"$LOGFILE" 2>&1 </dev/null 7>&- 8>&- 9>&- &
    PID=$!
    printf '%s\n' "$PID" >"$PIDFILE"
}

cmd_up() {
    local start deadline elapsed
    need kcat "install kcat (apt-get install kcat)"
    need "$JAVA" "install a Java runtime, 11 or later (apt-get install openjdk-17-jre-headless)"
    prepare_dirs
    lock_data
    deadline=$(($(now) + UP_TIMEOUT))
    if pid_ours; then
        wait_answering "$deadline"
        say "already running (pid $PID)"
        printf '%s\n' "$ADDR"
        return 0
    fi
    rm -f "$PIDFILE"
    fetch_libs
    for p in "$PORT" "$CPORT"; do
        if port_in_use "$p"; then
            die "127.0.0.1:$p is already in use by another process (not this data dir's broker); set KAFKA_PORT / KAFKA_CONTROLLER_PORT or stop it"
        fi
    done
    start=$(date +%s%N)
    launch
    deadline=$(($(now) + UP_TIMEOUT))
    wait_answering "$deadline"
    elapsed=$((($(date +%s%N) - start) / 1000000))
    say "broker up on $ADDR in $((elapsed / 1000)).$(printf '%03d' $((elapsed % 1000)))s (pid $PID, data $DATA, log $LOGFILE)"
    printf '%s\n' "$ADDR"
}

cmd_down() {
    prepare_dirs
    lock_data
    if pid_ours; then
        stop_broker
        say "stopped"
    else
        rm -f "$PIDFILE"
        say "not running"
    fi
}

cmd_status() {
    prepare_dirs
    if ! pid_ours; then
        say "not running"
        return 1
    fi
    if ! answering; then
        say "running (pid $PID) but not answering on $ADDR"
        return 1
    fi
    printf '%s\n' "$ADDR"
}

# run_tool CLASS ARGS: a Kafka main class with the cached jars, killed after TOOL_TIMEOUT
# (exit 124); its stdout is the tool's.
run_tool() {
    need "$JAVA" "install a Java runtime, 11 or later"
    fetch_libs
    local class=$1 rc=0 logopts
    shift
    mapfile -t logopts < <(log_opts WARN tool)
    # shellcheck disable=SC2086
    timeout "$TOOL_TIMEOUT" "$JAVA" $TOOL_OPTS "${logopts[@]}" \
        -cp "$LIBS/*" "$class" "$@" || rc=$?
    if [ "$rc" = 124 ]; then
        die "$class did not finish within ${TOOL_TIMEOUT}s (is the broker up on $ADDR?)"
    fi
    return "$rc"
}

# ---- the three-node cluster

cluster_bootstrap() {
    local i list=
    for ((i = 0; i < CLUSTER_SIZE; i++)); do
        list+=${list:+,}127.0.0.1:$((CLUSTER_PORT + i))
    done
    printf '%s\n' "$list"
}

# cluster_node ID: makes node ID (1..3) of the cluster the one the functions above act on.
cluster_node() {
    local id=$1 i
    [[ "$id" =~ ^[1-3]$ ]] || die "cluster node id must be 1, 2 or 3 (got '$id')"
    NODE_ID=$id
    PORT=$((CLUSTER_PORT + id - 1))
    CPORT=$((CLUSTER_CPORT + id - 1))
    ADDR=127.0.0.1:$PORT
    VOTERS=
    for ((i = 1; i <= CLUSTER_SIZE; i++)); do
        VOTERS+=${VOTERS:+,}$i@127.0.0.1:$((CLUSTER_CPORT + i - 1))
    done
    REPLICATION=3
    MIN_ISR=2
    DATA=$CLUSTER_DIR/node-$id
    LOGDIR=$DATA
    prepare_dirs
}

# The cluster's id, made once and shared by the three nodes' storage.
cluster_id_file() {
    mkdir -p "$CLUSTER_DIR" || die "cannot create $CLUSTER_DIR"
    if [ ! -s "$CLUSTER_DIR/cluster.id" ]; then
        cluster_id >"$CLUSTER_DIR/cluster.id.tmp" && mv "$CLUSTER_DIR/cluster.id.tmp" "$CLUSTER_DIR/cluster.id"
    fi
    CLUSTER_ID=$(cat "$CLUSTER_DIR/cluster.id")
}

# cluster_start ID...: starts the nodes that are not running, then waits until each answers.
# A node alone cannot answer before a quorum (two of three) is up, so all start first.
cluster_start() {
    local id deadline started=()
    need kcat "install kcat (apt-get install kcat)"
    need "$JAVA" "install a Java runtime, 11 or later (apt-get install openjdk-17-jre-headless)"
    fetch_libs
    cluster_id_file
    for id in "$@"; do
        cluster_node "$id"
        if pid_ours; then continue; fi
        rm -f "$PIDFILE"
        for p in "$PORT" "$CPORT"; do
            port_in_use "$p" && die "127.0.0.1:$p is already in use by another process; set KAFKA_CLUSTER_PORT / KAFKA_CLUSTER_CONTROLLER_PORT or stop it"
        done
        launch
        started+=("$id")
    done
    deadline=$(($(now) + UP_TIMEOUT))
    for id in "$@"; do
        cluster_node "$id"
        pid_ours || die "node $id is not running"
        wait_answering "$deadline"
    done
    [ ${#started[@]} -eq 0 ] || say "cluster node(s) ${started[*]} up"
}

cmd_cluster() {
    local sub=${1:-} id rc=0
    exec 7>"$(mkdir -p "$CLUSTER_DIR" && cd "$CLUSTER_DIR" && pwd)/.cluster.lock" || die "cannot open the cluster lock"
    flock -w "$((UP_TIMEOUT + DOWN_TIMEOUT))" 7 || die "another kafka.sh cluster command takes too long"
    case $sub in
        up)
            cluster_start 1 2 3
            cluster_bootstrap
            ;;
        down)
            for id in 3 2 1; do cluster_node "$id"; stop_broker; done
            say "cluster stopped (data kept in $CLUSTER_DIR)"
            ;;
        stop)
            cluster_node "${2:-}"
            if pid_ours; then stop_broker; say "node $NODE_ID stopped"; else say "node $NODE_ID not running"; fi
            ;;
        start)
            cluster_node "${2:-}"
            cluster_start "$NODE_ID"
            ;;
        status)
            for id in 1 2 3; do
                cluster_node "$id"
                if pid_ours && answering; then
                    printf 'node %s %s up pid %s\n' "$id" "$ADDR" "$PID"
                elif pid_ours; then
                    printf 'node %s %s running pid %s, not answering\n' "$id" "$ADDR" "$PID"; rc=1
                else
                    printf 'node %s %s down\n' "$id" "$ADDR"; rc=1
                fi
            done
            return "$rc"
            ;;
        address) cluster_bootstrap ;;
        *) die "usage: kafka.sh cluster up|down|stop ID|start ID|status|address" ;;
    esac
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

main() {
    [ $# -ge 1 ] || usage
    local cmd=$1
    shift
    check_settings
    case $cmd in
        up | start-broker) cmd_up ;;
        down | stop-broker) cmd_down ;;
        status) cmd_status ;;
        address) printf '%s\n' "$ADDR" ;;
        fetch) fetch_libs; printf '%s\n' "$LIBS" ;;
        topics) run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$ADDR" "$@" ;;
        tool)
            [ $# -ge 1 ] || die "usage: kafka.sh tool CLASS [ARGS]"
            run_tool "$@"
            ;;
        cluster) cmd_cluster "$@" ;;
        -h | --help | help) usage ;;
        *) printf 'kafka: unknown command %s\n' "$cmd" >&2; usage ;;
    esac
}

main "$@"
