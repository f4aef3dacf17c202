#!/bin/sh
# Runs each cmocka unit test binary given as an argument, in order, and
# prints cmocka's own summaries.  Every binary runs even after a failure,
# so one report shows all of them; the exit status is non-zero when any
# failed (or none was given: an empty run must not look like a pass).
#
#   sh ci/run-unit.sh build/unit/test_*

if [ $# -eq 0 ]; then
    echo "run-unit.sh: no unit test binaries given" >&2
    exit 2
fi

failed=""

for bin in "$@"; do
    echo "==> $bin"

    if [ ! -x "$bin" ]; then
        echo "run-unit.sh: $bin: not an executable" >&2
        failed="$failed $bin"
        continue
    fi

    # cmocka prints its summary itself (CMOCKA_MESSAGE_OUTPUT=tap or xml
    # in the environment picks another format).
    "$bin"
    rc=$?

    if [ $rc -ne 0 ]; then
        echo "run-unit.sh: $bin: exit status $rc" >&2
        failed="$failed $bin"
    fi
done

if [ -n "$failed" ]; then
    echo "run-unit.sh: FAILED:$failed" >&2
    exit 1
fi

echo "run-unit.sh: all $# unit test binaries passed"
