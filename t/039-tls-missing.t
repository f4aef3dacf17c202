# A build whose hiredis has no SSL library (hiredis 0.14 on Debian 12):
# tls=on is an nginx -t error that names what is missing; everything else
# works without it.  A build with TLS skips this file (t/039-tls.t).

use Test::Nginx::Socket;
use Test::RateLimit::TLS;

plan skip_all => 'the module was built with TLS'
    if Test::RateLimit::TLS::built();

repeat_each(1);

plan tests => 3;

no_long_string();

run_tests();

__DATA__

=== TEST 1: tls=on names the library this build lacks
--- http_config
    rate_limit_redis 127.0.0.1:6379 tls=on;
--- config
    location = /t { empty_gif; }
--- must_die
--- error_log
"tls=on" needs hiredis 1.0 or later with its SSL library (libhiredis_ssl); this module was built without it



=== TEST 2: tls=off is accepted, and so is no tls at all
--- http_config
    rate_limit_redis 127.0.0.1:6379 tls=off;
--- config
    location = /t { return 204; }
--- request
GET /t
--- error_code: 204
