#!/bin/sh
# The test run behind `make matrix`: the Debian 13 (trixie) row.
#
# Makes (or reuses, when it is complete) a trixie root with debootstrap
# from the Debian mirror this machine's apt already uses, installs there
# what the build and the tests need, copies this working tree into it and,
# with chroot:
#
#   build    make module unit-bins test-module (against that root's nginx-dev tree)
#   redis    ci/test.sh, the whole suite, against redis-server
#   valkey   ci/test.sh, the whole suite, against valkey-server
#   source   ./configure --with-compat --add-dynamic-module on the NGINX
#            source tree trixie ships (apt-get source nginx), make modules,
#            and `nginx -t` of trixie's nginx with that .so loaded
#
# Every step runs even when an earlier one failed (those that need the
# build say they were skipped); the summary names each step's result and
# the exit status is 0 only when all passed.  If the root cannot be made,
# it says so and fails.
#
# Environment:
#   MATRIX_ROOT    the root (default /var/cache/rl-matrix/trixie); it is
#                  kept between runs and reused when complete
#   MATRIX_MIRROR  the Debian mirror (default: read from apt's configuration)
#   MATRIX_STEPS   which steps to run (default "build redis valkey source")
#   MATRIX_LOGS    where the logs go (default build/matrix in this tree)
#   MATRIX_FRESH=1 remove the root first and make it anew
#   PROVE_FLAGS, TEST_FILES are passed on to ci/test.sh
#
# Everything it mounts is mounted in a mount namespace of its own and
# unmounted again on exit; what it starts it stops by pid.

set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
suite=trixie
root=${MATRIX_ROOT:-/var/cache/rl-matrix/$suite}
steps=${MATRIX_STEPS:-build redis valkey source}
logs=${MATRIX_LOGS:-$top/build/matrix}

# What the root needs: compilers and dpkg-dev (apt-get source), NGINX and
# its development tree, hiredis 1.x, cmocka, both servers, the Perl
# modules of t/lib, openssl for the TLS tests, the Prometheus parser of
# the metrics suite.
PACKAGES="build-essential nginx nginx-dev libhiredis-dev libcmocka-dev
redis-server redis-tools valkey-server valkey-tools
libtest-base-perl libtext-diff-perl procps openssl
libnginx-mod-http-lua libnginx-mod-http-auth-pam libssl-dev
python3-prometheus-client"

say() { echo "matrix: $*"; }
die() { echo "matrix: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, mount, chroot)"

# A mount namespace of our own: whatever is mounted below vanishes with
# the last process of this run, even if the trap never gets to run.
if [ -z "${RL_MATRIX_NS:-}" ] &&
        unshare --mount --propagation private true 2>/dev/null; then
    RL_MATRIX_NS=1 exec unshare --mount --propagation private \
        sh "$0" "$@"
fi

mkdir -p "$logs"
rm -f "$logs"/*.log

# The mirror: the URI that apt here uses for this machine's own release.
mirror=${MATRIX_MIRROR:-}
security=
if [ -z "$mirror" ]; then
    host_codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    targets=$(apt-get indextargets --no-release-info \
        --format '$(TARGET_OF) $(RELEASE) $(REPO_URI)' 2>/dev/null |
        sort -u)
    mirror=$(echo "$targets" |
        awk -v c="$host_codename" '$1 == "deb" && $2 == c { print $3; exit }')
    security=$(echo "$targets" |
        awk -v c="$host_codename-security" \
            '$1 == "deb" && $2 == c { print $3; exit }')
fi
[ -n "$mirror" ] ||
    die "cannot make the Debian 13 root: no Debian mirror in apt's configuration"

pids=
mounted=
cleanup() {
    status=$?
    # each child leads a process group of its own: stop the whole group
    # (ci/test.sh's servers, nginx, prove), then wait for it to be gone
    for pid in $pids; do
        kill -TERM "-$pid" 2>/dev/null || true
    done
    for pid in $pids; do
        i=0
        while kill -0 "-$pid" 2>/dev/null; do
            i=$((i + 1))
            if [ $i -eq 100 ]; then
                kill -KILL "-$pid" 2>/dev/null || true
            fi
            sleep 0.1
        done
    done
    # $mounted is in mount order, newest first
    for m in $mounted; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null ||
            echo "matrix: could not unmount $m" >&2
    done
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

# bg_wait CMD...: runs CMD as the leader of a new process group (setsid
# does not fork: a background child of this shell leads no group yet), so
# that it can be stopped with all its children; waits for it.
bg_wait() {
    setsid "$@" &
    pid=$!
    pids="$pids $pid"
    rc=0
    wait "$pid" || rc=$?
    pids=$(echo "$pids" | sed "s/ $pid\$//; s/ $pid / /")
    return $rc
}

in_root() {
    bg_wait env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
        chroot "$root" "$@"
}

do_mount() {
    # do_mount TARGET MOUNT-ARGS...
    target=$1
    shift
    mount "$@" "$target"
    mounted="$target $mounted"
}

mounts_under() {
    awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' \
        /proc/self/mounts
}

# --- the root -------------------------------------------------------------

if [ "${MATRIX_FRESH:-0}" = 1 ] && [ -d "$root" ]; then
    [ -z "$(mounts_under "$root")" ] ||
        die "$root has mounts under it; not removing it"
    say "removing $root (MATRIX_FRESH=1)"
    rm -rf "$root"
fi

if [ ! -f "$root/.rl-matrix-base" ]; then
    command -v debootstrap >/dev/null 2>&1 || {
        say "installing debootstrap (this machine's own release)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends debootstrap >"$logs/host-apt.log" 2>&1 ||
            die "cannot make the Debian 13 root: debootstrap is missing and could not be installed (see $logs/host-apt.log)"
    }
    new=$root.new
    [ -z "$(mounts_under "$new")" ] ||
        die "$new has mounts under it; not removing it"
    rm -rf "$new" "$root"
    mkdir -p "$(dirname "$root")"
    say "debootstrap $suite into $new (a few minutes)"
    t0=$(date +%s)
    if ! bg_wait debootstrap --variant=minbase "$suite" "$new" "$mirror" \
            >"$logs/debootstrap.log" 2>&1; then
        tail -n 20 "$logs/debootstrap.log" >&2
        die "cannot make the Debian 13 root: debootstrap from $mirror failed (see $logs/debootstrap.log)"
    fi
    touch "$new/.rl-matrix-base"
    mv "$new" "$root"
    say "debootstrap took $(($(date +%s) - t0)) s"
fi

# apt in the root: the same mirror, binaries and sources; nothing started
# by a package's maintainer scripts (no nginx on port 80, no redis).
{
    echo "Types: deb deb-src"
    echo "URIs: $mirror"
    echo "Suites: $suite $suite-updates"
    echo "Components: main"
    echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
    if [ -n "$security" ]; then
        echo
        echo "Types: deb deb-src"
        echo "URIs: $security"
        echo "Suites: $suite-security"
        echo "Components: main"
        echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
    fi
} >"$root/etc/apt/sources.list.d/debian.sources"
rm -f "$root/etc/apt/sources.list"
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$root/etc/apt/apt.conf.d/90rl-matrix"
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

do_mount "$root/proc" -t proc proc
do_mount "$root/dev" --bind /dev
do_mount "$root/dev/pts" --bind /dev/pts
do_mount "$root/dev/shm" -t tmpfs -o mode=1777 tmpfs
do_mount "$root/tmp" -t tmpfs -o mode=1777 tmpfs

want=$(echo $PACKAGES)
if [ "$(cat "$root/.rl-matrix-packages" 2>/dev/null)" != "$want" ]; then
    say "installing in the root: $want"
    t0=$(date +%s)
    # shellcheck disable=SC2086
    if ! in_root sh -c "apt-get update -qq &&
            apt-get install -y -qq $want" >"$logs/root-apt.log" 2>&1; then
        tail -n 20 "$logs/root-apt.log" >&2
        die "cannot make the Debian 13 root: apt-get in the root failed (see $logs/root-apt.log)"
    fi
    echo "$want" >"$root/.rl-matrix-packages"
    say "packages took $(($(date +%s) - t0)) s"
fi

# The NGINX source tree of trixie's nginx, unpacked once: `apt-get
# source` (Debian's patched tree) where the mirror serves the whole source
# package; where it serves only the upstream tarball (nginx_V.orig.tar.gz,
# NGINX's own release), that; else nginx-dev's tree.  .done names which.
if [ ! -f "$root/opt/nginx-src/.done" ]; then
    say "apt-get source nginx"
    rm -rf "$root/opt/nginx-src"
    mkdir -p "$root/opt/nginx-src"
    in_root sh -c 'cd /opt/nginx-src
        v=$(dpkg-query -W -f="\${Version}" nginx)
        apt-get source -qq nginx="$v" || apt-get source -qq nginx
        if [ -n "$(find . -mindepth 1 -maxdepth 1 -type d -name "nginx-*")" ]
        then
            echo "apt-get source nginx=$v" >.done
            exit 0
        fi
        uv=${v#*:}; uv=${uv%%-*}
        if [ -f "nginx_$uv.orig.tar.gz" ]; then
            tar -xzf "nginx_$uv.orig.tar.gz" &&
                echo "NGINX $uv upstream (nginx_$uv.orig.tar.gz)" >.done
        fi' >"$logs/nginx-source.log" 2>&1 || true
    [ -f "$root/opt/nginx-src/.done" ] ||
        say "no NGINX source from the mirror (see $logs/nginx-source.log); using nginx-dev's tree"
fi
if [ -f "$root/opt/nginx-src/.done" ]; then
    ngx_tree="$(cat "$root/opt/nginx-src/.done")"
    ngx_src=$(find "$root/opt/nginx-src" -mindepth 1 -maxdepth 1 -type d \
        -name 'nginx-*' | head -n 1)
    ngx_src=${ngx_src#"$root"}
else
    ngx_tree="nginx-dev's /usr/share/nginx/src"
    ngx_src=/usr/share/nginx/src
fi

say "root $root: $(cat "$root/etc/debian_version"), $(in_root sh -c \
    'dpkg-query -W -f "\${Package} \${Version}, " nginx libhiredis-dev redis-server valkey-server' | sed 's/, $//')"

# --- this working tree, copied in -------------------------------------------

rm -rf "$root/work/rl"
mkdir -p "$root/work/rl"
(cd "$top" && tar --exclude=./build --exclude=./.git \
    --exclude='./t/servroot*' -cf - .) | (cd "$root/work/rl" && tar -xf -)

# --- the steps ----------------------------------------------------------------

summary=
failed=0
result() {
    # result STEP pass|FAIL|skipped [NOTE]
    summary="$summary$(printf '%-8s %-7s %s' "$1" "$2" "${3:-}")
"
    [ "$2" != FAIL ] || failed=1
}

run_step() {
    # run_step NAME CMD: runs CMD in the root, log in $logs/NAME.log
    name=$1
    shift
    say "== $name"
    t0=$(date +%s)
    if in_root sh -c "$*" >"$logs/$name.log" 2>&1; then
        result "$name" pass "$(($(date +%s) - t0)) s"
        return 0
    fi
    result "$name" FAIL "$(($(date +%s) - t0)) s, see $logs/$name.log"
    tail -n 30 "$logs/$name.log"
    return 1
}

built=no
has_step() { case " $steps " in *" $1 "*) return 0 ;; esac; return 1; }

if has_step build; then
    if run_step build 'cd /work/rl && make -k module unit-bins test-module'; then
        built=yes
    fi
fi

test_cmd() {
    echo "cd /work/rl && REDIS_SERVER=$1 REDIS_CLI=$2 \
        PROVE_FLAGS='${PROVE_FLAGS:-}' TEST_FILES='${TEST_FILES:-}' \
        sh ci/test.sh"
}
for server in redis valkey; do
    has_step "$server" || continue
    if [ "$built" = yes ]; then
        run_step "$server" "$(test_cmd "$server-server" "$server-cli")" || true
        grep -E '^(Failed|Result:|Files=|t/.*(Wstat|Failed))' \
            "$logs/$server.log" | tail -n 40 || true
    else
        result "$server" skipped "no build"
    fi
done

if has_step source; then
    say "NGINX source tree: $ngx_tree"
    run_step source '
            set -e
            rm -rf /work/ngx-src && cp -a '"$ngx_src"' /work/ngx-src
            cd /work/ngx-src
            rm -rf objs
            ./configure --with-compat --add-dynamic-module=/work/rl
            make -j2 modules
            port=$(perl -MIO::Socket::INET -e "print IO::Socket::INET->new(Listen => 1, LocalAddr => q(127.0.0.1:0))->sockport")
            mkdir -p /tmp/ngx-t/logs
            cat >/tmp/ngx-t/nginx.conf <<EOF
load_module /work/ngx-src/objs/ngx_http_rate_limit_module.so;
error_log stderr notice;
pid /tmp/ngx-t/nginx.pid;
events {}
http {
    access_log off;
    rate_limit_redis 127.0.0.1:6379;
    rate_limit_zone per_ip key=\$binary_remote_addr rate=10r/s;
    server {
        listen 127.0.0.1:$port;
        location / { rate_limit per_ip; return 204; }
    }
}
EOF
            nginx -V 2>&1 | head -n 1
            nginx -t -p /tmp/ngx-t -c /tmp/ngx-t/nginx.conf' || true
fi

echo
echo "== matrix: Debian $(cat "$root/etc/debian_version") ($suite)"
printf '%s' "$summary"
exit $failed
