#!/usr/bin/env bash
# A throwaway PostgreSQL server for the record store tests.
#
#   scripts/pg-test-server.sh start DIR   make a cluster in DIR, start it, print its URL
#   scripts/pg-test-server.sh stop DIR    stop it and remove DIR
#   scripts/pg-test-server.sh run -- CMD  start one in a temporary folder, run CMD with
#                                         DOSEPRINT_TEST_PG set to its URL, stop it
#                                         (also when CMD fails); CMD's exit status
#
# When initdb/pg_ctl are missing, Debian's `postgresql` package is installed (apt-get as
# root, or sudo -n). When that is not possible, `start` prints a note and exits 1, and
# `run` runs CMD without DOSEPRINT_TEST_PG (the PostgreSQL tests then skip, or fail when
# DOSEPRINT_REQUIRE_PG=1). `run` starts nothing when DOSEPRINT_TEST_PG is already set.
#
# The server listens on 127.0.0.1 at a free port and on a socket in DIR; it is tuned for
# speed (fsync off), not durability: it is for tests only.
set -euo pipefail

note() { echo "pg-test-server: $*" >&2; }

find_bindir() {
    local found=""
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        found=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
    else
        # Debian keeps the server binaries out of PATH; take the newest version.
        found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    fi
    if [ -n "$found" ] && [ -x "$found/initdb" ] && [ -x "$found/pg_ctl" ]; then
        echo "$found"
        return 0
    fi
    return 1
}

install_postgresql() {
    local apt=()
    if [ "$(id -u)" = 0 ]; then
        apt=(apt-get)
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        apt=(sudo -n apt-get)
    else
        note "PostgreSQL is not installed and this user cannot install it (not root, no sudo -n);"
        note "install Debian's 'postgresql' package to run the PostgreSQL tests"
        return 1
    fi
    note "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    "${apt[@]}" update -qq >&2 || true
    "${apt[@]}" install -y -qq --no-install-recommends postgresql >&2
}

# Run a command as the cluster's owner: `postgres` when we are root (initdb refuses
# root), else ourselves.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        if command -v runuser >/dev/null 2>&1; then
            runuser -u postgres -- "$@"
        else
            su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
        fi
    else
        "$@"
    fi
}

free_port() {
    "${PYTHON:-python3}" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

start() {
    local dir=$1 bindir port password
    bindir=$(find_bindir) || { install_postgresql && bindir=$(find_bindir); } || {
        note "no initdb/pg_ctl found"
        return 1
    }
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        note "running as root but there is no 'postgres' user to own the cluster"
        return 1
    fi
    mkdir -p "$dir"
    password=$("${PYTHON:-python3}" -c 'import secrets; print(secrets.token_hex(12))')
    printf '%s\n' "$password" >"$dir/pwfile"
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres "$dir"
    fi
    chmod 700 "$dir"
    as_owner "$bindir/initdb" -D "$dir/data" -U doseprint --pwfile="$dir/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C --no-sync \
        >"$dir/initdb.log" 2>&1 || {
        note "initdb failed:"
        cat "$dir/initdb.log" >&2
        return 1
    }
    port=$(free_port)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off -c max_connections=60" \
        start >/dev/null || {
        note "the server did not start:"
        cat "$dir/server.log" >&2 || true
        return 1
    }
    echo "$bindir" >"$dir/bindir"
    as_owner "$bindir/createdb" -h "$dir" -p "$port" -U doseprint doseprint_test
    echo "postgresql://doseprint:$password@127.0.0.1:$port/doseprint_test"
}

stop() {
    local dir=$1
    if [ -f "$dir/bindir" ] && [ -d "$dir/data" ]; then
        as_owner "$(cat "$dir/bindir")/pg_ctl" -D "$dir/data" -m immediate -w stop \
            >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    start)
        [ $# -eq 2 ] || { note "usage: $0 start DIR"; exit 2; }
        start "$2"
        ;;
    stop)
        [ $# -eq 2 ] || { note "usage: $0 stop DIR"; exit 2; }
        stop "$2"
        ;;
    run)
        shift
        [ "${1:-}" = "--" ] && shift
        [ $# -gt 0 ] || { note "usage: $0 run -- COMMAND"; exit 2; }
        if [ -n "${DOSEPRINT_TEST_PG:-}" ]; then
            exec "$@"
        fi
        dir=$(mktemp -d "${TMPDIR:-/tmp}/doseprint-pg.XXXXXX")
        trap 'stop "$dir"' EXIT
        trap 'exit 130' INT TERM
        if url=$(start "$dir"); then
            export DOSEPRINT_TEST_PG=$url
            note "PostgreSQL test server up at ${url##*@}"
        else
            note "no PostgreSQL test server: the PostgreSQL tests will skip (or fail with" \
                "DOSEPRINT_REQUIRE_PG=1)"
        fi
        status=0
        "$@" || status=$?
        exit "$status"
        ;;
    *)
        note "usage: $0 start DIR | stop DIR | run -- COMMAND"
        exit 2
        ;;
esac
