package Test::RateLimit::Sentinel;

# Sentinels for the tests: N sentinel processes on loopback ports of the
# test's own, monitoring one master, each with a config file of its own
# (a sentinel rewrites it).  The server binary ci/test.sh runs
# (redis-server, valkey-server in `make matrix`) in --sentinel mode.
# Stopped by pid at END.
#
#   my $group = Test::RateLimit::Sentinel->start(master => $port, n => 3);
#   $group->ports;                 # the sentinels' ports
#   $group->master_addr;           # "127.0.0.1:PORT" as they say now

use strict;
use warnings;

use File::Temp ();
use POSIX ();
use Time::HiRes qw(time sleep);
use Test::RateLimit::Client qw(free_port);
use Test::RateLimit::Redis;
use Test::RateLimit::Instances;

my @running;
my $owner = $$;

sub start {
    my ($class, %opt) = @_;

    my $self = bless {
        name  => $opt{name} // 'rl',
        dir   => File::Temp::tempdir('rl-sentinel-XXXXXX', TMPDIR => 1,
                                     CLEANUP => 1),
        pids  => [],
        ports => [],
    }, $class;

    my $server = $ENV{TEST_NGINX_REDIS_SERVER} || 'redis-server';

    for my $i (1 .. ($opt{n} // 3)) {
        my $port = free_port();
        my $conf = "$self->{dir}/sentinel-$i.conf";

        open my $fh, '>', $conf or die "$conf: $!";
        print $fh <<"_EOC_";
port $port
bind 127.0.0.1
dir $self->{dir}
logfile $self->{dir}/sentinel-$i.log
sentinel monitor $self->{name} 127.0.0.1 $opt{master} 2
sentinel down-after-milliseconds $self->{name} 1000
sentinel failover-timeout $self->{name} 3000
_EOC_
        close $fh;

        my $pid = fork;
        die "fork: $!" unless defined $pid;

        if ($pid == 0) {
            open STDOUT, '>', '/dev/null';
            open STDERR, '>', '/dev/null';
            { exec $server, $conf, '--sentinel' }
            POSIX::_exit(127);
        }

        push @{ $self->{pids} }, $pid;
        push @{ $self->{ports} }, $port;
    }

    push @running, $self;

    for my $port (@{ $self->{ports} }) {
        my $deadline = time + 5;
        until (Test::RateLimit::Instances::port_open($port)) {
            die "sentinel did not start on port $port\n" if time > $deadline;
            sleep 0.05;
        }
    }

    return $self;
}

sub ports { @{ $_[0]->{ports} } }

sub name { $_[0]->{name} }

# The master's address as the first sentinel that answers says it.
sub master_addr {
    my ($self) = @_;

    for my $port ($self->ports) {
        my $r = eval {
            Test::RateLimit::Redis->new(port => $port, timeout => 1)
                ->cmd('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', $self->{name})
        };
        return "$r->[0]:$r->[1]" if ref $r eq 'ARRAY';
    }

    return '';
}

# Tells a sentinel to fail over now.
sub failover {
    my ($self) = @_;

    my $r = Test::RateLimit::Redis->new(port => $self->{ports}[0])
        ->cmd('SENTINEL', 'FAILOVER', $self->{name});
    die "SENTINEL FAILOVER: " . (ref $r ? $r->message : $r) . "\n"
        unless defined $r && !ref $r && $r eq 'OK';
}

sub stop {
    my ($self) = @_;

    kill 'TERM', @{ $self->{pids} };
    waitpid $_, 0 for @{ $self->{pids} };
    $self->{pids} = [];
}

END {
    if ($$ == $owner) {
        $_->stop for reverse @running;
    }
}

1;
