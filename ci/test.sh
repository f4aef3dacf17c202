#!/bin/sh
# The test run behind `make test`: private redis-servers on free loopback
# ports, the cmocka unit tests, then every Test::Nginx suite under prove.
# Whatever it starts it stops by pid, also when a test fails or the run is
# interrupted.
#
# REDIS_SERVER and REDIS_CLI name the server and its client (default
# redis-server and redis-cli; `make matrix` runs valkey-server and
# valkey-cli too).

set -u

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. ci/lib.sh

build=${BUILD:-build}
redis_server=${REDIS_SERVER:-redis-server}
redis_cli=${REDIS_CLI:-redis-cli}
run=$(mktemp -d "${TMPDIR:-/tmp}/rl-test.XXXXXX")
pids=

cleanup() {
    # shellcheck disable=SC2086
    stop $pids
    rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

# start_redis NAME PORT [ARGS...]: a redis-server with no persistence and
# none of the system's configuration, DEBUG allowed (tests pause it).
start_redis() {
    name=$1 port=$2
    shift 2
    "$redis_server" --bind 127.0.0.1 --port "$port" --save '' \
        --appendonly no --dir "$run" --daemonize no \
        --enable-debug-command local \
        --logfile "$run/$name.log" "$@" &
    pids="$pids $!"
    if ! wait_for 100 redis_up "$redis_cli" "$port" \
            ${REDISCLI_AUTH:+-a "$REDISCLI_AUTH"}; then
        echo "test: $redis_server $name did not start" >&2
        cat "$run/$name.log" >&2
        exit 1
    fi
}

TEST_NGINX_REDIS_PORT=$(free_port)
TEST_NGINX_REDIS_SOCKET=$run/redis.sock
start_redis main "$TEST_NGINX_REDIS_PORT" \
    --unixsocket "$TEST_NGINX_REDIS_SOCKET" --unixsocketperm 700

# A second server whose default user has a password (AUTH tests).
TEST_NGINX_REDIS_AUTH_PORT=$(free_port)
TEST_NGINX_REDIS_PASSWORD=rl-test-secret
REDISCLI_AUTH=$TEST_NGINX_REDIS_PASSWORD \
    start_redis auth "$TEST_NGINX_REDIS_AUTH_PORT" \
        --requirepass "$TEST_NGINX_REDIS_PASSWORD"

# A server root and port of this run's own: runs side by side (two
# checkouts, a developer and CI) never share a servroot.
TEST_NGINX_SERVROOT=${TEST_NGINX_SERVROOT:-$run/servroot}
TEST_NGINX_SERVER_PORT=${TEST_NGINX_SERVER_PORT:-$(free_port)}
TEST_NGINX_LOAD_MODULES=${TEST_NGINX_LOAD_MODULES:-$top/$build/ngx_http_rate_limit_module.so}
TEST_NGINX_BINARY=${TEST_NGINX_BINARY:-$(nginx_binary)}
TEST_NGINX_REDIS_CLI=$(command -v "$redis_cli")
TEST_NGINX_REDIS_SERVER=$(command -v "$redis_server")
export TEST_NGINX_REDIS_PORT TEST_NGINX_REDIS_SOCKET \
    TEST_NGINX_REDIS_AUTH_PORT TEST_NGINX_REDIS_PASSWORD \
    TEST_NGINX_SERVROOT TEST_NGINX_SERVER_PORT TEST_NGINX_LOAD_MODULES \
    TEST_NGINX_BINARY \
    TEST_NGINX_REDIS_CLI TEST_NGINX_REDIS_SERVER

status=0

echo "== $("$redis_server" --version)"
echo "== unit tests"
sh ci/run-unit.sh "$build"/unit/test_* || status=1

# The upstream Test::Nginx when it is installed, else ours in t/lib.
# Our helper modules (Test::RateLimit::*) live in t/lib too, so the
# upstream's directory must come first on @INC.
if upstream=$(perl -MTest::Nginx::Socket -e \
        'my $f = $INC{"Test/Nginx/Socket.pm"};
         $f =~ s{/Test/Nginx/Socket\.pm$}{}; print $f' 2>/dev/null); then
    echo "== Test::Nginx: upstream, from $upstream"
    inc="-I $upstream -I t/lib"
else
    echo "== Test::Nginx: ours, t/lib"
    inc="-I t/lib"
fi

echo "== Test::Nginx suites"
# shellcheck disable=SC2086
prove $inc ${PROVE_FLAGS:-} ${TEST_FILES:-t/*.t t/runner/*.t} || status=1

exit $status
