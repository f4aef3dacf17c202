package Test::RateLimit::Instances;

# Extra servers a test starts and stops itself, each by its pid: a private
# redis-server (to kill and restart), and whole nginx instances with their
# own prefix, configuration and master process (t/090-exact.t).
#
#   use Test::RateLimit::Instances;
#
#   my $redis = Test::RateLimit::Instances::Redis->start(port => $port);
#   $redis->kill('KILL');  $redis->restart;  $redis->stop;
#
#   my $nginx = Test::RateLimit::Instances::Nginx->start(
#       name => 'a', port => $port, workers => 2, http => $http_conf,
#       server => $server_conf);
#   $nginx->error_log;  $nginx->stop;
#
# Everything still running when the test ends is stopped at END (only in
# the process that started it).

use strict;
use warnings;

use File::Path qw(make_path remove_tree);
use File::Temp ();
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);

my $owner = $$;
my @running;

sub wait_exit {
    my ($pid, $secs) = @_;

    my $deadline = time + $secs;
    while (time < $deadline) {
        my $w = waitpid $pid, POSIX::WNOHANG();
        return 1 if $w == $pid || $w == -1;
        sleep 0.02;
    }
    return 0;
}

sub port_open {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 1);
    return defined $s;
}

END {
    if ($$ == $owner) {
        $_->stop for reverse @running;
    }
}


package Test::RateLimit::Instances::Redis;

use POSIX ();
use Time::HiRes qw(time sleep);

sub start {
    my ($class, %opt) = @_;

    my $self = bless {
        port => $opt{port} // die('port is required'),
        dir  => $opt{dir} // File::Temp::tempdir('rl-redis-XXXXXX',
                                                TMPDIR => 1, CLEANUP => 1),
        args => $opt{args} // [],
    }, $class;

    $self->restart;
    push @running, $self;
    return $self;
}

sub port { $_[0]->{port} }
sub pid  { $_[0]->{pid} }

# Starts it (again) on the same port; returns once it answers.
sub restart {
    my ($self) = @_;

    die "redis-server already running\n" if $self->{pid};

    my $pid = fork;
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        # the server ci/test.sh runs (valkey-server in `make matrix`)
        my $server = $ENV{TEST_NGINX_REDIS_SERVER} || 'redis-server';
        { exec $server, '--bind', '127.0.0.1',
               '--port', $self->{port}, '--save', '', '--appendonly', 'no',
               '--dir', $self->{dir}, '--daemonize', 'no',
               '--logfile', "$self->{dir}/redis.log", @{ $self->{args} } }
        POSIX::_exit(127);
    }

    $self->{pid} = $pid;

    my $deadline = time + 5;
    until (Test::RateLimit::Instances::port_open($self->{port})) {
        die "redis-server did not start on port $self->{port}\n"
            if time > $deadline || waitpid($pid, POSIX::WNOHANG()) == $pid;
        sleep 0.02;
    }
}

# Sends a signal; KILL and TERM also reap it.
sub kill {
    my ($self, $sig) = @_;

    my $pid = $self->{pid} or return;
    CORE::kill $sig, $pid;

    if ($sig eq 'KILL' || $sig eq 'TERM') {
        Test::RateLimit::Instances::wait_exit($pid, 5);
        delete $self->{pid};
    }
}

sub stop {
    my ($self) = @_;

    my $pid = $self->{pid} or return;
    CORE::kill 'CONT', $pid;
    CORE::kill 'TERM', $pid;
    if (!Test::RateLimit::Instances::wait_exit($pid, 5)) {
        CORE::kill 'KILL', $pid;
        waitpid $pid, 0;
    }
    delete $self->{pid};
}


package Test::RateLimit::Instances::Nginx;

use File::Path qw(make_path);
use POSIX ();
use Time::HiRes qw(time sleep);

# name, port, workers, master (default 1), reuseport, http (text inside
# http{}), server (inside server{}), main (top level); the module from
# TEST_NGINX_LOAD_MODULES.
sub start {
    my ($class, %opt) = @_;

    my $binary = $ENV{TEST_NGINX_BINARY} || 'nginx';
    my $prefix = File::Temp::tempdir("rl-nginx-$opt{name}-XXXXXX",
                                     TMPDIR => 1, CLEANUP => 1);
    make_path("$prefix/logs", "$prefix/conf", "$prefix/html", "$prefix/tmp");

    my $modules = join '', map { "load_module $_;\n" }
        grep { length } split /\s+/, $ENV{TEST_NGINX_LOAD_MODULES} // '';
    my $user = $> == 0 ? "user root;\n" : '';
    my $workers = $opt{workers} // 2;

    my $conf = <<"_EOC_";
$modules$user
worker_processes $workers;
daemon off;
master_process @{[ ($opt{master} // 1) ? 'on' : 'off' ]};
pid logs/nginx.pid;
error_log logs/error.log info;
@{[ $opt{main} // '' ]}

events {
    worker_connections 1024;
    accept_mutex off;
}

http {
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    keepalive_requests 100000;

@{[ $opt{http} // '' ]}

    server {
        listen 127.0.0.1:$opt{port}@{[ $opt{reuseport} ? ' reuseport' : '' ]};
        server_name localhost;

@{[ $opt{server} // '' ]}
    }
}
_EOC_

    open my $fh, '>', "$prefix/conf/nginx.conf" or die "$prefix: $!";
    print $fh $conf;
    close $fh;

    my $pid = fork;
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        open STDOUT, '>', "$prefix/logs/stdout.log";
        open STDERR, '>&', \*STDOUT;
        { exec $binary, '-p', "$prefix/", '-c', 'conf/nginx.conf',
               '-e', 'logs/error.log' }
        POSIX::_exit(127);
    }

    my $self = bless { pid => $pid, prefix => $prefix, port => $opt{port},
                       name => $opt{name} }, $class;

    my $deadline = time + 10;
    until (Test::RateLimit::Instances::port_open($opt{port})) {
        if (time > $deadline || waitpid($pid, POSIX::WNOHANG()) == $pid) {
            delete $self->{pid};
            die "nginx $opt{name} did not start:\n" . $self->startup_errors;
        }
        sleep 0.02;
    }

    push @running, $self;
    return $self;
}

sub port   { $_[0]->{port} }
sub pid    { $_[0]->{pid} }
sub prefix { $_[0]->{prefix} }

sub startup_errors {
    my ($self) = @_;
    my $out = '';
    for my $f ('logs/stdout.log', 'logs/error.log') {
        open my $fh, '<', "$self->{prefix}/$f" or next;
        local $/;
        $out .= <$fh> // '';
    }
    return $out;
}

sub error_log {
    my ($self) = @_;
    open my $fh, '<', "$self->{prefix}/logs/error.log" or return ();
    return <$fh>;
}

# Graceful stop (QUIT); TERM, then KILL, if it takes longer than $secs.
sub stop {
    my ($self, $secs) = @_;

    my $pid = $self->{pid} or return 1;
    CORE::kill 'QUIT', $pid;

    my $ok = Test::RateLimit::Instances::wait_exit($pid, $secs // 10);
    if (!$ok) {
        CORE::kill 'TERM', $pid;
        if (!Test::RateLimit::Instances::wait_exit($pid, 5)) {
            CORE::kill 'KILL', $pid;
            waitpid $pid, 0;
        }
    }

    delete $self->{pid};
    return $ok;
}

1;
