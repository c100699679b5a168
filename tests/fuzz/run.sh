#!/usr/bin/env bash
# Runs libFuzzer targets: tests/fuzz/run.sh BUILD SECONDS NAME...
#
# For each NAME: replays every file under tests/fuzz/crashers/NAME/ once (a regression
# input that crashes again fails the run), then fuzzes for SECONDS over a fresh copy of
# tests/fuzz/corpus/NAME/ under BUILD/fuzz-run/NAME/ (new inputs go there, never into the
# committed corpus). A crash, leak, UB report or timeout fails the run and leaves the input
# under BUILD/fuzz-run/NAME/artifacts/. Prints one line of figures per target.
set -u

build=$1
seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
failed=0

for name in "$@"; do
    bin=$build/fuzz/fuzz_$name
    work=$build/fuzz-run/$name
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/artifacts"
    if [ -d "$here/corpus/$name" ]; then
        cp -R "$here/corpus/$name/." "$work/corpus/"
    fi
    # A dictionary of the tokens its input is made of, when there is one (tests/fuzz/*.dict).
    dict=()
    case $name in
        order|event|feed|callback) dict=(-dict="$here/json.dict") ;;
        feed_datagokr) dict=(-dict="$here/xml.dict") ;;
        cron) dict=(-dict="$here/cron.dict") ;;
        retry|retry_record) dict=(-dict="$here/headers.dict") ;;
        form) dict=(-dict="$here/form.dict") ;;
    esac
    crashers=()
    if [ -d "$here/crashers/$name" ]; then
        while IFS= read -r -d '' f; do crashers+=("$f"); done \
            < <(find "$here/crashers/$name" -type f ! -name '*.md' -print0 | sort -z)
    fi
    if [ ${#crashers[@]} -gt 0 ]; then
        if ! "$bin" -artifact_prefix="$work/artifacts/" "${crashers[@]}" \
                >"$work/crashers.log" 2>&1; then
            echo "fuzz $name: a crasher fails again (log: $work/crashers.log)"
            tail -n 30 "$work/crashers.log"
            failed=1
            continue
        fi
    fi
    if ! "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 "${dict[@]}" \
            -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" \
            >"$work/fuzz.log" 2>&1; then
        echo "fuzz $name: FAILED (log: $work/fuzz.log, input under $work/artifacts/)"
        grep -E '^==[0-9]+==ERROR|runtime error|SUMMARY|Test unit written' "$work/fuzz.log" |
            head -n 10
        failed=1
        continue
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log")
    last=$(grep -E '^#[0-9]+' "$work/fuzz.log" | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
    printf 'fuzz %-14s ok: %ss, %s execs, cov %s, ft %s, corpus %s, crashers %d\n' \
        "$name" "$seconds" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${#crashers[@]}"
done
exit $failed
