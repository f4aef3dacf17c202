package Test::RateLimit::Exact;

# The exactness runs (t/090-exact.t, t/091-exact-costs.t): many keep-alive
# clients hammering running nginx instances at once, and the checks that
# the instances logged nothing bad and stop cleanly.
#
#   use Test::RateLimit::Exact;
#
#   my ($by, $npids, $took) = hammer(\@nginx, '/t?k=a', 16, 63);
#   hammer(\@nginx, ['/t?c=1', '/t?c=2'], 16, 63);  # paths in turn too
#   # $by->{"200 PASSED"}, $by->{"429 REJECTED"}, ...: counts by status
#   # and X-RL; $npids: the workers that answered (X-Pid); $took: seconds
#   instances_up(@nginx);        # 2 tests: up, and every worker connected
#   instances_clean(@nginx);     # 3 tests an instance, stops them
#
# The locations should send X-RL ($rate_limit_status) and X-Pid ($pid).

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time sleep);

use Test::RateLimit::Client qw(run_bg wait_bg);

use Exporter 'import';
our @EXPORT = qw(hammer instances_up instances_clean);

# One keep-alive client: connects, waits for the go, sends $n requests in
# turn, and prints its counts as "status x-rl pid" lines.
sub client {
    my ($port, $path, $n, $go, $go_w) = @_;

    return run_bg(sub {
        close $go_w;             # or the go would never come
        my $ka = Test::RateLimit::Client::KeepAlive->new(port => $port,
                                                          timeout => 10);
        my $buf;
        sysread $go, $buf, 1;    # the go: the parent closes the pipe

        my %count;
        for (1 .. $n) {
            my $r = $ka->get($path);
            my $k = $r->{status}
                ? join(' ', $r->{status}, $r->{headers}{'x-rl'} // '-',
                       $r->{headers}{'x-pid'} // '-')
                : "0 $r->{error} -";
            $count{$k}++;
            last unless $r->{status};
        }
        $ka->close;

        return join '', map { "$_ $count{$_}\n" } sort keys %count;
    });
}

# $clients clients spread over the instances in turn (and over the paths,
# when $path is a list), $per requests each, all let go at once.
sub hammer {
    my ($nginx, $path, $clients, $per) = @_;

    my @paths = ref $path ? @$path : ($path);
    pipe my $go_r, my $go_w or die "pipe: $!";
    my @bg = map {
        client($nginx->[$_ % @$nginx]->port, $paths[$_ % @paths], $per,
               $go_r, $go_w)
    } 0 .. $clients - 1;
    close $go_r;

    sleep 0.2;                   # every client connected
    my $start = time;
    close $go_w;

    my (%by_status, %pids);
    for my $bg (@bg) {
        for my $line (split /\n/, wait_bg($bg, 30)) {
            my ($status, $rl, $pid, $n) = split / /, $line;
            $by_status{"$status $rl"} += $n;
            $pids{$pid} = 1 if $pid ne '-';
        }
    }

    return (\%by_status, scalar keys %pids, time - $start);
}

# The instances listen, and the module's connections to Redis, one per
# worker of two workers an instance, are all made.
sub instances_up {
    my (@nginx) = @_;

    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $workers = 2 * @nginx;
    ok(1, scalar(@nginx) . ' instances up on ports '
       . join(', ', map { $_->port } @nginx));

    my $connected = Test::RateLimit::Client::wait_until(5, sub {
        my @c = grep { ($_->{cmd} // '') =~ /^(script|evalsha)/ }
            Test::RateLimit::Client::redis_clients();
        @c == $workers;
    });
    ok($connected, "$workers workers connected to Redis");
}

# No alert, crash or socket left while running, a graceful stop, none at
# shutdown either.
sub instances_clean {
    my (@nginx) = @_;

    local $Test::Builder::Level = $Test::Builder::Level + 1;
    for my $n (@nginx) {
        my @bad = grep {
            /\[(alert|crit|emerg)\]|exited on signal|open socket/
        } $n->error_log;
        is(scalar @bad, 0, 'instance ' . $n->{name} . ': no alert, crash '
           . 'or socket left while running') or diag @bad;

        ok($n->stop(10), 'instance ' . $n->{name} . ' stopped gracefully');

        @bad = grep {
            /\[(alert|crit|emerg)\]|exited on signal|open socket/
        } $n->error_log;
        is(scalar @bad, 0, 'instance ' . $n->{name} . ': none at shutdown')
            or diag @bad;
    }
}

1;
