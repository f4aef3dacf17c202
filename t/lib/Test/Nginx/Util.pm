package Test::Nginx::Util;

# Server side of the t/lib runner: settings, nginx.conf, starting and
# stopping nginx, the per-block driver and the embedded TCP server.
# Written for this project to behave like openresty's Test::Nginx for the
# parts our suites use; see t/lib/README.md for what is supported.

use strict;
use warnings;

our $VERSION = '0.33';

use base 'Exporter';

use Carp qw(croak);
use Config ();
use Cwd ();
use Errno ();
use File::Path qw(make_path remove_tree);
use File::Spec ();
use File::Temp ();
use IO::Select ();
use IO::Socket::INET ();
use IO::Socket::UNIX ();
use List::Util qw(shuffle);
use POSIX qw(:sys_wait_h SIGKILL SIGQUIT SIGTERM);
use Scalar::Util qw(looks_like_number);
use Socket qw(SOCK_STREAM);
use Time::HiRes qw(sleep time);
use Time::Local qw(timegm);
use Test::More ();

our @EXPORT = qw(
    add_block_preprocessor add_cleanup_handler add_test_cleanup_handler
    bail_out check_accum_error_log config_preamble env_to_nginx
    error_log_data access_log_data expand_env_in_text
    get_pid_from_pidfile html_dir is_running is_str log_level master_off
    master_on master_process_enabled no_long_string no_nginx_manager
    no_root_location no_shuffle parse_time repeat_each run_tests
    server_addr server_name server_port server_port_for_client
    server_root sleep_time timeout use_hup verbose worker_connections
    workers
    $ServerAddr $ServerName $ServerPort $ServerPortForClient $ServRoot
    $ConfFile $PidFile $ErrLogFile $AccLogFile $HtmlDir $LogDir
    $NginxBinary $NginxVersion $RepeatEach $NoLongString
    $RunTestHelper $CheckErrorLog $CheckShutdownErrorLog
);

# ---------------------------------------------------------------- settings

sub find_default_binary {
    for my $dir (split /\Q$Config::Config{path_sep}\E/, $ENV{PATH} || '') {
        next if $dir eq '';
        my $path = File::Spec->catfile($dir, 'nginx');
        return $path if -f $path && -x _;
    }
    return '/usr/sbin/nginx';
}

our $NginxBinary = $ENV{TEST_NGINX_BINARY} || find_default_binary();
our $ServerAddr = '127.0.0.1';
our $ServerName = 'localhost';
our $ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT}
                  || 1984;
our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;
our $RepeatEach = 1;
our $Workers = 1;
our $WorkerConnections = 64;
our $LogLevel = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $Timeout = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $TestNginxSleep = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $NoShuffle = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $LoadModules = $ENV{TEST_NGINX_LOAD_MODULES};
our $ForceRestartOnTest = defined $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST}
                          ? $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST} : 1;
our $CheckAccumErrLog = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $NoCleanup = $ENV{TEST_NGINX_NO_CLEAN};
our $Verbose = $ENV{TEST_NGINX_VERBOSE};
our $EventType = $ENV{TEST_NGINX_EVENT_TYPE};
our $NoNginxManager = $ENV{TEST_NGINX_NO_NGINX_MANAGER} || 0;
our $NoRootLocation = 0;
our $NoLongString;
our $ConfigPreamble = '';
our @EnvToNginx;
our @BlockPreprocessors;
our @CleanupHandlers;
our @TestCleanupHandlers;

our $ServRoot = File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT}
                                    || 't/servroot');
$ServRoot =~ s{/+$}{};
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $LogDir     = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $ConfFile   = "$ConfDir/nginx.conf";
our $PidFile    = "$LogDir/nginx.pid";
our $CacheDir   = "$ServRoot/cache";

# Set by Test::Nginx::Socket: the per-repetition request runner and the
# log checks.
our $RunTestHelper;
our $CheckErrorLog;
our $CheckShutdownErrorLog;

our $NginxVersion;
our $NginxRawVersion;
our $ErrLogFilePos = 0;
our $PrevBlock;
our $PrevConfig;
our $RandPorts = {};
our $TcpServerPid;
our $InSubprocess;
our $StartedNginx;

for my $mode (qw(TEST_NGINX_USE_VALGRIND TEST_NGINX_USE_HUP
                 TEST_NGINX_CHECK_LEAK TEST_NGINX_BENCHMARK
                 TEST_NGINX_USE_STAP TEST_NGINX_USE_HTTP2
                 TEST_NGINX_USE_HTTP3 TEST_NGINX_RANDOMIZE))
{
    if ($ENV{$mode}) {
        warn "WARNING: $mode is not supported by the t/lib runner "
             . "(use upstream Test::Nginx for it); ignored\n";
    }
}

# ------------------------------------------------------- setter functions

sub repeat_each (@) { $RepeatEach = shift if @_; return $RepeatEach }
sub workers (@) { $Workers = shift if @_; return $Workers }
sub worker_connections (@) {
    $WorkerConnections = shift if @_;
    return $WorkerConnections;
}
sub log_level (@) { $LogLevel = shift if @_; return $LogLevel }
sub timeout (@) { $Timeout = shift if @_; return $Timeout }
sub master_on () { $MasterProcessEnabled = 'on' }
sub master_off () { $MasterProcessEnabled = 'off' }
sub master_process_enabled (@) {
    if (@_) {
        $MasterProcessEnabled = shift() ? 'on' : 'off';
        return;
    }
    return $MasterProcessEnabled;
}
sub no_shuffle () { $NoShuffle = 1 }
sub no_long_string () { $NoLongString = 1 }
sub no_root_location () { $NoRootLocation = 1 }
sub no_nginx_manager () { $NoNginxManager = 1 }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub config_preamble ($) { $ConfigPreamble = shift }
sub sleep_time { return $TestNginxSleep }
sub verbose { return $Verbose }
sub html_dir () { return $HtmlDir }
sub server_root () { return $ServRoot }

sub server_addr (@) { $ServerAddr = shift if @_; return $ServerAddr }
sub server_name (@) { $ServerName = shift if @_; return $ServerName }
sub server_port (@) { $ServerPort = shift if @_; return $ServerPort }
sub server_port_for_client (@) {
    $ServerPortForClient = shift if @_;
    return $ServerPortForClient;
}

sub use_hup () {
    bail_out("use_hup() (HUP reload mode) is not supported by the t/lib "
             . "runner; run the suite under upstream Test::Nginx");
}

sub env_to_nginx (@) {
    croak "env_to_nginx: no arguments specified" unless @_;
    for my $v (@_) {
        croak "env_to_nginx: bad argument value: $v\n"
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

sub add_block_preprocessor (&) {
    # Upstream runs the last added preprocessor first.
    unshift @BlockPreprocessors, shift;
}

sub add_cleanup_handler ($) { unshift @CleanupHandlers, shift }
sub add_test_cleanup_handler ($) { unshift @TestCleanupHandlers, shift }

# ---------------------------------------------------------------- helpers

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }

    if ($NoLongString || !defined $got || !defined $expected
        || (length($got) < 80 && length($expected) < 80
            && $got !~ /\n./ && $expected !~ /\n./))
    {
        return Test::More::is($got, $expected, $desc);
    }

    # Long values: say where they first differ instead of dumping both.
    my $ok = Test::More::ok($got eq $expected, $desc);
    if (!$ok) {
        my $i = 0;
        my $max = length($got) < length($expected)
                  ? length($got) : length($expected);
        $i++ while $i < $max && substr($got, $i, 1) eq substr($expected, $i, 1);
        my $show = sub {
            my $s = substr(shift, $i, 50);
            $s =~ s/([\0-\037\177])/sprintf('\\x%02x', ord $1)/ge;
            return qq{"$s"};
        };
        Test::More::diag("strings differ at offset $i (lengths: got "
                         . length($got) . ", expected " . length($expected)
                         . ")\n    got: " . $show->($got)
                         . "\n    expected: " . $show->($expected));
    }
    return $ok;
}

sub parse_time ($) {
    my $tm = shift;
    return undef unless defined $tm;
    $tm =~ s/^\s+|\s+$//g;
    if ($tm =~ s/([^_a-zA-Z])ms$/$1/) {
        $tm = $tm / 1000;
    } else {
        $tm =~ s/([^_a-zA-Z])s$/$1/;
    }
    return $tm;
}

# A daemonized nginx is not our child: once it exits it stays a zombie until
# init reaps it, which can take a while; a zombie counts as gone.
sub is_running ($) {
    my $pid = shift;
    return 0 unless $pid;
    return 0 unless kill(0, $pid);
    if (open my $in, '<', "/proc/$pid/stat") {
        my $stat = <$in> // '';
        close $in;
        return 0 if $stat =~ /^\d+ \(.*\) [ZX] /s;
    }
    return 1;
}

sub gen_rand_port ($) {
    my $used = shift;
    for (1 .. 1000) {
        my $port = int(rand 63547) + 1988;
        next if $used->{$port};
        my $sock = IO::Socket::INET->new(
            LocalAddr => $ServerAddr,
            LocalPort => $port,
            Proto     => 'tcp',
            Listen    => 5,
            ReuseAddr => 1,
        );
        if ($sock) {
            close $sock;
            return $port;
        }
    }
    return undef;
}

sub expand_env_in_text ($$$) {
    my ($text, $name, $rand_ports) = @_;
    return undef unless defined $text;
    $rand_ports ||= $RandPorts;

    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        my $value;
        if ($var =~ /^TEST_NGINX_RAND_PORT_[0-9]+$/) {
            if (!defined $rand_ports->{$var}) {
                my %used = ($ServerPort => 1,
                            map { $_ => 1 } values %$rand_ports);
                my $port = gen_rand_port(\%used);
                defined $port
                    or bail_out("$name - Cannot find an available listening "
                                . "port number for $var.\n");
                $rand_ports->{$var} = $port;
            }
            $value = $rand_ports->{$var};
        } else {
            defined $ENV{$var}
                or bail_out("$name - No environment $var defined.\n");
            $value = $ENV{$var};
        }
        $value;
    }ge;

    return $text;
}

sub read_lines_from ($$) {
    my ($file, $pos_ref) = @_;
    open my $in, '<', $file or return [];
    seek $in, $$pos_ref, 0 if $pos_ref && $$pos_ref > 0;
    my @lines = <$in>;
    $$pos_ref = tell($in) if $pos_ref;
    close $in;
    return \@lines;
}

# The error.log lines written since the previous call (the whole file with
# check_accum_error_log()).  The short sleep lets log-phase lines, written
# after the response was sent, reach the file.
sub error_log_data () {
    sleep $TestNginxSleep * 3;
    return read_lines_from($ErrLogFile, undef) if $CheckAccumErrLog;
    return read_lines_from($ErrLogFile, \$ErrLogFilePos);
}

sub access_log_data () {
    sleep $TestNginxSleep * 3;
    return read_lines_from($AccLogFile, undef);
}

# ---------------------------------------------------------- nginx process

sub get_nginx_version () {
    my $out = `$NginxBinary -V 2>&1`;
    if (!defined $out || $? != 0) {
        bail_out("Failed to run \"$NginxBinary -V\": " . ($out // ''));
    }
    if ($out =~ m{nginx[^/]*/(\d+)\.(\d+)\.(\d+)}s
        || $out =~ m{\w+/(\d+)\.(\d+)\.(\d+)}s)
    {
        $NginxRawVersion = "$1.$2.$3";
        return sprintf("%d.%03d%03d", $1, $2, $3);
    }
    bail_out("Failed to parse the output of \"$NginxBinary -V\": $out");
}

sub get_pid_from_pidfile ($) {
    my $name = shift;
    open my $in, '<', $PidFile or return undef;
    my $pid = do { local $/; <$in> };
    close $in;
    return undef unless defined $pid;
    $pid =~ s/\s+//g;
    return $pid =~ /^\d+$/ ? $pid : undef;
}

# Only signal a process that is an nginx started on our server root: a stale
# pid file must never make us signal an unrelated process (or the system's
# nginx).
sub is_our_nginx ($) {
    my $pid = shift;
    return 0 unless is_running($pid);
    my $cmdline_file = "/proc/$pid/cmdline";
    if (open my $in, '<', $cmdline_file) {
        my $cmd = do { local $/; <$in> };
        close $in;
        $cmd //= '';
        $cmd =~ s/\0/ /g;
        return index($cmd, $ServRoot) >= 0 ? 1 : 0;
    }
    return 1;
}

sub wait_gone ($$) {
    my ($pid, $secs) = @_;
    my $deadline = time + $secs;
    while (is_running($pid)) {
        waitpid($pid, WNOHANG);
        return 0 if time > $deadline;
        sleep 0.02;
    }
    return 1;
}

# Stop the nginx whose pid is in our pid file: QUIT (a graceful stop, so
# exit-time log lines can be checked), then KILL to the process group after
# timeout() seconds.
sub stop_nginx ($) {
    my $name = shift;
    return unless -f $PidFile;

    my $pid = get_pid_from_pidfile($name);
    if (!$pid || !is_running($pid)) {
        unlink $PidFile;
        return;
    }

    if (!is_our_nginx($pid)) {
        warn "WARNING: $name - pid $pid in $PidFile is not an nginx "
             . "running on $ServRoot; not signalling it\n";
        unlink $PidFile;
        return;
    }

    kill($ENV{TEST_NGINX_FAST_SHUTDOWN} ? SIGTERM : SIGQUIT, $pid);

    if (!wait_gone($pid, timeout())) {
        warn "$name - timeout when waiting for nginx (pid $pid) to exit; "
             . "killing it\n";
        my $pgrp = getpgrp($pid);
        if (defined $pgrp && $pgrp == $pid) {
            kill(SIGKILL, -$pid);
        } else {
            kill(SIGKILL, $pid);
        }
        wait_gone($pid, 2);
    }

    unlink $PidFile if -f $PidFile;
}

sub stop_tcp_server () {
    return unless defined $TcpServerPid;
    my $pid = $TcpServerPid;
    undef $TcpServerPid;
    kill(SIGTERM, $pid);
    my $deadline = time + 2;
    while (waitpid($pid, WNOHANG) == 0) {
        if (time > $deadline) {
            kill(SIGKILL, $pid);
            waitpid($pid, 0);
            last;
        }
        sleep 0.01;
    }
}

sub cleanup () {
    $_->() for @CleanupHandlers;
    stop_tcp_server();
}

sub setup_server_root () {
    if (-d $ServRoot) {
        # Only what we create: never wipe a directory we do not own.
        remove_tree($ConfDir, $LogDir, $HtmlDir, $CacheDir,
                    glob("$ServRoot/*_temp"), glob("$ServRoot/*_cache"));
    }
    for my $dir ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        next if -d $dir;
        make_path($dir) or bail_out("Failed to create directory $dir: $!");
    }
    open my $out, '>', "$HtmlDir/index.html"
        or bail_out("Can't open $HtmlDir/index.html for writing: $!");
    print $out '<html><head><title>It works!</title></head>'
               . '<body>It works!</body></html>';
    close $out;
}

sub run_post_setup_server_root ($) {
    my $block = shift;
    my $code = $block->post_setup_server_root;
    return unless $code;
    eval $code;
    bail_out($block->name . " - post_setup_server_root failed: $@") if $@;
}

sub write_user_files ($) {
    my $block = shift;
    my $name = $block->name;
    my $files = $block->user_files;
    return unless $files;

    if (!ref $files) {
        my @list;
        for my $line (split /^/m, $files) {
            if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
                push @list, [$1, undef, $2];
            } elsif (@list) {
                $list[-1][1] .= $line;
            }
        }
        $files = \@list;
    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - wrong value type: ", ref $files,
                 ", only scalar or ARRAY are accepted");
    }

    for my $file (@$files) {
        my ($fname, $body, $date) = @$file;
        $body = '' unless defined $body;
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        if ($path =~ m{(.*)/}) {
            my $dir = $1;
            if (!-d $dir) {
                make_path($dir)
                    or bail_out("$name - Cannot create directory $dir");
            }
        }
        $body = expand_env_in_text($body, $name, $RandPorts);
        open my $out, '>', $path
            or bail_out("$name - Cannot open $path for writing: $!");
        binmode $out;
        print $out $body;
        close $out;

        if ($date) {
            # touch -t format, in GMT: [[CC]YY]MMDDhhmm[.ss]
            $date =~ s/\s+$//;
            if ($date =~ /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(?:\.(\d\d))?$/) {
                my $t = timegm($6 // 0, $5, $4, $3, $2 - 1, $1);
                utime $t, $t, $path;
            } else {
                bail_out("$name - bad user_files date: $date");
            }
        }
    }
}

sub write_config_file ($$) {
    my ($block, $config) = @_;
    my $name = $block->name;

    my $http_config = expand_env_in_text($block->http_config, $name,
                                         $RandPorts) // '';
    my $main_config = $block->main_config // '';
    if ($LoadModules) {
        my @mods = map { "load_module $_;" } grep { length } split /\s+/,
                   $LoadModules;
        $main_config = join(' ', @mods, $main_config) if @mods;
    }
    $main_config = expand_env_in_text($main_config, $name, $RandPorts);
    my $post_main_config = expand_env_in_text($block->post_main_config,
                                              $name, $RandPorts) // '';
    my $err_log_file = expand_env_in_text($block->error_log_file
                                          || $ErrLogFile, $name, $RandPorts);
    my $server_name = $block->server_name // $ServerName;
    (my $quoted_server_name = $server_name) =~ s/(['\\])/\\$1/g;
    $config //= '';

    my $nginx_v = `$NginxBinary -V 2>&1` // '';
    my @temp;
    push @temp, "client_body_temp_path $ServRoot/client_body_temp;"
        unless $http_config =~ /\bclient_body_temp_path\b/;
    push @temp, "proxy_temp_path $ServRoot/proxy_temp;"
        unless $http_config =~ /\bproxy_temp_path\b/;
    for my $m (qw(fastcgi scgi uwsgi)) {
        push @temp, "${m}_temp_path $ServRoot/${m}_temp;"
            unless $nginx_v =~ /--without-http_${m}_module/
                   || $http_config =~ /\b${m}_temp_path\b/;
    }
    my $temp_paths = join "\n    ", @temp;

    my $env = join '', map {
        my $v = $_;
        $v = "'$v'" if $v =~ /\s/;
        "env $v;\n";
    } qw(LD_PRELOAD LD_LIBRARY_PATH ASAN_OPTIONS), @EnvToNginx;

    my $root_location = $NoRootLocation ? '' : <<_EOC_;
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    my $use_events = $EventType ? "    use $EventType;\n" : '';
    my $user = $> == 0 ? "user root;\n" : '';

    open my $out, '>', $ConfFile
        or bail_out("Can't open $ConfFile for writing: $!");
    print $out <<_EOC_;
worker_processes  $Workers;
daemon on;
master_process $MasterProcessEnabled;
error_log $err_log_file $LogLevel;
pid       $PidFile;
$env
$main_config

http {
    access_log $AccLogFile;
    $temp_paths

    default_type text/plain;
    keepalive_timeout  68000ms;

$http_config
    server {
        listen          $ServerAddr:$ServerPort;
        server_name     '$quoted_server_name';
        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }
}

$post_main_config

events {
    accept_mutex off;
    worker_connections  $WorkerConnections;
$use_events}
$user
_EOC_
    close $out;
}

# Runs the nginx binary on our nginx.conf (it daemonizes) and waits for the
# command to return; returns (exec_failed, exit_code, core_dumped, status).
sub run_nginx_binary ($) {
    my $block = shift;
    my @cmd = ($NginxBinary);
    push @cmd, '-e', $ErrLogFile if $NginxVersion >= 1.019005;
    push @cmd, '-p', "$ServRoot/", '-c', $ConfFile;

    warn "starting nginx: @cmd\n" if $Verbose;

    # The child reports a failed exec through a close-on-exec pipe.
    pipe(my $rd, my $wr) or bail_out($block->name . " - pipe() failed: $!");
    my $pid = fork();
    bail_out($block->name . " - fork() failed: $!") unless defined $pid;
    if ($pid == 0) {
        close $rd;
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null' if defined $block->suppress_stderr;
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        syswrite $wr, "exec $cmd[0]: $!";
        POSIX::_exit(127);
    }
    close $wr;
    my $exec_err = do { local $/; <$rd> };
    close $rd;
    waitpid($pid, 0);
    my $status = $?;

    if (defined $exec_err && length $exec_err) {
        warn "$exec_err\n";
        return (1, undef, 0, $status);
    }
    return (0, $status >> 8, $status & 128, $status);
}

# After a successful start the daemon writes its pid file a moment later;
# wait for it so that nginx can always be stopped by pid.
sub wait_pid_file ($) {
    my $name = shift;
    my $deadline = time + timeout();
    while (time < $deadline) {
        my $pid = get_pid_from_pidfile($name);
        return $pid if $pid && is_running($pid);
        sleep 0.01;
    }
    return undef;
}

sub log_says_address_in_use () {
    my $lines = read_lines_from($ErrLogFile, undef);
    return scalar grep { /\[emerg\].*Address already in use/ } @$lines;
}

sub last_emerg_line () {
    my $lines = read_lines_from($ErrLogFile, undef);
    my @emerg = grep { /\[(?:emerg|alert)\]/ } @$lines;
    return @emerg ? $emerg[-1] : '';
}

# --------------------------------------------------------- the TCP server

sub start_tcp_server ($$$) {
    my ($block, $target, $query_file) = @_;
    my $name = $block->name;

    my $reply = $block->tcp_reply;
    if (!defined $reply && !defined $block->tcp_shutdown) {
        bail_out("$name - no --- tcp_reply specified but --- tcp_listen "
                 . "is specified");
    }

    my $req_len = $block->tcp_query_len;
    if (defined $block->tcp_query && !defined $req_len) {
        $req_len = length $block->tcp_query;
    }

    my ($sock, $err);
    for my $try (1 .. 30) {
        if ($target =~ /^\d+$/) {
            $sock = IO::Socket::INET->new(
                LocalHost => '127.0.0.1',
                LocalPort => $target,
                Proto     => 'tcp',
                ReuseAddr => 1,
                Listen    => 5,
            );
        } elsif ($target =~ m{\S+\.sock$}) {
            unlink $target if -e $target;
            $sock = IO::Socket::UNIX->new(
                Local  => $target,
                Type   => SOCK_STREAM,
                Listen => 5,
            );
        } else {
            bail_out("$name - bad tcp_listen target: $target");
        }
        last if $sock;
        $err = $!;
        last unless $err =~ /address already in use/i;
        warn "WARNING: failed to create the tcp listening socket: $err\n";
        sleep 1;
    }
    bail_out("$name - failed to create the tcp listening socket: $err")
        unless $sock;

    my $pid = fork();
    bail_out("$name - fork() failed: $!") unless defined $pid;

    if ($pid) {
        $TcpServerPid = $pid;
        return $sock;
    }

    # The child: serve one connection, then exit without running any END
    # block or Test::Builder ending.
    $InSubprocess = 1;
    Test::More->builder->no_ending(1);
    $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
    local $| = 1;

    my $client;
    until ($client = $sock->accept()) {
        warn "WARNING: $name - TCP server: failed to accept: $!\n"
            unless $!{EINTR};
        sleep $TestNginxSleep;
    }

    my ($no_read, $no_write);
    if (defined $block->tcp_shutdown) {
        my $how = $block->tcp_shutdown;
        sleep $block->tcp_shutdown_delay if $block->tcp_shutdown_delay;
        $client->shutdown($how);
        if ($how == 0 || $how == 2) {
            $no_read = 1;
        } else {
            $no_write = 1;
        }
    }

    my $buf = '';
    unless ($no_read) {
        my $auto = $block->tcp_query_auto_timeout;
        my $wait = 0.1;
        $wait = $auto + 0 if defined $auto && $auto ne '';
        my $select = IO::Select->new($client);
        while (1) {
            if (defined $auto) {
                last unless $select->can_read($wait);
            }
            my $chunk = '';
            my $ret = $client->sysread($chunk, 4096);
            if (!defined $ret) {
                next if $!{EINTR};
                warn "WARNING: $name - TCP server: failed to receive: $!\n";
                last;
            }
            $buf .= $chunk;
            if ($query_file) {
                # Written as it arrives; rename is atomic.
                if (open my $out, '>', "$query_file.tmp") {
                    print $out $buf;
                    close $out;
                    rename "$query_file.tmp", $query_file;
                }
            }
            last if $ret == 0;
            next if defined $auto;
            last if !$req_len || length($buf) >= $req_len;
        }
    }

    my $delay = parse_time($block->tcp_reply_delay);
    sleep $delay if $delay;

    if (!$no_write && defined $reply) {
        if (ref $reply eq 'CODE') {
            $reply = $reply->($buf);
        }
        my @parts = ref $reply eq 'ARRAY' ? @$reply : ($reply);
        for my $part (@parts) {
            next unless defined $part;
            my $off = 0;
            while ($off < length $part) {
                my $n = $client->syswrite($part, length($part) - $off, $off);
                if (!defined $n) {
                    next if $!{EINTR};
                    warn "WARNING: tcp server failed to send reply: $!\n";
                    last;
                }
                $off += $n;
            }
        }
    }

    if (defined $block->tcp_no_close) {
        sleep 1 while 1;
    }

    close $client;
    close $sock;
    POSIX::_exit(0);
}

sub run_tcp_server_tests ($$$) {
    my ($block, $tcp_socket, $query_file) = @_;
    return unless defined $tcp_socket;
    my $name = $block->name;

    my $buf = '';
    if ($query_file && open my $in, '<', $query_file) {
        $buf = do { local $/; <$in> } // '';
        close $in;
    }

    if (defined $block->tcp_query) {
        is_str($buf, $block->tcp_query, "$name - tcp_query ok");
    }
    if (defined $block->tcp_query_len) {
        Test::More::is(length($buf), $block->tcp_query_len,
                       "$name - TCP query length ok");
    }
}

# ------------------------------------------------------- the block driver

our %Unsupported = map { $_ => 1 } qw(
    http2 http3 curl_protocol curl_options curl_error
    stap stap_out stap_out_like stap_out_unlike
    udp_listen udp_reply udp_reply_delay udp_query
    response_body_filters response_body_json_sort
    skip_nginx2 skip_openssl skip_slave todo todo_nginx
    quic_max_idle_timeout
);

sub check_unsupported ($) {
    my $block = shift;
    for my $section (@{ $block->{_section_order}[0] || [] }) {
        if ($Unsupported{$section}) {
            bail_out($block->name . " - section \"--- $section\" is not "
                     . "supported by the t/lib runner; run this suite under "
                     . "upstream Test::Nginx");
        }
    }
}

sub check_prev_block_shutdown_error_log () {
    my $block = $PrevBlock;
    return unless defined $block;
    undef $PrevBlock;
    if (defined $block->shutdown_error_log
        || defined $block->no_shutdown_error_log)
    {
        $CheckShutdownErrorLog->($block, $NoCleanup ? 'TEST_NGINX_NO_CLEAN'
                                                    : 0);
    }
}

sub run_tests () {
    srand($$ ^ int(time * 1000));
    $NginxVersion = get_nginx_version();

    $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort
        unless defined $ENV{TEST_NGINX_SERVER_PORT};

    for my $sig (qw(INT TERM HUP)) {
        if (!$SIG{$sig} || $SIG{$sig} eq 'DEFAULT') {
            $SIG{$sig} = sub { warn "caught SIG$sig, stopping nginx\n";
                               exit 1 };
        }
    }

    my @blocks = Test::Base::blocks();
    @blocks = shuffle @blocks unless $NoShuffle;

    for my $block (@blocks) {
        $_->($block) for @BlockPreprocessors;
        $block->set_value('name', "$0 " . $block->name);
        check_unsupported($block);
        run_test($block);
        $_->($block) for @TestCleanupHandlers;
        $PrevBlock = $block;
    }

    cleanup();
}

sub skip_info ($) {
    my $block = shift;
    my $name = $block->name;

    if (defined(my $spec = $block->skip_eval)) {
        if ($spec =~ /^\s*(\d+)\s*:\s*(.*)/s) {
            my ($n, $code) = ($1, $2);
            my $skip = eval $code;
            bail_out("$name - skip_eval - failed to eval the Perl code "
                     . "\"$code\": $@") if $@;
            return ($n, 'skip_eval') if $skip;
        }
    }

    if (defined(my $spec = $block->skip_nginx)) {
        if ($spec =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)
                      (?:\s*:\s*(.*))?\s*$/x)
        {
            my ($n, $op, $reason) = ($1, $2, $6);
            my $ver = sprintf("%d.%03d%03d", $3, $4, $5);
            my %cmp = ('<'  => sub { $_[0] < $_[1] },
                       '<=' => sub { $_[0] <= $_[1] },
                       '>'  => sub { $_[0] > $_[1] },
                       '>=' => sub { $_[0] >= $_[1] });
            if ($cmp{$op}->($NginxVersion, $ver)) {
                return ($n, $reason || "nginx version $op $3.$4.$5");
            }
        } else {
            bail_out("$name - Invalid --- skip_nginx spec: $spec");
        }
    }

    return;
}

sub start_nginx_for_block ($$$) {
    my ($block, $config, $must_die) = @_;
    my $name = $block->name;

    stop_nginx($name);
    check_prev_block_shutdown_error_log();

    setup_server_root();
    run_post_setup_server_root($block);
    write_user_files($block);
    write_config_file($block, $config);

    $ErrLogFilePos = 0;

    if (defined $must_die) {
        for my $i (0 .. $RepeatEach - 1) {
            my ($exec_failed, $exit_code, $core, $status)
                = run_nginx_binary($block);

            if ($exec_failed) {
                Test::More::fail("$name - failed to execute the nginx "
                                 . "command line");
            } elsif ($core) {
                Test::More::fail("$name - nginx core dumped");
            } elsif (looks_like_number($must_die)) {
                Test::More::is($must_die, $exit_code,
                               "$name - die with the expected exit code");
            } else {
                Test::More::isnt($status, 0, "$name - die as expected");
            }

            $CheckErrorLog->($block, undef, 0, $i, 0);

            if ($status == 0) {
                $StartedNginx = 1;
                warn "WARNING: $name - nginx must die but it does not; "
                     . "killing it (req $i)\n";
                wait_pid_file($name);
                stop_nginx($name);
            }
        }
        return 0;
    }

    my $waited = 0;
    my $tries = 0;
    while (1) {
        my ($exec_failed, $exit_code, $core, $status)
            = run_nginx_binary($block);
        last if $status == 0;

        # Another nginx (a previous run, another suite) may still hold the
        # port for a moment: retry that for up to 30 s like upstream does.
        # Any other failure is final at once.
        if (!$exec_failed && log_says_address_in_use() && $waited < 30) {
            my $delay = 0.1 * ++$tries;
            $delay = 1 if $delay > 1;
            sleep $delay;
            $waited += $delay;
            next;
        }

        bail_out("$name - Cannot start nginx using \"$NginxBinary\" "
                 . "(status code $status): " . last_emerg_line());
    }

    $StartedNginx = 1;
    if (!wait_pid_file($name)) {
        warn "WARNING: $name - nginx started but $PidFile did not appear\n";
    }
    sleep $TestNginxSleep;
    return 1;
}

sub run_test ($) {
    my $block = shift;
    my $name = $block->name;

    $RandPorts = {};
    my $config = expand_env_in_text($block->config, $name, $RandPorts);

    local $LogLevel = $LogLevel;
    $LogLevel = $block->log_level if $block->log_level;

    my $must_die = $block->must_die;

    my ($tests_to_skip, $skip_reason) = skip_info($block);

    my $should_restart = 1;
    if (!defined $config) {
        if (!$NoNginxManager && !defined $PrevConfig) {
            bail_out("$name - No '--- config' section specified and could "
                     . "not get previous one. Use TEST_NGINX_NO_NGINX_MANAGER ?");
        }
        # Like upstream: a block without a config reuses the running nginx.
        $should_restart = 0;
    } elsif ($NoNginxManager) {
        $should_restart = 0;
    } elsif (defined $PrevConfig && $config eq $PrevConfig
             && !$ForceRestartOnTest)
    {
        $should_restart = 0;
    }

    if ($should_restart && !$tests_to_skip) {
        $PrevConfig = $config;
        return unless start_nginx_for_block($block, $config, $must_die);
    }

    if ($block->init) {
        eval $block->init;
        bail_out("$name - init failed: $@") if $@;
    }

    $ErrLogFilePos = 0;

    for my $i (1 .. $RepeatEach) {
        my ($tcp_socket, $query_file);
        if (defined $block->tcp_listen) {
            my $target = expand_env_in_text($block->tcp_listen, $name,
                                            $RandPorts);
            $target =~ s/^\s+|\s+$//g;
            if (defined $block->tcp_query
                || defined $block->tcp_query_len)
            {
                (undef, $query_file) = File::Temp::tempfile(
                    'tcp_query_XXXXXX', TMPDIR => 1, OPEN => 0);
            }
            $tcp_socket = start_tcp_server($block, $target, $query_file);
        }

        write_user_files($block) if $i > 1;

        if ($tests_to_skip) {
            SKIP: {
                Test::More::skip("$name - $skip_reason", $tests_to_skip);
            }
        } else {
            $RunTestHelper->($block, 0, $i - 1);
            run_tcp_server_tests($block, $tcp_socket, $query_file);
        }

        if (defined $tcp_socket) {
            stop_tcp_server();
            close $tcp_socket;
            if ($block->tcp_listen =~ m{\S+\.sock\s*$}) {
                (my $path = $block->tcp_listen) =~ s/^\s+|\s+$//g;
                unlink $path;
            }
        }
        if ($query_file) {
            unlink $query_file, "$query_file.tmp";
        }
    }
}

END {
    return if $InSubprocess;
    local $?;
    cleanup();
    if ($StartedNginx && !$NoCleanup) {
        stop_nginx('END');
    }
    check_prev_block_shutdown_error_log() if $CheckShutdownErrorLog;
}

1;
