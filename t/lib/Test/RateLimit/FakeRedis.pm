package Test::RateLimit::FakeRedis;

# A fake Redis for the error tests: a RESP2 server in a forked process on a
# free loopback port, which answers the module's handshake as Redis does
# (SCRIPT LOAD returns the SHA-1 of the script it was sent) and answers
# EVALSHA/EVAL with whatever the client key asks for.
#
#   use Test::RateLimit::FakeRedis;       # before Test::Nginx::Socket, so
#                                         # its END stops the fake after nginx
#   my $fake = Test::RateLimit::FakeRedis->start;
#   $ENV{TEST_NGINX_FAKE_REDIS_PORT} = $fake->port;
#   my $st = $fake->stats;                # { connections => ..., evalsha => ... }
#   $fake->stop;                          # also done at END
#
# Options of start: bad_sha => 1 answers SCRIPT LOAD with another SHA-1;
# mute => 1 accepts connections and never answers anything; role => 'slave'
# answers ROLE as a replica does (default 'master'); version => '4.0.14'
# is the redis_version that INFO gives (default 7.0.15); trickle_ms (100),
# trickle_max (300), huge_chunk (8192), huge_ms (20) and huge_max (2 MiB)
# tune the trickle and huge modes below.
#
# The handshake commands are answered as Redis 7 does: AUTH and SELECT +OK,
# ROLE [master, 0, []], INFO a bulk string with "redis_version:V", SCRIPT
# EXISTS 1 or 0 for each SHA-1 (1 once SCRIPT LOAD or EVAL had that script).
#
# The behaviour is chosen by the client key of the first key of the command
# (rl:{ZONE:CLIENT}:TAG): MODE or MODE.ANYTHING, where MODE is one of
#
#   ok        always allowed: [1, 1000, I, 1000, 0], where I tells which of
#             the connections that carried this client key this one is, in
#             the order they first did (1: the first, 2: a new one), so
#             $rate_limit_remaining shows whether the module reconnected
#   reject    always rejected: [0, 10, 0, 5000, 3000]
#   extra     as ok, followed by a reply no command asked for (:1)
#   extraerr  as ok, followed by an error reply no command asked for
#   noscript  EVALSHA always answered NOSCRIPT; EVAL answers as ok
#   flushed   the first EVALSHA with this client key finds the script cache
#             flushed: NOSCRIPT, and the fake forgets every script (as
#             SCRIPT FLUSH does), so only SCRIPT LOAD or EVAL brings it back
#
# and every other mode is "bad once": the first command with that client key
# gets the bad answer below, later ones are answered as ok.  For the modes
# marked (c) the connection that got the bad answer keeps getting it for
# that key, so an ok answer proves a new connection.
#
#   error     -ERR user_script:1: a script error
#   busy      -BUSY Redis is busy running a script
#   oom       -OOM command not allowed when used memory > 'maxmemory'.
#   readonly  -READONLY You can't write against a read only replica.  (c)
#   loading   -LOADING Redis is loading the dataset in memory         (c)
#   masterdown -MASTERDOWN Link with MASTER is down                   (c)
#   noauth    -NOAUTH Authentication required.                        (c)
#   garbage   bytes that are not RESP                                 (c)
#   four      [1, 10, 9, 1000]                   (an array of 4)
#   five      [1, 10, 9, 1000, 0]                (script ABI v1's reply)
#   seven     [1, 10, 9, 1000, 0, 0, 0]
#   strings   ["1", "10", "9", "1000", "0", "0"] (bulk strings)
#   allowed2  [2, 10, 9, 1000, 0, 0]
#   retrypos  [1, 10, 9, 1000, 500, 0]           (retry > 0, remaining > 0)
#   overlimit [1, 10, 11, 1000, 0, 0]            (remaining > limit)
#   negative  [1, 10, 9, -1, 0, 0]
#   nested    [[1, 10, 9, 1000, 0, 0]]
#   nestedel  [1, 10, [9], 1000, 0, 0]
#   empty     []
#   nil       $-1 (a null bulk string)
#   nilarray  *-1 (a null array)
#   status    +OK
#   integer   :1
#   double    ,1.5 is not RESP2 either: a protocol error              (c)
#   silent    no answer, and the connection answers nothing more: a
#             hung server                                             (c)
#   trickle   a reply that never ends: "*6\r\n:1\r\n:1000\r\n:1\r\n:1000\r\n:"
#             and then "0", one byte every trickle_ms, trickle_max bytes
#             in all, then nothing; the connection answers nothing more (c)
#   huge      a bulk string announced as $100000000, its bytes sent in
#             chunks of huge_chunk every huge_ms, huge_max bytes in all,
#             then nothing; the connection answers nothing more       (c)
#
# Statistics (FAKESTATS, or $fake->stats): connections accepted, open,
# commands by name (SCRIPT also as script_load, script_exists, ...), the
# number of bad answers given; for the trickle and huge modes, MODE_closed
# (connections in that mode that the peer closed) and MODE_sent (bytes that
# had been written on the last of them when the peer closed it).

use strict;
use warnings;

use Digest::SHA qw(sha1_hex);
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes ();

my @started;
my $owner = $$;

my %ERRORS = (
    error      => '-ERR user_script:1: Script attempted to access nonexistent '
                  . 'global variable \'x\' script: fake, on @user_script:1.',
    busy       => '-BUSY Redis is busy running a script. You can only call '
                  . 'SCRIPT KILL or SHUTDOWN NOSAVE.',
    oom        => "-OOM command not allowed when used memory > 'maxmemory'.",
    readonly   => "-READONLY You can't write against a read only replica.",
    loading    => '-LOADING Redis is loading the dataset in memory',
    masterdown => '-MASTERDOWN Link with MASTER is down and '
                  . 'replica-serve-stale-data is set to \'no\'.',
    noauth     => '-NOAUTH Authentication required.',
);

my %STICKY = map { $_ => 1 } qw(readonly loading masterdown noauth garbage
                                double silent trickle huge);

sub ints { '*' . scalar(@_) . "\r\n" . join '', map { ":$_\r\n" } @_ }

sub bulk { my $s = shift; '$' . length($s) . "\r\n$s\r\n" }

my %SHAPES = (
    garbage   => "this is not RESP\r\n",
    four      => ints(1, 10, 9, 1000),
    five      => ints(1, 10, 9, 1000, 0),
    seven     => ints(1, 10, 9, 1000, 0, 0, 0),
    strings   => "*6\r\n" . join('', map { bulk($_) } 1, 10, 9, 1000, 0, 0),
    allowed2  => ints(2, 10, 9, 1000, 0, 0),
    retrypos  => ints(1, 10, 9, 1000, 500, 0),
    overlimit => ints(1, 10, 11, 1000, 0, 0),
    negative  => ints(1, 10, 9, -1, 0, 0),
    nested    => "*1\r\n" . ints(1, 10, 9, 1000, 0, 0),
    nestedel  => "*6\r\n:1\r\n:10\r\n" . ints(9)
                 . ":1000\r\n:0\r\n:0\r\n",
    empty     => "*0\r\n",
    nil       => "\$-1\r\n",
    nilarray  => "*-1\r\n",
    status    => "+OK\r\n",
    integer   => ":1\r\n",
    double    => ",1.5\r\n",
    silent    => '',
    trickle   => '',
    huge      => '',
);

# The modes whose answer is written slowly, by the server loop.
my %SLOW = (trickle => 1, huge => 1);

sub modes { (keys %ERRORS, keys %SHAPES) }

sub start {
    my ($class, %opt) = @_;

    my $listen = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1',
        LocalPort => $opt{port} // 0,
        Listen    => 128,
        ReuseAddr => 1,
        Proto     => 'tcp',
    ) or die "fake redis: cannot listen: $@";

    my $port = $listen->sockport;
    my $parent = $$;

    my $pid = fork;
    die "fake redis: fork: $!" unless defined $pid;

    if ($pid == 0) {
        my $ok = eval { serve($listen, $parent, \%opt); 1 };
        print STDERR "fake redis: $@" unless $ok;
        POSIX::_exit(0);
    }

    close $listen;

    my $self = bless { pid => $pid, port => $port }, $class;
    push @started, $self;
    return $self;
}

sub port { $_[0]->{port} }
sub pid  { $_[0]->{pid} }

sub stop {
    my ($self) = @_;

    my $pid = delete $self->{pid} or return;
    kill 'TERM', $pid;

    for (1 .. 50) {
        return if waitpid($pid, POSIX::WNOHANG()) == $pid;
        Time::HiRes::sleep(0.05);
    }

    kill 'KILL', $pid;
    waitpid $pid, 0;
}

# FAKESTATS as a hash.
sub stats {
    my ($self) = @_;

    require Test::RateLimit::Redis;
    my $r = Test::RateLimit::Redis->new(port => $self->{port});
    my $v = $r->cmd('FAKESTATS');
    return ref $v eq 'ARRAY' ? {@$v} : {};
}

END {
    if ($$ == $owner) {
        $_->stop for @started;
    }
}

# ------------------------------------------------------------ the server

sub serve {
    my ($listen, $parent, $opt) = @_;

    $SIG{TERM} = sub { POSIX::_exit(0) };
    $SIG{PIPE} = 'IGNORE';

    my $sel = IO::Select->new($listen);
    my (%conn, %scripts, %keys);
    my %stats = (connections => 0, open => 0, bad => 0);
    my $serial = 0;

    while (1) {
        # Stop with the test, whatever happens to it.
        POSIX::_exit(0) if getppid() != $parent;

        my $now = Time::HiRes::time();
        my $wait = 0.5;
        for my $cs (values %conn) {
            next unless $cs->{slow} && $cs->{slow}{left} > 0;
            my $d = $cs->{slow}{next} - $now;
            $wait = $d if $d < $wait;
        }
        $wait = 0 if $wait < 0;

        my @ready = $sel->can_read($wait);

        for my $fh (@ready) {
            if ($fh == $listen) {
                my $c = $listen->accept or next;
                binmode $c;
                $c->blocking(0);
                $conn{ fileno $c } = { fh => $c, id => ++$serial,
                                       buf => '', sticky => {} };
                $sel->add($c);
                $stats{connections}++;
                $stats{open}++;
                next;
            }

            my $cs = $conn{ fileno $fh } or next;
            my $n = sysread $fh, $cs->{buf}, 65536, length $cs->{buf};

            if (!$n) {
                next if !defined $n && $!{EAGAIN};
                close_conn($cs, $sel, \%conn, \%stats);
                next;
            }

            my $out = '';

            while (defined(my $cmd = parse_command(\$cs->{buf}))) {
                $out .= answer($cmd, $cs, \%scripts, \%keys, \%stats, $opt);
            }

            write_all($fh, $out) if length $out;
        }

        slow_write($_, $sel, \%conn, \%stats)
            for grep { $_->{slow} } values %conn;
    }
}

sub close_conn {
    my ($cs, $sel, $conn, $stats) = @_;

    my $fh = $cs->{fh};
    $sel->remove($fh);
    delete $conn->{ fileno $fh };
    close $fh;
    $stats->{open}-- unless $cs->{stats};

    if (my $slow = $cs->{slow}) {
        $stats->{"$slow->{mode}_closed"}++;
        $stats->{"$slow->{mode}_sent"} = $slow->{sent};
    }
}

# The next piece of a trickle or huge answer, when it is due: the answer's
# bytes are $slow->{head} and then $slow->{left} more copies of
# $slow->{byte}, written $slow->{chunk} bytes at a time (the head too).
sub slow_write {
    my ($cs, $sel, $conn, $stats) = @_;

    my $slow = $cs->{slow};
    return if ($slow->{left} <= 0 && !length $slow->{head})
        || Time::HiRes::time() < $slow->{next};

    my $piece;
    if (length $slow->{head}) {
        $piece = substr $slow->{head}, 0, $slow->{chunk};
    } else {
        my $n = $slow->{chunk} < $slow->{left} ? $slow->{chunk} : $slow->{left};
        $piece = $slow->{byte} x $n;
    }

    my $n = syswrite $cs->{fh}, $piece;

    if (!defined $n) {
        return if $!{EAGAIN};
        close_conn($cs, $sel, $conn, $stats);
        return;
    }

    $slow->{sent} += $n;
    if (length $slow->{head}) {
        substr $slow->{head}, 0, $n, '';
    } else {
        $slow->{left} -= $n;
    }
    $slow->{next} = Time::HiRes::time() + $slow->{every};
}

sub start_slow {
    my ($cs, $mode, $opt) = @_;

    $cs->{slow} = $mode eq 'trickle' ? {
        head  => "*6\r\n:1\r\n:1000\r\n:1\r\n:1000\r\n:",
        byte  => '0',
        chunk => 1,
        every => ($opt->{trickle_ms} // 100) / 1000,
        left  => $opt->{trickle_max} // 300,
    } : {
        head  => "\$100000000\r\n",
        byte  => 'x',
        chunk => $opt->{huge_chunk} // 8192,
        every => ($opt->{huge_ms} // 20) / 1000,
        left  => $opt->{huge_max} // 2 * 1024 * 1024,
    };

    $cs->{slow}{mode} = $mode;
    $cs->{slow}{sent} = 0;
    $cs->{slow}{next} = Time::HiRes::time();
}

sub write_all {
    my ($fh, $out) = @_;

    my $off = 0;
    my $deadline = Time::HiRes::time() + 5;

    while ($off < length $out && Time::HiRes::time() < $deadline) {
        my $n = syswrite $fh, $out, length($out) - $off, $off;

        if (!defined $n) {
            return unless $!{EAGAIN};
            IO::Select->new($fh)->can_write(0.1);
            next;
        }

        $off += $n;
    }
}

# One RESP array of bulk strings off the front of the buffer, or undef.
sub parse_command {
    my ($buf) = @_;

    return undef unless $$buf =~ /\A\*(\d+)\r\n/;

    my $pos = length($&);
    my @args;

    for (1 .. $1) {
        my $rest = substr $$buf, $pos;
        return undef unless $rest =~ /\A\$(\d+)\r\n/;
        my $len = $1;
        my $start = $pos + length($&);
        return undef if length($$buf) < $start + $len + 2;
        push @args, substr($$buf, $start, $len);
        $pos = $start + $len + 2;
    }

    substr $$buf, 0, $pos, '';
    return \@args;
}

sub answer {
    my ($cmd, $cs, $scripts, $keys, $stats, $opt) = @_;

    my $name = uc($cmd->[0] // '');
    $stats->{ lc $name }++;

    return '' if $cs->{mute} || ($opt->{mute} && $name ne 'FAKESTATS');

    $stats->{ 'script_' . lc $cmd->[1] }++
        if $name eq 'SCRIPT' && defined $cmd->[1];

    if ($name eq 'SCRIPT' && uc($cmd->[1] // '') eq 'EXISTS') {
        my @shas = @{$cmd}[2 .. $#$cmd];
        return ints(map { $scripts->{$_} ? 1 : 0 } @shas);
    }

    if ($name eq 'ROLE') {
        return "*5\r\n" . bulk('slave') . bulk('127.0.0.1') . ":6379\r\n"
               . bulk('connected') . ":1\r\n"
            if ($opt->{role} // 'master') eq 'slave';
        return "*3\r\n" . bulk('master') . ":0\r\n*0\r\n";
    }

    if ($name eq 'INFO') {
        my $v = $opt->{version} // '7.0.15';
        return bulk("# Server\r\nredis_version:$v\r\n"
                    . "redis_mode:standalone\r\nos:Linux\r\n"
                    . "tcp_port:6379\r\n");
    }

    if ($name eq 'SCRIPT' && uc($cmd->[1] // '') eq 'LOAD') {
        my $sha = sha1_hex($cmd->[2] // '');
        $scripts->{$sha} = 1;
        if ($opt->{bad_sha}) {
            # what it says it loaded is what SCRIPT EXISTS knows
            delete $scripts->{$sha};
            $sha = sha1_hex("different $sha");
            $scripts->{$sha} = 1;
        }
        return bulk($sha);
    }

    if ($name eq 'FAKESTATS') {
        # the asking connection is not counted
        if (!$cs->{stats}++) {
            $stats->{connections}--;
            $stats->{open}--;
        }

        my @kv = map { ($_, $stats->{$_}) } sort keys %$stats;
        return '*' . scalar(@kv) . "\r\n" . join '', map { bulk($_) } @kv;
    }

    if ($name eq 'FAKEFLUSH') {
        %$scripts = ();
        return "+OK\r\n";
    }

    return "+OK\r\n" if $name eq 'AUTH' || $name eq 'SELECT';
    return "+PONG\r\n" if $name eq 'PING';

    if ($name ne 'EVALSHA' && $name ne 'EVAL') {
        return "-ERR unknown command '$name'\r\n";
    }

    my $numkeys = $cmd->[2] // 0;
    my $key = $numkeys > 0 ? $cmd->[3] // '' : '';
    my ($client) = $key =~ /\{[^:{}]*:(.*)\}/s;
    $client //= '';
    (my $mode = $client) =~ s/\..*//s;

    if ($name eq 'EVALSHA' && $mode eq 'flushed' && !$keys->{$client}) {
        $keys->{$client} = { count => 0, conns => [] };
        %$scripts = ();
        $stats->{bad}++;
        return "-NOSCRIPT No matching script. Please use EVAL.\r\n";
    }

    if ($name eq 'EVALSHA') {
        if (!$scripts->{ $cmd->[1] // '' } || $mode eq 'noscript') {
            return "-NOSCRIPT No matching script. Please use EVAL.\r\n";
        }
    } else {
        $scripts->{ sha1_hex($cmd->[1] // '') } = 1;
    }

    my $ks = $keys->{$client} //= { count => 0, conns => [] };
    $ks->{count}++;

    push @{ $ks->{conns} }, $cs->{id}
        unless grep { $_ == $cs->{id} } @{ $ks->{conns} };

    return ints(0, 10, 0, 5000, 3000, 0) if $mode eq 'reject';

    my $bad = $ERRORS{$mode} ? "$ERRORS{$mode}\r\n" : $SHAPES{$mode};

    if (defined $bad && ($ks->{count} == 1 || $cs->{sticky}{$client})) {
        $cs->{sticky}{$client} = 1 if $STICKY{$mode};
        $cs->{mute} = 1 if $mode eq 'silent' || $SLOW{$mode};
        $stats->{bad}++;
        start_slow($cs, $mode, $opt) if $SLOW{$mode};
        return $bad;
    }

    # which of the key's connections this one is: 2 proves a new one
    my ($i) = grep { $ks->{conns}[$_] == $cs->{id} } 0 .. $#{ $ks->{conns} };

    # after the answer, one more that no command asked for
    my $extra = $mode eq 'extra' ? ":1\r\n"
              : $mode eq 'extraerr' ? "-ERR nobody asked\r\n" : '';

    return ints(1, 1000, $i + 1, 1000, 0, 0) . $extra;
}

1;
