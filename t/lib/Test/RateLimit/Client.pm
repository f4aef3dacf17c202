package Test::RateLimit::Client;

# HTTP clients and small helpers for the scenarios around a running nginx
# (Redis paused, restarted, flushed; clients that leave; reloads): what
# Test::Nginx's one-request-at-a-time model cannot express is done here, from
# a block's --- init or from a --- post_check section.
#
#   use Test::RateLimit::Client;
#
#   my $res = http_get('/t?k=a');          # Connection: close
#   $res->{status}, $res->{headers}{'x-rl'}, $res->{body}, $res->{elapsed}
#
#   my $ka = Test::RateLimit::Client::KeepAlive->new(port => $port);
#   my $res = $ka->get('/t');              # on one connection, in turn
#
#   my $sock = http_send('/t');            # the request sent, not read
#
#   post_check_hook();                     # runs "--- post_check" sections
#
#   my $info = redis_info('stats', port => $port);  # { field => value }
#   my $n = redis_calls('script|load', port => $port);  # INFO commandstats
#   my @pids = worker_pids($master_pid);   # the master's worker processes
#   my $kb = vm_rss($pid);                 # VmRSS in kB
#
# A "--- post_check" section is Perl code run after each response of the
# block, with $block, $body and $req_idx (the request's index in the block)
# set, Test::More's functions and this module's helpers at hand.  Its tests
# count in the plan.  It works the same under upstream Test::Nginx and t/lib.

use strict;
use warnings;

use Errno qw(EAGAIN EINTR EINPROGRESS);
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);

use Test::RateLimit::Redis;

use Exporter 'import';
our @EXPORT = qw(http_get http_send http_read redis redis_cmd
                 redis_pause redis_clients wait_until error_log_lines
                 log_count post_check_hook run_bg wait_bg free_port
                 redis_info redis_calls worker_pids vm_rss);

sub server_port {
    return $ENV{TEST_NGINX_SERVER_PORT} // 1984;
}

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1:0',
                                  ReuseAddr => 1)
        or die "free_port: $@";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# Sends a GET (Connection: close) and returns the socket unread.
sub http_send {
    my ($path, %opt) = @_;

    my $port = $opt{port} // server_port();
    my $deadline = time + 3;
    my $sock;

    # a slow machine may not listen yet right after the start
    until ($sock = IO::Socket::INET->new(
               PeerAddr => '127.0.0.1',
               PeerPort => $port,
               Proto    => 'tcp',
               Timeout  => 5))
    {
        die "http_send: cannot connect to 127.0.0.1:$port: $@"
            if time > $deadline || $@ !~ /refused/i;
        sleep 0.02;
    }

    binmode $sock;
    my $hdrs = join '', map { "$_\r\n" } @{ $opt{headers} // [] };
    my $conn = $opt{keepalive} ? '' : "Connection: close\r\n";
    my $req = "GET $path HTTP/1.1\r\nHost: localhost\r\n$conn$hdrs\r\n";
    syswrite $sock, $req;

    return $sock;
}

# Reads a whole Connection: close response.
sub http_read {
    my ($sock, %opt) = @_;

    my $timeout = $opt{timeout} // 5;
    my $start = $opt{start} // time;
    my $deadline = $start + $timeout;
    my $buf = '';
    my $sel = IO::Select->new($sock);

    while (1) {
        my $left = $deadline - time;
        return { status => 0, error => 'timeout', raw => $buf,
                 elapsed => time - $start }
            if $left <= 0;

        next unless $sel->can_read($left);

        my $n = sysread $sock, $buf, 65536, length $buf;
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN;
            return { status => 0, error => "$!", raw => $buf,
                     elapsed => time - $start };
        }

        last if $n == 0;
    }

    close $sock;

    my $res = parse_response($buf);
    $res->{elapsed} = time - $start;
    return $res;
}

sub http_get {
    my ($path, %opt) = @_;

    my $start = time;
    my $sock = eval { http_send($path, %opt) };
    return { status => 0, error => $@, elapsed => time - $start }
        unless $sock;

    return http_read($sock, %opt, start => $start);
}

sub parse_response {
    my ($buf) = @_;

    my $i = index $buf, "\r\n\r\n";
    return { status => 0, error => 'no header', raw => $buf } if $i < 0;

    my ($line, @lines) = split /\r\n/, substr($buf, 0, $i);
    my ($status) = $line =~ m{^HTTP/1\.[01] (\d{3})};

    my %h;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $h{ lc $k } = defined $h{ lc $k } ? "$h{lc $k}, $v" : $v;
    }

    return { status => $status // 0, headers => \%h,
             body => substr($buf, $i + 4), raw => $buf };
}

sub redis {
    my (%opt) = @_;
    return Test::RateLimit::Redis->new(
        port => $opt{port} // $ENV{TEST_NGINX_REDIS_PORT}, %opt);
}

# One command on a fresh connection.
sub redis_cmd {
    my @cmd = @_;
    my %opt;
    %opt = %{ shift @cmd } if ref $cmd[0] eq 'HASH';
    return redis(%opt)->cmd(@cmd);
}

# Pauses every client of the test Redis for $ms; returns at once.
sub redis_pause {
    my ($ms, %opt) = @_;
    my $v = redis_cmd(\%opt, 'CLIENT', 'PAUSE', $ms, 'ALL');
    die "CLIENT PAUSE: $v" if Test::RateLimit::Redis::is_error($v);
}

# The other clients of a Redis (CLIENT LIST less this connection), each a
# hash of CLIENT LIST's fields.
sub redis_clients {
    my (%opt) = @_;

    my $r = redis(%opt);
    my $me = $r->cmd('CLIENT', 'ID');
    my $list = $r->cmd('CLIENT', 'LIST');
    my @c;

    for my $line (split /\r?\n/, $list) {
        my %f = map { /^([^=]+)=(.*)$/ ? ($1, $2) : () } split / /, $line;
        push @c, \%f if defined $f{id} && $f{id} != $me;
    }

    return @c;
}

# INFO SECTION as a hash of its fields; conn => a Test::RateLimit::Redis
# object asks on that connection instead of a new one (a new connection
# counts in total_connections_received).
sub redis_info {
    my ($section, %opt) = @_;

    my $r = delete $opt{conn} // redis(%opt);
    my $v = $r->cmd('INFO', $section);
    die "INFO $section: $v\n" if Test::RateLimit::Redis::is_error($v);

    return { map { /^([^:#][^:]*):(.*?)\r?$/ ? ($1, $2) : () }
             split /\n/, $v };
}

# calls of one command in INFO commandstats (0 when it never ran);
# subcommands as Redis 7 names them, "script|load".
sub redis_calls {
    my ($cmd, %opt) = @_;

    my $info = redis_info('commandstats', %opt);
    my $v = $info->{"cmdstat_$cmd"} // '';
    return $v =~ /\bcalls=(\d+)/ ? $1 : 0;
}

# The worker processes of an nginx master, from /proc.
sub worker_pids {
    my ($master) = @_;

    my @pids;
    for my $dir (glob '/proc/[0-9]*') {
        my ($pid) = $dir =~ m{(\d+)$};
        open my $st, '<', "$dir/stat" or next;
        my $stat = <$st> // '';
        close $st;
        my ($ppid) = $stat =~ /\)\s+\S+\s+(\d+)/ or next;
        next unless $ppid == $master;

        open my $cl, '<', "$dir/cmdline" or next;
        my $cmd = <$cl> // '';
        push @pids, $pid if $cmd =~ /worker process/;
    }

    return sort { $a <=> $b } @pids;
}

# VmRSS of a process in kB, undef when it is gone.
sub vm_rss {
    my ($pid) = @_;

    open my $fh, '<', "/proc/$pid/status" or return undef;
    while (my $line = <$fh>) {
        return $1 if $line =~ /^VmRSS:\s+(\d+)\s+kB/;
    }
    return undef;
}

# Polls $cond every 20 ms for at most $secs; returns its last value.
sub wait_until {
    my ($secs, $cond) = @_;

    my $deadline = time + $secs;
    while (1) {
        my $v = $cond->();
        return $v if $v || time >= $deadline;
        sleep 0.02;
    }
}

sub error_log_lines {
    no warnings 'once';
    my $file = $Test::Nginx::Util::ErrLogFile;
    open my $fh, '<', $file or return ();
    return <$fh>;
}

sub log_count {
    my ($pat) = @_;
    return scalar grep { ref $pat ? /$pat/ : index($_, $pat) >= 0 }
        error_log_lines();
}

# Runs $code in a child process; wait_bg returns what it printed.
sub run_bg {
    my ($code) = @_;

    pipe my $r, my $w or die "pipe: $!";
    my $pid = fork;
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        close $r;
        my $out = eval { $code->() };
        $out = "died: $@" unless defined $out;
        syswrite $w, $out;
        close $w;
        POSIX::_exit(0);
    }

    close $w;
    return { pid => $pid, fh => $r };
}

sub wait_bg {
    my ($bg, $timeout) = @_;

    my $deadline = time + ($timeout // 30);
    my $out = '';
    my $sel = IO::Select->new($bg->{fh});

    while (time < $deadline) {
        next unless $sel->can_read($deadline - time);
        my $n = sysread $bg->{fh}, $out, 65536, length $out;
        last unless $n;
    }

    if (waitpid($bg->{pid}, POSIX::WNOHANG()) == 0) {
        kill 'KILL', $bg->{pid};
        waitpid $bg->{pid}, 0;
    }

    close $bg->{fh};
    return $out;
}

my $hooked;

sub post_check_hook {
    return if $hooked++;

    Test::Nginx::Socket::add_response_body_check(sub {
        my ($block, $body, $req_idx, $rep_idx, $dry_run) = @_;

        my $code = $block->post_check;
        return if !defined $code || $dry_run;

        my $sub = Test::RateLimit::Client::Check::compile($code);
        $sub->($block, $body, $req_idx);
    });
}


package Test::RateLimit::Client::KeepAlive;

use Errno qw(EAGAIN EINTR);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);

sub new {
    my ($class, %opt) = @_;

    my $port = $opt{port} // Test::RateLimit::Client::server_port();
    my $sock = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1',
        PeerPort => $port,
        Proto    => 'tcp',
        Timeout  => 5,
    ) or die "keepalive: cannot connect to 127.0.0.1:$port: $@";

    binmode $sock;
    return bless { sock => $sock, buf => '', timeout => $opt{timeout} // 5 },
        $class;
}

# One request; the response, or { status => 0, error => ... }.
sub get {
    my ($self, $path) = @_;

    my $start = time;
    my $req = "GET $path HTTP/1.1\r\nHost: localhost\r\n\r\n";
    my $n = syswrite $self->{sock}, $req;
    return { status => 0, error => "write: $!" } unless $n;

    my $res = $self->read_response;
    $res->{elapsed} = time - $start;
    return $res;
}

sub read_response {
    my ($self) = @_;

    my $deadline = time + $self->{timeout};
    my $sel = IO::Select->new($self->{sock});

    while (1) {
        my $i = index $self->{buf}, "\r\n\r\n";

        if ($i >= 0) {
            my ($len) = substr($self->{buf}, 0, $i)
                =~ /\r\ncontent-length:\s*(\d+)/i;
            $len //= 0;

            if (length $self->{buf} >= $i + 4 + $len) {
                my $raw = substr $self->{buf}, 0, $i + 4 + $len, '';
                return Test::RateLimit::Client::parse_response($raw);
            }
        }

        my $left = $deadline - time;
        return { status => 0, error => 'timeout' } if $left <= 0;
        next unless $sel->can_read($left);

        my $n = sysread $self->{sock}, $self->{buf}, 65536,
                        length $self->{buf};
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN;
            return { status => 0, error => "read: $!" };
        }
        return { status => 0, error => 'closed' } if $n == 0;
    }
}

sub close { close $_[0]->{sock} }


package Test::RateLimit::Client::Check;

# --- post_check code is compiled here: Test::More and the helpers at hand.

use Test::More;
use Time::HiRes qw(time sleep);

Test::RateLimit::Client->import;

my %compiled;

sub compile {
    my ($code) = @_;

    return $compiled{$code} //= do {
        my $sub = eval "sub { my (\$block, \$body, \$req_idx) = \@_;\n"
                       . "#line 1 post_check\n$code\n}";
        die "post_check does not compile: $@" unless $sub;
        $sub;
    };
}

1;
