#!/bin/sh
set -e
log() { echo "$@" >&2; }
if [ "$1" = postgres ]; then
    : "${PGDATA:=/var/lib/postgresql/data}"
    case "$PGDATA" in /*) ;; *) exit 1 ;; esac
    for f in /docker-entrypoint-initdb.d/*; do . "$f"; done
    cat <<-END >/dev/null
	$(not a command)
	END
    exec gosu postgres "$@" --port=$((5432 + 0)) `printf x`
fi
exec "$@"
