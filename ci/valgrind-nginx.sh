#!/bin/sh
# nginx under valgrind memcheck, for `make memcheck`: TEST_NGINX_BINARY
# points here.  Every process (master, workers, "nginx -t") writes its own
# log into $RL_VALGRIND_DIR; ci/memcheck.sh reads them afterwards.

exec valgrind --quiet --trace-children=yes --child-silent-after-fork=no \
    --leak-check=full --show-leak-kinds=definite \
    --errors-for-leak-kinds=definite --num-callers=40 \
    --log-file="$RL_VALGRIND_DIR/vg.%p.log" \
    "${RL_NGINX:-/usr/sbin/nginx}" "$@"
