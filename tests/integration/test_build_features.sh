#!/usr/bin/env bash
# test_build_features.sh — RUN mounts (cache, bind from the context and from a stage, tmpfs,
# secret), networks and entitlements, ADD of a local archive, COPY globs and dest rules, WORKDIR
# made by USER, a context symlink that points out, and the errors a build names with its line.
source "$(dirname "$0")/lib.sh"

BUSYBOX=$(fixture busybox) || exit 77
C="$RBX_TMP/ctx"
mkdir -p "$C/data" "$C/tree/sub" "$C/pkg/opt/tool"
echo "from the context" >"$C/data/file"
echo one >"$C/a.txt"
echo two >"$C/b.txt"
echo "nested" >"$C/tree/sub/n.txt"
echo "#!/bin/sh" >"$C/pkg/opt/tool/run.sh"
chmod 755 "$C/pkg/opt/tool/run.sh"
tar -C "$C/pkg" -czf "$C/bundle.tar.gz" opt
ln -s /etc "$C/outside"           # points out of the context
ln -s ../../etc/passwd "$C/data/up" # climbs out of it
printf s3cr3t >"$RBX_TMP/token"

build() { # DOCKERFILE-TEXT [FLAGS...]
    printf '%s\n' "$1" >"$C/Dockerfile"
    shift
    rbx build --progress plain --build-context "busybox=oci:$BUSYBOX" "$@" "$C"
}
inspect() { rbx run "oci:$RBX_TMP/img:t" "$@"; }

expect_status "mounts" 0 build 'FROM busybox AS seed
RUN mkdir /out && echo "from a stage" > /out/s
FROM busybox
RUN --mount=type=bind,source=data,target=/data cat /data/file > /from-bind
RUN --mount=type=bind,source=data,target=/data,rw sh -c "echo gone > /data/new; cat /data/file > /rw-bind"
RUN --mount=type=bind,from=seed,source=/out,target=/o cat /o/s > /from-stage
RUN --mount=type=tmpfs,target=/scratch sh -c "echo t > /scratch/f && cat /scratch/f > /from-tmpfs"
RUN --mount=type=cache,target=/cache,id=counter sh -c "echo x >> /cache/n; wc -l < /cache/n > /cache-count"
RUN --mount=type=secret,id=tok test "$(cat /run/secrets/tok)" = s3cr3t
RUN --mount=type=secret,id=tok,env=TOK,target=/tmp/tok sh -c "test \"\$TOK\" = s3cr3t && test -f /tmp/tok"' \
    --secret "id=tok,src=$RBX_TMP/token" -t "oci:$RBX_TMP/img:t"
expect_status "bind, stage, tmpfs, cache results" 0 inspect sh -c 'cat /from-bind /rw-bind /from-stage /from-tmpfs /cache-count'
assert_eq "every mount did its part" "$(echo $OUT)" "from the context from the context from a stage t 1"
expect_status "mount points left out of the layers" 0 inspect sh -c 'ls -d /data /o /scratch /cache /run /tmp/tok 2>&1; true'
assert_eq "no mount point, no secret, no /run made for it" "$(grep -c 'No such file' <<<"$OUT")" "6"
expect_status "the rw bind's writes went nowhere" 0 sh -c "ls '$C/data'"
assert_eq "the context is untouched" "$(echo $OUT)" "file up"

expect_status "the cache mount keeps its content" 0 build "$(cat "$C/Dockerfile")" --no-cache \
    --secret "id=tok,src=$RBX_TMP/token" -t "oci:$RBX_TMP/img:t"
expect_status "second count" 0 inspect cat /cache-count
assert_eq "the cache mount survived the build" "$OUT" "2"

expect_status "a required secret not given" 1 build 'FROM busybox
RUN --mount=type=secret,id=missing,required=true true'
assert_contains "names it" "$ERR" "secret missing: required and not given"
expect_status "ssh mounts refused" 1 build 'FROM busybox
RUN --mount=type=ssh true'
assert_contains "says why" "$ERR" "Dockerfile:2: RUN --mount=type=ssh true: RUN --mount=type=ssh is not supported"

expect_status "networks" 0 build 'FROM busybox
RUN --network=none ls /sys/class/net > /net-none
RUN ls /sys/class/net > /net-default' -t "oci:$RBX_TMP/img:t"
expect_status "network none" 0 inspect cat /net-none
assert_eq "RUN --network=none has loopback only" "$OUT" "lo"
expect_status "network host by default" 0 inspect cat /net-default
check "the default network is the host's" [ "$(wc -l <<<"$OUT")" -ge 1 ]
expect_status "--network none for the whole build" 0 build 'FROM busybox
RUN ls /sys/class/net > /n' --network none -t "oci:$RBX_TMP/img:t"
expect_status "none" 0 inspect cat /n
assert_eq "--network none reaches RUN" "$OUT" "lo"
expect_status "RUN --network=host needs an entitlement under --network none" 1 build 'FROM busybox
RUN --network=host true' --network none
assert_contains "names the entitlement" "$ERR" "--allow network.host"
expect_status "granted" 0 build 'FROM busybox
RUN --network=host true' --network none --allow network.host
expect_status "ADD of a URL without the network" 1 build 'FROM busybox
ADD http://127.0.0.1:9/x /x' --network none
assert_contains "says the network is off" "$ERR" "a URL needs the network"

# ADD of a URL, from a web server on loopback (busybox httpd), checked against --checksum.
mkdir -p "$RBX_TMP/www"
echo "downloaded" >"$RBX_TMP/www/file.txt"
SUM=$(sha256sum <"$RBX_TMP/www/file.txt" | cut -d' ' -f1)
for _ in 1 2 3 4 5; do
    PORT=$((20000 + RANDOM % 30000))
    busybox httpd -f -p "127.0.0.1:$PORT" -h "$RBX_TMP/www" &
    HTTPD=$!
    sleep 0.2
    kill -0 "$HTTPD" 2>/dev/null && break
done
RBX_CLEANUPS+=("kill $HTTPD 2>/dev/null")
expect_status "ADD a URL" 0 build "FROM busybox
ADD --checksum=sha256:$SUM http://127.0.0.1:$PORT/file.txt /dl/" -t "oci:$RBX_TMP/img:t"
expect_status "downloaded" 0 inspect sh -c 'cat /dl/file.txt; stat -c %a /dl/file.txt'
assert_eq "the file, mode 0600 as docker makes it" "$(echo $OUT)" "downloaded 600"
expect_status "ADD a URL with the wrong checksum" 1 build "FROM busybox
ADD --checksum=sha256:$(printf %064d 0) http://127.0.0.1:$PORT/file.txt /dl/"
assert_contains "digest mismatch" "$ERR" "digest mismatch"
kill "$HTTPD" 2>/dev/null

# On a terminal: each step's line is redrawn with its status, RUN's output tail under it.
if command -v script >/dev/null; then
    printf '%s\n' 'FROM busybox' 'RUN echo line1; echo line2' >"$C/Dockerfile"
    expect_status "a terminal" 0 script -qec "$REPROBOX --root $RBX_ROOT build --no-cache --build-context busybox=oci:$BUSYBOX $C" /dev/null
    assert_contains "the step line redrawn with its status" "$OUT" "RUN echo line1; echo line2  DONE"
    assert_contains "cursor moves, not new lines" "$OUT" $'\033[A'
fi

expect_status "ADD, COPY globs, dest rules, WORKDIR by USER" 0 build 'FROM busybox
ADD bundle.tar.gz /unpacked/
ADD --unpack=false bundle.tar.gz /kept/
COPY *.txt /globbed/
COPY a.txt /renamed.txt
COPY tree /tree-contents
COPY tree/ /tree-slash/
USER app
WORKDIR /home/app/work/deep' -t "oci:$RBX_TMP/img:t"
expect_status "results" 0 inspect sh -c 'ls /unpacked/opt/tool /kept /globbed /tree-contents /tree-slash; cat /renamed.txt; stat -c "%u:%g" /home/app/work /home/app/work/deep; test -x /unpacked/opt/tool/run.sh && echo exec'
assert_eq "archive extracted, copied as is with --unpack=false, globs, renames, dir contents" \
    "$(echo $OUT)" "/globbed: a.txt b.txt /kept: bundle.tar.gz /tree-contents: sub /tree-slash: sub /unpacked/opt/tool: run.sh one 1000:1000 1000:1000 exec"

expect_status "config instructions" 0 build 'FROM busybox
SHELL ["/bin/sh", "-ec"]
RUN test "$0" = /bin/sh
HEALTHCHECK --interval=5s --retries=3 CMD wget -q -O- http://localhost/ || exit 1
STOPSIGNAL SIGQUIT
VOLUME /data /logs
EXPOSE 8000-8002/udp 9000
ENTRYPOINT exec /bin/sleep 1
MAINTAINER someone
ONBUILD RUN echo later' -t "oci:$RBX_TMP/img:t"
# The config blob as written (skopeo shows only the OCI fields, not docker's Shell, Healthcheck...)
expect_status "the config" 0 sh -c 'm=$(skopeo inspect --raw "oci:$1:t" | jq -r .config.digest) && cat "$1/blobs/sha256/${m#sha256:}"' sh "$RBX_TMP/img"
assert_eq "SHELL, HEALTHCHECK, STOPSIGNAL, VOLUME, EXPOSE, ENTRYPOINT (shell form, Cmd dropped), ONBUILD" \
    "$(jq -c '.config | [.Shell, .Healthcheck, .StopSignal, .Volumes, (.ExposedPorts|keys), .Entrypoint, .Cmd, .OnBuild]' <<<"$OUT")" \
    '[["/bin/sh","-ec"],{"Interval":5000000000,"Retries":3,"Test":["CMD-SHELL","wget -q -O- http://localhost/ || exit 1"]},"SIGQUIT",{"/data":{},"/logs":{}},["8000/udp","8001/udp","8002/udp","9000/tcp"],["/bin/sh","-ec","exec /bin/sleep 1"],null,["RUN echo later"]]'
assert_eq "MAINTAINER is the author" "$(jq -r .author <<<"$OUT")" "someone"

expect_status "a heredoc with #! runs as a file" 0 build 'FROM busybox
RUN <<EOF
#!/bin/sh
echo "script ran as $0" > /script-out
EOF
RUN cat > /more <<A && cat >> /more <<B
first
A
second
B' -t "oci:$RBX_TMP/img:t"
expect_status "heredoc results" 0 inspect cat /script-out /more
assert_eq "as BuildKit runs them" "$(echo $OUT)" "script ran as /dev/pipes/EOF first second"

# Security regression: a symlink in the context that points out is resolved inside it.
expect_status "test_build_context_symlink_never_followed_out" 1 build 'FROM busybox
COPY outside/passwd /stolen'
assert_contains "not found in the context (not the host's /etc/passwd)" "$ERR" "\"/outside/passwd\": not found in the build context"
expect_status "test_build_context_relative_symlink_clamped_at_the_root" 1 build 'FROM busybox
COPY data/up /stolen'
assert_contains "clamped at the context's root" "$ERR" "not found in the build context"

expect_status "several sources need a directory" 1 build 'FROM busybox
COPY a.txt b.txt /file'
assert_contains "docker's rule" "$ERR" "the destination must be a directory and end with a /"
expect_status "a parse error" 1 build 'FROM busybox
RUNN echo'
assert_contains "file:line:column" "$ERR" 'Dockerfile:2:1: unknown instruction "RUNN"'
expect_status "an unknown stage" 1 build 'FROM busybox' --target nope
assert_contains "names it" "$ERR" 'target stage "nope" could not be found'
expect_status "a registry image not in the store, --pull never" 1 build 'FROM node:20' --pull never
assert_contains "points at --build-context" "$ERR" "--build-context node:20=oci:DIR:TAG"
expect_status "a command not found" 1 build 'FROM busybox
RUN no-such-command'
assert_contains "exit 127 as a shell says it" "$ERR" "exit code: 127"
expect_status "bad flags" 125 rbx build --network bridge "$C"
finish
