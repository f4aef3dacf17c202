#!/bin/sh
# Installs the Debian packages needed to build and test the module, and
# only those that are missing.  Idempotent: with everything present it
# changes nothing and runs no apt-get at all.

set -e

# build: compilers, NGINX's own headers and configure, hiredis, libcrypto
# (the core's SHA-1); tests:
# cmocka, a private redis-server, nginx itself, Test::Base for t/lib,
# and two packaged access-phase modules (lua, auth-pam) that
# t/061-module-order.t loads before and after this one; the reference
# Prometheus parser that t/042-metrics.t reads the metrics with.
PACKAGES="gcc g++ make nginx nginx-dev libhiredis-dev libssl-dev
libcmocka-dev redis-server libtest-base-perl libtext-diff-perl
python3-prometheus-client
procps libnginx-mod-http-lua libnginx-mod-http-auth-pam"

missing=
for p in $PACKAGES $EXTRA_PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=
elif command -v sudo >/dev/null 2>&1; then
    sudo=sudo
else
    echo "install-deps: missing packages:$missing" >&2
    echo "install-deps: not root and no sudo; install them and rerun" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: no apt-get; install these packages:$missing" >&2
    exit 1
fi

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
