# ci/lib.sh: the shell the ci/ scripts share, sourced (". ci/lib.sh")
# by test.sh, demo.sh, bench.sh and memcheck.sh.  POSIX sh; defines
# functions only and starts nothing.

# nginx_binary: the nginx to run, $PATH's or Debian's
nginx_binary() {
    command -v nginx || echo /usr/sbin/nginx
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now
free_port() {
    perl -MIO::Socket::INET -e \
        'print IO::Socket::INET->new(Listen => 1,
             LocalAddr => "127.0.0.1:0")->sockport'
}

# alive PID: running, and not a zombie waiting for its parent
alive() {
    _st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ -n "$_st" ] && [ "$_st" != Z ]
}

# stop PID...: TERM to each, then waits until each is gone, with a KILL
# after 10 s; reaps those that are children of this shell.  Empty
# arguments and processes already gone are skipped.
stop() {
    for _pid in "$@"; do
        [ -n "$_pid" ] && kill "$_pid" 2>/dev/null
    done
    for _pid in "$@"; do
        [ -n "$_pid" ] || continue
        _i=0
        while alive "$_pid"; do
            _i=$((_i + 1))
            if [ $_i -eq 100 ]; then
                kill -KILL "$_pid" 2>/dev/null
            fi
            sleep 0.1
        done
        wait "$_pid" 2>/dev/null
    done
    return 0
}

# wait_for TRIES CMD...: runs CMD every 50 ms until it succeeds; fails
# after TRIES attempts
wait_for() {
    _tries=$1
    shift
    _i=0
    until "$@" >/dev/null 2>&1; do
        _i=$((_i + 1))
        [ $_i -ge "$_tries" ] && return 1
        sleep 0.05
    done
    return 0
}

# redis_up CLI PORT [CLI-ARGS...]: the server on 127.0.0.1:PORT answers
# PING
redis_up() {
    _cli=$1 _port=$2
    shift 2
    "$_cli" -h 127.0.0.1 -p "$_port" "$@" ping 2>/dev/null | grep -q PONG
}
