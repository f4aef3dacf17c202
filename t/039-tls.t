# TLS to Redis (a build whose hiredis has its SSL library): certificates
# made by the test with openssl, TLS-only redis-servers on loopback ports
# of the test's own.  Verified by the CA given, refused with another CA or
# another name, accepted unverified with tls_verify=off, a client
# certificate presented where the server requires one, and every file
# read by nginx -t.  A build without TLS skips this file (t/039-tls-missing.t
# covers it).

use Test::RateLimit::Instances;
use Test::Nginx::Socket;
use Test::RateLimit::Client;
use Test::RateLimit::TLS;

plan skip_all => 'the module was built without TLS'
    unless Test::RateLimit::TLS::built();

our $Pki = Test::RateLimit::TLS::make_pki();
our $Open = Test::RateLimit::TLS::start_redis($Pki, auth_clients => 'no');
our $Mutual = Test::RateLimit::TLS::start_redis($Pki, auth_clients => 'yes');

$ENV{TEST_NGINX_TLS_PORT} = $Open->port;
$ENV{TEST_NGINX_MTLS_PORT} = $Mutual->port;
$ENV{"TEST_NGINX_TLS_\U$_"} = $Pki->{$_} for keys %$Pki;

repeat_each(1);

post_check_hook();

plan tests => 80;

no_long_string();
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value('config', <<'_EOC_')
    location = /open {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
_EOC_
        unless defined $block->config;

    $block->set_value('no_error_log', "[alert]\n[crit]\nsignal\n")
        unless defined $block->no_error_log;
});

run_tests();

__DATA__

=== TEST 1: verified against the CA given, by address: decided by Redis over TLS
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_TLS_PORT tls=on
                     tls_ca=$TEST_NGINX_TLS_CA timeout=1s;
    rate_limit_zone z key=$arg_k rate=1r/m burst=1;
--- request eval
["GET /open?k=a", "GET /open?k=a", "GET /open?k=a"]
--- error_code eval
[200, 200, 429]
--- response_headers eval
["X-RL: PASSED", "X-RL: PASSED", "X-RL: REJECTED"]
--- no_error_log eval
[qr/\[error\].*rate_limit: (redis|cannot)/, "[alert]"]



=== TEST 2: verified by name: tls_server_name=localhost
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_TLS_PORT tls=on
                     tls_ca=$TEST_NGINX_TLS_CA tls_server_name=localhost
                     timeout=1s;
    rate_limit_zone z key=$arg_k rate=1r/m;
--- request
GET /open?k=b
--- error_code: 200
--- response_headers
X-RL: PASSED



=== TEST 3: another CA: the certificate is refused, the fail policy, OpenSSL's reason logged
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_TLS_PORT tls=on
                     tls_ca=$TEST_NGINX_TLS_OTHER_CA timeout=300ms
                     connect_timeout=500ms;
    rate_limit_zone z key=$arg_k rate=1r/m;
--- request
GET /open?k=c
--- error_code: 200
--- response_headers
X-RL: ERROR
--- wait: 0.5
--- error_log eval
qr/\[error\].*rate_limit: redis "127\.0\.0\.1:\d+" closed the connection: .*certificate verify failed/



=== TEST 4: another name: refused as well
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_TLS_PORT tls=on
                     tls_ca=$TEST_NGINX_TLS_CA tls_server_name=redis.example.com
                     timeout=300ms connect_timeout=500ms;
    rate_limit_zone z key=$arg_k rate=1r/m;
--- request
GET /open?k=d
--- error_code: 200
--- response_headers
X-RL: ERROR
--- wait: 0.5
--- error_log eval
qr/\[error\].*rate_limit: redis .*closed the connection: .*certificate verify failed/



=== TEST 5: tls_verify=off takes any certificate
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_TLS_PORT tls=on tls_verify=off
                     tls_ca=$TEST_NGINX_TLS_OTHER_CA timeout=1s;
    rate_limit_zone z key=$arg_k rate=1r/m;
--- request
GET /open?k=e
--- error_code: 200
--- response_headers
X-RL: PASSED



=== TEST 6: a server that requires client certificates: refused without one
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_MTLS_PORT tls=on
                     tls_ca=$TEST_NGINX_TLS_CA timeout=300ms
                     connect_timeout=500ms;
    rate_limit_zone z key=$arg_k rate=1r/m;
--- request
GET /open?k=f
--- error_code: 200
--- response_headers
X-RL: ERROR
--- wait: 0.5
--- error_log eval
qr/\[error\].*rate_limit: (redis .*closed the connection|cannot connect)/



=== TEST 7: ... and decided with tls_cert and tls_key
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_MTLS_PORT tls=on
                     tls_ca=$TEST_NGINX_TLS_CA
                     tls_cert=$TEST_NGINX_TLS_CLIENT_CERT
                     tls_key=$TEST_NGINX_TLS_CLIENT_KEY timeout=1s;
    rate_limit_zone z key=$arg_k rate=1r/m;
--- request eval
["GET /open?k=g", "GET /open?k=g"]
--- error_code eval
[200, 429]
--- response_headers eval
["X-RL: PASSED", "X-RL: REJECTED"]



=== TEST 8: a plain Redis behind tls=on: the handshake fails within connect_timeout
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT tls=on
                     tls_verify=off timeout=200ms connect_timeout=300ms;
    rate_limit_zone z key=$arg_k rate=1r/m;
--- request
GET /open?k=h
--- error_code: 200
--- response_headers
X-RL: ERROR
--- response_headers_like
X-Time: ^0\.[0-4]\d\d$
--- config
    location = /open {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        add_header X-Time $request_time always;
        empty_gif;
    }



=== TEST 9: nginx -t: an unreadable tls_ca names the file
--- http_config
    rate_limit_redis 127.0.0.1:6379 tls=on tls_ca=/nonexistent/ca.crt;
--- must_die
--- error_log eval
qr/\[emerg\].*cannot read tls_ca "\/nonexistent\/ca\.crt"/



=== TEST 10: nginx -t: a key that does not belong to the certificate
--- http_config
    rate_limit_redis 127.0.0.1:6379 tls=on tls_ca=$TEST_NGINX_TLS_CA
                     tls_cert=$TEST_NGINX_TLS_CLIENT_CERT
                     tls_key=$TEST_NGINX_TLS_STRAY_KEY;
--- must_die
--- error_log eval
qr/\[emerg\].*tls_key "[^"]+" does not match tls_cert|cannot read tls_key/



=== TEST 11: nginx -t: tls_cert without tls_key
--- http_config
    rate_limit_redis 127.0.0.1:6379 tls=on
                     tls_cert=$TEST_NGINX_TLS_CLIENT_CERT;
--- must_die
--- error_log
"tls_cert=" and "tls_key=" go together



=== TEST 12: nginx -t: a tls parameter without tls=on
--- http_config
    rate_limit_redis 127.0.0.1:6379 tls_verify=off;
--- must_die
--- error_log
tls_* parameters need "tls=on"



=== TEST 13: nginx -t: tls=on on a unix socket
--- http_config
    rate_limit_redis unix:/tmp/redis.sock tls=on;
--- must_die
--- error_log
"tls=on" is for TCP addresses
