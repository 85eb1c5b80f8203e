#!/usr/bin/env bash
# reprobox test recipes/examples/: the postmortem's nine failures reproduced and diagnosed, and
# their fixes passing, against the api and postgres fixture images; JUnit and JSON reports.
. "$(dirname "$0")/lib.sh"
fixture api >/dev/null || exit 77
fixture postgres >/dev/null || exit 77
EXAMPLES="$RBX_SOURCE_DIR/recipes/examples"
export RBX_FIXTURES

run_capture rbx replay "$EXAMPLES/01-express-missing-fixed.json"
if [[ $ERR == *"has no pods"* ]]; then skip "this build's sandbox has no pods"; fi

expect_status "reprobox test recipes/examples/" 0 \
    rbx test --junit "$RBX_TMP/junit.xml" --report "$RBX_TMP/reports" "$EXAMPLES/"
echo "$OUT"
n=$(find "$EXAMPLES" -maxdepth 1 -name '*.json' | wc -l)
assert_eq "one line per recipe, then the tally" "$(printf '%s\n' "$OUT" | wc -l)" "$((n + 1))"
assert_eq "closing line" "$(printf '%s\n' "$OUT" | tail -n1)" "$n passed, 0 failed"
for class in 01-express-missing 02-jwt-secret-missing 03-workdir-missing 04-prisma-client-location \
    05-pnpm-not-found 06-migration-hangs 07-pnpm-symlinks 08-provider-mismatch 09-migration-never-run; do
    assert_contains "$class passes" "$OUT" "PASS $class ("
    assert_contains "$class-fixed passes" "$OUT" "PASS $class-fixed ("
done

# JUnit: every recipe a testcase, none failed.
check "junit.xml written" test -s "$RBX_TMP/junit.xml"
assert_contains "junit testsuite" "$(cat "$RBX_TMP/junit.xml")" "tests=\"$n\" failures=\"0\" errors=\"0\""
assert_eq "junit testcases" "$(grep -c '<testcase ' "$RBX_TMP/junit.xml")" "$n"

# The reports carry the diagnosis each failure class expects.
want_kind() { # RECIPE KIND
    local r="$RBX_TMP/reports/$1.json"
    assert_eq "$1: report diagnosis" "$(jq -r '.diagnosis.kind' "$r" 2>/dev/null)" "$2"
}
want_kind 01-express-missing module-not-found
want_kind 02-jwt-secret-missing env-missing
want_kind 03-workdir-missing workdir-missing
want_kind 04-prisma-client-location module-not-found
want_kind 05-pnpm-not-found command-not-found
want_kind 06-migration-hangs hang-no-output
want_kind 07-pnpm-symlinks module-not-found
want_kind 08-provider-mismatch provider-mismatch
want_kind 09-migration-never-run table-missing
want_kind 09-migration-never-run-fixed null
r="$RBX_TMP/reports/09-migration-never-run-fixed.json"
assert_eq "fixed: products answered 200" "$(jq -r '.steps[1].http[1].status' "$r")" "200"
assert_eq "fixed: migrate exit 0" "$(jq -r '.steps[0].exit_code' "$r")" "0"
assert_eq "fixed: db ready" "$(jq -r '.services[0].ready.ready' "$r")" "true"
assert_not_contains "reports carry no env values" "$(cat "$RBX_TMP"/reports/*.json)" "staging-only-not-a-secret"

# reprobox replay: the summary leads with the diagnosis line; exit 1 for a failed step.
expect_status "replay of a failing recipe exits 1" 1 rbx replay "$EXAMPLES/05-pnpm-not-found.json"
assert_eq "summary's first line" "$(printf '%s\n' "$OUT" | head -n1)" \
    'migrate: exit 127 — command-not-found: "pnpm" is not in the image (PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)'
assert_contains "a hint follows" "$OUT" "  hint: "
assert_contains "the process's output, prefixed" "$ERR" "migrate    | ./scripts/run-migrations.sh: line 5: pnpm: not found"
expect_status "replay of a working recipe exits 0" 0 rbx replay --report "$RBX_TMP/r.json" "$EXAMPLES/05-pnpm-not-found-fixed.json"
assert_eq "report schema" "$(jq -r .schema "$RBX_TMP/r.json")" "reprobox.replay/v1"
assert_eq "report succeeded" "$(jq -r .succeeded "$RBX_TMP/r.json")" "true"

# A failing expectation fails the test run, with the first unmet expectation on its line.
sed 's/"exit": 127/"exit": 2/' "$EXAMPLES/05-pnpm-not-found.json" >"$RBX_TMP/wrong.json"
expect_status "an unmet expectation fails" 1 rbx test "$RBX_TMP/wrong.json"
assert_contains "FAIL line names it" "$OUT" "FAIL 05-pnpm-not-found: migrate: exit: expected 2, got 127"
assert_contains "tally" "$OUT" "0 passed, 1 failed"

assert_store_clean "after replays"
finish
