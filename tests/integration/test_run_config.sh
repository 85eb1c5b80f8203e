#!/usr/bin/env bash
# reprobox run: the image config and docker's flags — env, workdir, user, entrypoint and cmd.
. "$(dirname "$0")/lib.sh"
L=$(fixture busybox)

# Entrypoint / Cmd, exactly as docker run combines them.
expect_status "Entrypoint + Cmd" 0 rbx run "oci:$L:entrypoint"
assert_eq "Entrypoint + Cmd" "$OUT" "entry default"
expect_status "args replace Cmd" 0 rbx run "oci:$L:entrypoint" x y
assert_eq "args replace Cmd" "$OUT" "entry x y"
expect_status "--entrypoint clears Cmd" 0 rbx run --entrypoint /bin/sh "oci:$L:entrypoint" -c 'echo via-sh'
assert_eq "--entrypoint with args" "$OUT" "via-sh"
expect_status "--entrypoint alone" 0 rbx run --entrypoint /bin/pwd "oci:$L:entrypoint"
assert_eq "--entrypoint alone drops Cmd" "$OUT" "/"
expect_status "--entrypoint ''" 0 rbx run --entrypoint "" "oci:$L:entrypoint" echo z
assert_eq "--entrypoint '' then args" "$OUT" "z"

# Environment: image Env, --env-file, -e (KEY=VALUE and KEY from here), PATH default kept.
printf '# comment\nFROM_FILE=f\nGREETING=from-file\n' >"$RBX_TMP/env"
export FROM_CALLER=caller-value
expect_status "env" 0 rbx run --env-file "$RBX_TMP/env" -e GREETING=from-flag -e FROM_CALLER -e NOT_SET_HERE \
    "oci:$L:env" sh -c 'echo "$FOO|$GREETING|$FROM_FILE|$FROM_CALLER|${NOT_SET_HERE-unset}|$PATH"'
assert_eq "env precedence" "$OUT" "from-image|from-flag|f|caller-value|unset|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
expect_status "clean environment" 0 rbx run "oci:$L" env
assert_not_contains "no host variables leak" "$OUT" "FROM_CALLER"
assert_contains "HOSTNAME set" "$OUT" "HOSTNAME=reprobox"
printf 'BAD KEY=1\n' >"$RBX_TMP/badenv"
expect_status "malformed env file" 125 rbx run --env-file "$RBX_TMP/badenv" "oci:$L" true
assert_one_error_line "malformed env file"
assert_contains "env file error names file:line" "$ERR" "badenv:1:"

# Working directory: -w, the image's WorkingDir, created when missing (and reported).
expect_status "-w" 0 rbx run -w /tmp "oci:$L" pwd
assert_eq "-w /tmp" "$OUT" "/tmp"
expect_status "missing WorkingDir is created" 0 rbx run --report "$RBX_TMP/wd.json" "oci:$L:workdir" sh -c 'pwd; id -un'
assert_eq "WorkingDir + User" "$OUT" "/srv/app
app"
assert_eq "report: cwd_created" "$(jq -r .command.cwd_created "$RBX_TMP/wd.json")" "true"
assert_contains "report notes the created dir" "$(jq -r '.notes[]' "$RBX_TMP/wd.json")" "/srv/app"
expect_status "-w relative is refused" 125 rbx run -w relative "oci:$L" true
assert_one_error_line "-w relative"

# User: names and ids of the image's /etc/passwd and /etc/group.
expect_status "-u 1000" 0 rbx run -u 1000 "oci:$L" sh -c 'id -u; id -g'
assert_eq "-u 1000 -> uid and its passwd gid" "$OUT" "1000
1000"
expect_status "-u app" 0 rbx run -u app "oci:$L" id
# As docker (moby's getUser): the supplementary groups are the /etc/group memberships.
assert_eq "-u app with supplementary groups" "$OUT" "uid=1000(app) gid=1000(app) groups=100(users)"
expect_status "User 1000:100 from the image" 0 rbx run "oci:$L:user" sh -c 'id -u; id -g'
assert_eq "image User uid:gid" "$OUT" "1000
100"
expect_status "-u 4242:4242 (not in passwd)" 0 rbx run -u 4242:4242 "oci:$L" sh -c 'id -u; id -g'
assert_eq "numeric ids used as they are" "$OUT" "4242
4242"
expect_status "-u root" 0 rbx run -u root "oci:$L" sh -c 'id -u; echo $HOME'
assert_eq "-u root with HOME" "$OUT" "0
/root"
expect_status "unknown user" 125 rbx run -u nosuchuser "oci:$L" true
assert_one_error_line "unknown user"
assert_contains "unknown user named" "$ERR" "nosuchuser"

# The report.
expect_status "report" 3 rbx run --report "$RBX_TMP/r.json" -e SECRET=hunter2 "oci:$L" sh -c 'echo one; echo two >&2; exit 3'
R="$RBX_TMP/r.json"
assert_eq "report exit_code" "$(jq -r .result.exit_code "$R")" "3"
assert_eq "report status" "$(jq -r .result.status "$R")" "exited"
assert_eq "report argv" "$(jq -c .command.argv "$R")" '["sh","-c","echo one; echo two >&2; exit 3"]'
assert_eq "report stdout tail" "$(jq -c .stdout_tail "$R")" '["one"]'
assert_eq "report stderr tail" "$(jq -c .stderr_tail "$R")" '["two"]'
assert_contains "report env names" "$(jq -c .command.env_names "$R")" '"SECRET"'
assert_not_contains "report has no env values" "$(cat "$R")" "hunter2"
assert_contains "report manifest digest" "$(jq -r .image.manifest_digest "$R")" "sha256:"
check "report durations" jq -e '.durations_ms | (.unpack >= 0 and .setup > 0 and .run > 0)' "$R"
expect_status "report of a long output keeps 64 lines" 0 rbx run --report "$R" "oci:$L" sh -c 'seq 1 1000'
assert_eq "64 lines kept" "$(jq '.stdout_tail | length' "$R")" "64"
assert_eq "the last line" "$(jq -r '.stdout_tail[-1]' "$R")" "1000"

finish
