#!/bin/sh
# `make demo`: a private redis-server and nginx with the module on
# loopback, a few requests that show 200s turning into 429s with their
# fields, then everything stopped, by pid.

set -u

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/ci/lib.sh"
run=$(mktemp -d "${TMPDIR:-/tmp}/rl-demo.XXXXXX")
redis_pid=
nginx_pid=

cleanup() {
    stop "$nginx_pid" "$redis_pid"
    rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

redis_port=$(free_port)
port=$(free_port)
mkdir -p "$run/logs" "$run/conf"

redis-server --bind 127.0.0.1 --port "$redis_port" --save '' \
    --appendonly no --dir "$run" --logfile "$run/redis.log" &
redis_pid=$!

sed -e "s|@MODULE@|$top/build/ngx_http_rate_limit_module.so|" \
    -e "s|@PREFIX@|$run|g" -e "s|@REDIS_PORT@|$redis_port|" \
    -e "s|@PORT@|$port|" "$top/examples/demo.conf" > "$run/conf/nginx.conf"

# die FILE MESSAGE: FILE (a log) and MESSAGE on stderr, then exit 1
die() {
    cat "$1" >&2
    echo "demo: $2" >&2
    exit 1
}

wait_for 200 redis_up redis-cli "$redis_port" \
    || die "$run/redis.log" "redis-server did not start"

nginx=$(nginx_binary)
"$nginx" -p "$run" -c "$run/conf/nginx.conf" -g 'daemon off;' &
nginx_pid=$!

wait_for 200 test -f "$run/logs/nginx.pid" \
    || die "$run/logs/error.log" "nginx did not start"
sleep 0.2

# request ARGS...: prints the status line and the rate-limit fields
request() {
    perl -MIO::Socket::INET -e '
        my ($port, $path, $key) = @ARGV;
        my $s = IO::Socket::INET->new("127.0.0.1:$port") or die "connect: $!";
        print $s "GET $path HTTP/1.0\r\nHost: demo\r\n",
                 ($key ? "X-Api-Key: $key\r\n" : ""), "\r\n";
        local $/; my $r = <$s>;
        my ($head, $body) = split /\r\n\r\n/, $r, 2;
        for (split /\r\n/, $head) {
            print "    $_\n" if /^HTTP|^Retry-After|RateLimit/i;
        }
        print "    body: $body" if $body =~ /^\{/;
    ' "$port" "$@"
}

echo "redis-server on 127.0.0.1:$redis_port, nginx on 127.0.0.1:$port"
echo
echo "Zone per_key: 10r/m with burst=2, so 3 at once, then one every 6 s."
echo "Key: the X-Api-Key header, else the client address (a map)."
echo

for i in 1 2 3 4 5; do
    echo "GET /api/ with X-Api-Key: alice ($i)"
    request /api/ alice
done

echo
echo "Another key has a quota of its own:"
echo "GET /api/ with X-Api-Key: bob"
request /api/ bob

echo
echo "No API key: the address is the key."
echo "GET /api/ without a key"
request /api/

echo
echo "rate_limit off:"
echo "GET /healthz"
request /healthz

echo
echo "What Redis holds (one key per client and zone):"
redis-cli -p "$redis_port" --no-raw --scan | sort | sed 's/^/    /'

echo
echo "The error log's rejection lines:"
grep -h "limiting requests" "$run/logs/error.log" | sed 's/^/    /'
