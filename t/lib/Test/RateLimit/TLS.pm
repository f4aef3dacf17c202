package Test::RateLimit::TLS;

# TLS for the tests: whether the module under test was built with TLS
# (hiredis 1.x with its SSL library), certificates made with the openssl
# command, and a TLS-only redis-server on a loopback port of the test's.
#
#   use Test::RateLimit::TLS;
#   plan skip_all => '...' unless Test::RateLimit::TLS::built();
#   my $pki = Test::RateLimit::TLS::make_pki();   # { dir, ca, other_ca,
#                                                 #   server_cert, ... }
#   my $r = Test::RateLimit::TLS::start_redis($pki, auth_clients => 'no');
#
# Servers are Test::RateLimit::Instances::Redis: stopped by pid at END.

use strict;
use warnings;

use File::Temp ();
use Test::RateLimit::Client qw(free_port);
use Test::RateLimit::Instances;

my $openssl = 'openssl';

# 1 when nginx -t takes tls=on with the module under test, 0 when the
# module says it was built without TLS; dies on anything else.
sub built {
    my $dir = File::Temp::tempdir('rl-tls-probe-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);
    my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
    my $module = $ENV{TEST_NGINX_LOAD_MODULES}
        or die "TEST_NGINX_LOAD_MODULES is not set\n";

    mkdir "$dir/logs";
    open my $fh, '>', "$dir/nginx.conf" or die "$dir/nginx.conf: $!";
    print $fh <<"_EOC_";
load_module $module;
error_log $dir/logs/error.log;
pid $dir/logs/nginx.pid;
events { }
http { rate_limit_redis 127.0.0.1:1 tls=on tls_verify=off; }
_EOC_
    close $fh;

    my $out = `$nginx -t -p $dir -c $dir/nginx.conf 2>&1`;

    return 0 if $out =~ /built without it/;
    return 1 if $out =~ /test is successful/;
    die "cannot tell whether the module has TLS:\n$out";
}

sub run {
    my (@cmd) = @_;

    my $out = `@cmd 2>&1`;
    die "failed: @cmd\n$out" if $?;
    return $out;
}

# A CA signing a server certificate for 127.0.0.1 and localhost and a
# client certificate; a second CA that signed neither.
sub make_pki {
    my $d = File::Temp::tempdir('rl-tls-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my %p = (dir => $d);

    for my $ca (qw(ca other_ca)) {
        run($openssl, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
            '-days', '2', '-subj', "/CN=rl-test-$ca",
            '-keyout', "$d/$ca.key", '-out', "$d/$ca.crt");
        $p{$ca} = "$d/$ca.crt";
    }

    open my $ext, '>', "$d/server.ext" or die "$d/server.ext: $!";
    print $ext "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
               . "extendedKeyUsage=serverAuth\n";
    close $ext;

    open $ext, '>', "$d/client.ext" or die "$d/client.ext: $!";
    print $ext "extendedKeyUsage=clientAuth\n";
    close $ext;

    for my $who (qw(server client)) {
        run($openssl, 'req', '-newkey', 'rsa:2048', '-nodes',
            '-subj', "/CN=rl-test-$who",
            '-keyout', "$d/$who.key", '-out', "$d/$who.csr");
        run($openssl, 'x509', '-req', '-in', "$d/$who.csr",
            '-CA', "$d/ca.crt", '-CAkey', "$d/ca.key", '-CAcreateserial',
            '-days', '2', '-extfile', "$d/$who.ext", '-out', "$d/$who.crt");
        $p{"${who}_cert"} = "$d/$who.crt";
        $p{"${who}_key"} = "$d/$who.key";
    }

    # a key that belongs to no certificate here
    run($openssl, 'genrsa', '-out', "$d/stray.key", '2048');
    $p{stray_key} = "$d/stray.key";

    return \%p;
}

# A redis-server that speaks TLS only, on a port of its own.
sub start_redis {
    my ($pki, %opt) = @_;

    my $port = free_port();

    return Test::RateLimit::Instances::Redis->start(
        port => $port,
        args => ['--port', '0', '--tls-port', $port,
                 '--tls-cert-file', $pki->{server_cert},
                 '--tls-key-file', $pki->{server_key},
                 '--tls-ca-cert-file', $pki->{ca},
                 '--tls-auth-clients', $opt{auth_clients} // 'no'],
    );
}

1;
