#!/usr/bin/env bash
# Run a command next to a throwaway PostgreSQL server, then remove the server.
#
#   scripts/with-postgres.sh CMD [ARGS...]
#
# The server lives in a new temporary folder, listens on 127.0.0.1 only, on a free
# port, with trust authentication for the `postgres` superuser; CMD runs with
#   MEDLOOP_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
# The server is stopped and its folder deleted when CMD ends, fails or is
# interrupted; the script exits with CMD's status. As root, the server runs as the
# `postgres` user (PostgreSQL refuses to run as root).
#
# Binaries: $PG_BINDIR, else /usr/lib/postgresql/15/bin, else the newest
# /usr/lib/postgresql/*/bin, else `pg_config --bindir` (`make services` installs
# them). MEDLOOP_SKIP_POSTGRES=1 runs CMD alone (the PostgreSQL tests then skip).
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi
if [ "${MEDLOOP_SKIP_POSTGRES:-0}" = "1" ]; then
    exec "$@"
fi

find_bindir() {
    local d
    for d in "${PG_BINDIR:-}" /usr/lib/postgresql/15/bin \
        $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
        if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            echo "$d"
            return 0
        fi
    done
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return 0
    fi
    return 1
}

if ! bindir=$(find_bindir); then
    echo "error: PostgreSQL server binaries (initdb, pg_ctl) not found: run 'make services'" \
        "or install postgresql-15, or set MEDLOOP_SKIP_POSTGRES=1 to skip the PostgreSQL tests" >&2
    exit 2
fi

as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    as_pg=(runuser -u postgres --)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/medloop-pg.XXXXXX")
if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$tmp"
fi
started=0
cleanup() {
    if [ "$started" -eq 1 ]; then
        ${as_pg[@]+"${as_pg[@]}"} "$bindir/pg_ctl" -D "$tmp/data" -m immediate -w stop \
            >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    "${PYTHON:-python3}" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

if ! ${as_pg[@]+"${as_pg[@]}"} "$bindir/initdb" -D "$tmp/data" -U postgres -A trust -E UTF8 \
    --no-locale >"$tmp/initdb.log" 2>&1; then
    cat "$tmp/initdb.log" >&2
    echo "error: initdb failed (see above)" >&2
    exit 1
fi

# A port can be taken between choosing and binding it: try a few.
for attempt in 1 2 3; do
    port=$(free_port)
    if ${as_pg[@]+"${as_pg[@]}"} "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $tmp -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null; then
        started=1
        break
    fi
    if [ "$attempt" -eq 3 ]; then
        tail -n 20 "$tmp/server.log" >&2 || true
        echo "error: PostgreSQL did not start (see above)" >&2
        exit 1
    fi
done

echo "with-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
export MEDLOOP_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
set +e
"$@"
status=$?
set -e
exit "$status"
