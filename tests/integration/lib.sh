# lib.sh — what the integration tests share. Source it first; it gives each test a private
# store and scratch dir, assertions that name what failed, and the rootless set-up.
#
# Environment (set by ctest): REPROBOX (the binary), RBX_FIXTURES (images from
# scripts/make-fixtures.sh), RBX_SOURCE_DIR, RBX_BUILD_DIR.

set -u
: "${REPROBOX:?REPROBOX must name the reprobox binary}"
: "${RBX_FIXTURES:?RBX_FIXTURES must name the fixtures dir}"
: "${RBX_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"

RBX_TEST_NAME=$(basename "$0" .sh)
RBX_TMP=$(mktemp -d "/tmp/rbx-${RBX_TEST_NAME}.XXXXXX")
chmod 755 "$RBX_TMP"
RBX_ROOT="$RBX_TMP/store"
RBX_FAILS=0
RBX_PASSES=0
RBX_CLEANUPS=()

rbx_cleanup() {
    local c
    for c in "${RBX_CLEANUPS[@]}"; do eval "$c" || true; done
    # Files a rootless run made may be owned by subordinate ids: let reprobox or root remove them.
    rm -rf "$RBX_TMP" 2>/dev/null || true
}
trap rbx_cleanup EXIT

# Run the test's own reprobox with its private store.
rbx() { "$REPROBOX" --root "$RBX_ROOT" "$@"; }

# run_capture CMD...: run, keep status in $STATUS, stdout in $OUT, stderr in $ERR.
run_capture() {
    local o="$RBX_TMP/.out" e="$RBX_TMP/.err"
    "$@" >"$o" 2>"$e" </dev/null
    STATUS=$?
    OUT=$(cat "$o")
    ERR=$(cat "$e")
}

ok() { RBX_PASSES=$((RBX_PASSES + 1)); echo "ok - $*"; }
not_ok() {
    RBX_FAILS=$((RBX_FAILS + 1))
    echo "not ok - $*"
    [ -n "${OUT:-}" ] && printf '  stdout: %s\n' "${OUT:0:2000}"
    [ -n "${ERR:-}" ] && printf '  stderr: %s\n' "${ERR:0:2000}"
    return 0
}

# check NAME CONDITION...: evaluate a test expression, report it.
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}

assert_eq() { # NAME GOT WANT
    if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1: got '$2', want '$3'"; fi
}
assert_contains() { # NAME HAYSTACK NEEDLE
    if [[ "$2" == *"$3"* ]]; then ok "$1"; else not_ok "$1: '$3' not in output"; fi
}
assert_not_contains() {
    if [[ "$2" != *"$3"* ]]; then ok "$1"; else not_ok "$1: '$3' unexpectedly in output"; fi
}
# expect_status NAME WANT CMD...: run CMD capturing output and check its exit status.
expect_status() {
    local name=$1 want=$2
    shift 2
    run_capture "$@"
    if [ "$STATUS" == "$want" ]; then ok "$name (exit $want)"; else not_ok "$name: exit $STATUS, want $want"; fi
}
# One clear line: stderr is exactly one line starting with "reprobox: error: ".
assert_one_error_line() { # NAME
    local lines
    lines=$(printf '%s\n' "$ERR" | grep -c .)
    if [ "$lines" == 1 ] && [[ "$ERR" == "reprobox: error: "* ]]; then ok "$1: one clear line"
    else not_ok "$1: want one 'reprobox: error:' line, got $lines lines"; fi
}

skip() { echo "skip: $*"; exit 77; }

fixture() { # NAME -> path of a fixture image layout, or skip
    local p="$RBX_FIXTURES/$1"
    [ -e "$p" ] || skip "fixture $1 missing (run scripts/make-fixtures.sh)"
    echo "$p"
}

# What a throwaway run that changed nothing leaves for the next store open to sweep: runs/<id>,
# unlocked, holding only an empty upper/ and the overlay's work/ (rbx_run_dir_leave).
left_for_sweep() { # PATH
    local d=$1
    [ -d "$d" ] && [ ! -e "$d.lock" ] && [ -d "$d/upper" ] && [ -z "$(ls -A "$d/upper")" ] || return 1
    [ -z "$(find "$d" -mindepth 1 -not -path "$d/upper" -not -path "$d/work" -not -path "$d/work/*" -print -quit)" ]
}

# The store must hold no half-written entry: no temp dirs, no unlocked run dirs but those left
# for the sweep.
assert_store_clean() { # NAME
    local leftovers="" p
    if [ -d "$RBX_ROOT" ]; then
        while IFS= read -r p; do
            [ -n "$p" ] || continue
            left_for_sweep "$p" || leftovers+="$p "
        done < <(find "$RBX_ROOT" -mindepth 2 -maxdepth 2 \( -path "$RBX_ROOT/tmp/*" -o -path "$RBX_ROOT/runs/*" \) 2>/dev/null)
    fi
    if [ -z "$leftovers" ]; then ok "$1: store clean"; else not_ok "$1: store holds $leftovers"; fi
}

# ---- rootless ----------------------------------------------------------------------------------
# An unprivileged user made by the test (with subordinate ids, as a distribution gives a new
# user), and copies of the binary and fixtures it can read.
RBX_TEST_USER=rbxtest

rootless_setup() {
    [ "$(id -u)" == 0 ] || skip "rootless set-up needs root to create the test user"
    if ! id "$RBX_TEST_USER" >/dev/null 2>&1; then
        useradd --create-home --shell /bin/sh "$RBX_TEST_USER" 2>/dev/null ||
            skip "cannot create user $RBX_TEST_USER"
    fi
    grep -q "^$RBX_TEST_USER:" /etc/subuid 2>/dev/null || echo "$RBX_TEST_USER:200000:65536" >>/etc/subuid
    grep -q "^$RBX_TEST_USER:" /etc/subgid 2>/dev/null || echo "$RBX_TEST_USER:200000:65536" >>/etc/subgid
    RBX_RL_DIR="$RBX_TMP/rootless"
    mkdir -p "$RBX_RL_DIR/bin"
    cp "$REPROBOX" "$RBX_RL_DIR/bin/reprobox"
    chmod 755 "$RBX_RL_DIR" "$RBX_RL_DIR/bin" "$RBX_RL_DIR/bin/reprobox"
    # What the test user owns: its store and its XDG dirs.
    install -d -o "$RBX_TEST_USER" -m 755 "$RBX_RL_DIR/user"
    RBX_RL_HOME=$(getent passwd "$RBX_TEST_USER" | cut -d: -f6)
    RBX_RL_ROOT="$RBX_RL_DIR/user/store"
    RBX_CLEANUPS+=("as_user_raw '$RBX_RL_DIR/bin/reprobox' --root '$RBX_RL_ROOT' cache prune --all >/dev/null 2>&1")
}

# Copy a fixture where the test user can read it; prints the new path.
rootless_fixture() { # NAME
    local src
    src=$(fixture "$1") || exit 77
    if [ ! -e "$RBX_RL_DIR/fixtures/$1" ]; then
        mkdir -p "$RBX_RL_DIR/fixtures"
        cp -a "$src" "$RBX_RL_DIR/fixtures/$1"
        chmod -R a+rX "$RBX_RL_DIR/fixtures"
    fi
    echo "$RBX_RL_DIR/fixtures/$1"
}

as_user_raw() {
    local q="" a
    for a in "$@"; do q+=" $(printf '%q' "$a")"; done
    su -s /bin/sh "$RBX_TEST_USER" -c "cd /tmp && env -i HOME='$RBX_RL_HOME' PATH=/usr/bin:/bin XDG_CACHE_HOME='$RBX_RL_DIR/user/xdg' $q"
}
# rbx_rootless ARGS...: the test user's reprobox with its own store.
rbx_rootless() { as_user_raw "$RBX_RL_DIR/bin/reprobox" --root "$RBX_RL_ROOT" "$@"; }

# Close the test: print the tally, exit non-zero on any failure.
finish() {
    echo "$RBX_PASSES passed, $RBX_FAILS failed"
    [ "$RBX_FAILS" == 0 ]
    exit $?
}
