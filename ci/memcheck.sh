#!/bin/sh
# `make memcheck`: the cmocka tests and the Test::Nginx suites with nginx
# under valgrind memcheck.  Fails on any invalid access, use of
# uninitialised memory or definite leak whose stack passes through the
# module (ngx_http_rate_limit_*, rl_core_*, namespace rl, hiredis).
#
# valgrind makes nginx 20-50 times slower, so tests that measure a wait
# (timeouts, backoff) may fail here; their results are printed but do not
# decide: valgrind's findings do.  MEMCHECK_FILES picks the suites.

set -u

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. ci/lib.sh

RL_VALGRIND_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rl-valgrind.XXXXXX")
RL_NGINX=$(nginx_binary)
export RL_VALGRIND_DIR RL_NGINX

status=0

echo "== unit tests under valgrind"
for t in build/unit/test_*; do
    valgrind --quiet --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite "$t" >/dev/null 2>"$RL_VALGRIND_DIR/unit.log"
    rc=$?
    if [ $rc -eq 99 ]; then
        echo "memcheck: $t: valgrind errors"
        cat "$RL_VALGRIND_DIR/unit.log"
        status=1
    else
        echo "memcheck: $t: clean (exit $rc)"
    fi
done

echo "== Test::Nginx suites with nginx under valgrind"
TEST_NGINX_BINARY="$top/ci/valgrind-nginx.sh" \
TEST_FILES=${MEMCHECK_FILES:-$(ls t/0*.t | tr '\n' ' ')} \
    sh ci/test.sh > "$RL_VALGRIND_DIR/suites.out" 2>&1
echo "memcheck: suites exited $? (informational under valgrind):"
grep -E "^(Files=|Result:|t/.*(ok|Failed))" "$RL_VALGRIND_DIR/suites.out"

# A report is ours when one of its stack frames is in the module.
perl -e '
    my ($errors, $ours, $logs) = (0, 0, 0);
    for my $f (glob "$ARGV[0]/vg.*.log") {
        $logs++;
        local $/ = undef;
        open my $fh, "<", $f or next;
        my $text = <$fh>;
        # reports are blocks separated by blank "==pid==" lines
        for my $block (split /^==\d+==\s*\n/m, $text) {
            next unless $block =~ /^==\d+== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched|\S.* definitely lost)/m;
            $errors++;
            next unless $block =~ /ngx_http_rate_limit_|rl_core_|\brl::|redis[A-Z_]/;
            $ours++;
            print "---- $f\n$block\n";
        }
    }
    print "memcheck: $logs valgrind logs, $errors reports, $ours in the module\n";
    exit($ours ? 1 : 0);
' "$RL_VALGRIND_DIR" || status=1

if [ $status -eq 0 ]; then
    rm -rf "$RL_VALGRIND_DIR"
else
    echo "memcheck: logs kept in $RL_VALGRIND_DIR"
fi

exit $status
