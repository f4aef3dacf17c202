# The handshake's AUTH and SELECT, and the unix socket address: a right
# password (the test's second Redis requires one), a wrong or missing one
# (the fail policy; the log says AUTH was refused and never holds the
# password), an ACL user with username= and password=, db=N (the key lands
# in that database), and unix:PATH.

use Test::Nginx::Socket;
use Test::RateLimit::Client;
use Test::RateLimit::Helpers qw(set_defaults open_closed_config quiet_log);
use Test::RateLimit::Redis;

our $User = 'rl-acl-user';
our $UserPass = 'rl-acl-pass-Zq7';

# An ACL user of our own on the main test Redis, limited to the module's
# keys; removed at the end.
{
    my $v = redis_cmd('ACL', 'SETUSER', $User, 'reset', 'on', ">$UserPass",
                      '~rl:*', '+@all');
    die "ACL SETUSER: $v" if Test::RateLimit::Redis::is_error($v);
}

END { eval { redis_cmd('ACL', 'DELUSER', $User) } }

$ENV{TEST_NGINX_ACL_USER} = $User;
$ENV{TEST_NGINX_ACL_PASSWORD} = $UserPass;

# The password-protected server, authenticated.
sub main::auth_redis {
    my $r = redis(port => $ENV{TEST_NGINX_REDIS_AUTH_PORT});
    my $v = $r->cmd('AUTH', $ENV{TEST_NGINX_REDIS_PASSWORD});
    die "AUTH: $v" if Test::RateLimit::Redis::is_error($v);
    return $r;
}

sub main::keys_in_db {
    my ($db) = @_;
    my $r = redis();
    $r->cmd('SELECT', $db);
    return sort @{ $r->cmd('KEYS', '*') };
}

# Once-only counts in fresh databases: no repetition.
repeat_each(1);

post_check_hook();

plan tests => 64;

no_long_string();
no_shuffle();

add_block_preprocessor(sub {
    set_defaults(shift,
        config => open_closed_config(),
        no_error_log => quiet_log());
});

run_tests();

__DATA__

=== TEST 1: the right password: decided, the key is in the protected server
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_AUTH_PORT
                     password=$TEST_NGINX_REDIS_PASSWORD;
    rate_limit_zone z key=$arg_k rate=10r/m;
--- init
main::auth_redis()->cmd('FLUSHALL');
--- request
GET /open?k=pw
--- error_code: 200
--- response_headers
X-RL: PASSED
--- post_check
is_deeply([ map { @$_ } main::auth_redis()->cmd('KEYS', '*') ], ['rl:{z:pw}:g'],
          'the key is in the protected server');
--- no_error_log
[error]
[alert]
signal



=== TEST 2: a wrong password, fail open: ERROR; AUTH refused, password never logged
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_AUTH_PORT
                     password=not-the-Secret-91;
    rate_limit_zone z key=$arg_k rate=10r/m;
--- request
GET /open?k=pw
--- error_code: 200
--- response_headers
X-RL: ERROR
--- post_check
ok(wait_until(2, sub { log_count(qr/\[error\].*rate_limit: redis "127\.0\.0\.1:\d+" refused AUTH: WRONGPASS/) }),
   'the log says AUTH was refused');
is(log_count('not-the-Secret-91'), 0, 'the password is in no log line');



=== TEST 3: a wrong password, fail closed: 503
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_AUTH_PORT
                     password=not-the-Secret-92;
    rate_limit_zone z key=$arg_k rate=10r/m;
--- request
GET /closed?k=pw
--- error_code: 503
--- response_headers
X-RL: ERROR
--- post_check
is(log_count('not-the-Secret-92'), 0, 'the password is in no log line');



=== TEST 4: no password for a server that wants one: NOAUTH, fail policy
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_AUTH_PORT;
    rate_limit_zone z key=$arg_k rate=10r/m;
--- request
GET /closed?k=pw
--- error_code: 503
--- response_headers
X-RL: ERROR
--- post_check
# the handshake's first command after the missing AUTH
ok(wait_until(2, sub { log_count(qr/\[error\].*rate_limit: redis "127\.0\.0\.1:\d+" refused ROLE: NOAUTH/) }),
   'the log says ROLE was refused for want of AUTH');



=== TEST 5: an ACL user: username= and password= decide; the key is in db 0
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT
                     username=$TEST_NGINX_ACL_USER
                     password=$TEST_NGINX_ACL_PASSWORD;
    rate_limit_zone z key=$arg_k rate=10r/m;
--- init
main::redis_cmd("FLUSHALL");
--- request
GET /open?k=acl
--- error_code: 200
--- response_headers
X-RL: PASSED
--- post_check
is_deeply([ main::keys_in_db(0) ], ['rl:{z:acl}:g'], 'the key is in db 0');
ok(scalar(grep { $_->{user} eq $main::User } redis_clients()),
   'the module is connected as the ACL user');
--- no_error_log
[error]
[alert]
signal



=== TEST 6: an ACL user with a wrong password: WRONGPASS, fail closed
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT
                     username=$TEST_NGINX_ACL_USER password=wrong-Pass-93;
    rate_limit_zone z key=$arg_k rate=10r/m;
--- request
GET /closed?k=acl
--- error_code: 503
--- response_headers
X-RL: ERROR
--- post_check
ok(wait_until(2, sub { log_count(qr/refused AUTH: WRONGPASS/) }),
   'the log says AUTH was refused');
is(log_count('wrong-Pass-93'), 0, 'the password is in no log line');



=== TEST 7: db=5: the key lands in database 5 and nowhere else
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT db=5;
    rate_limit_zone z key=$arg_k rate=10r/m;
--- init
main::redis_cmd("FLUSHALL");
--- request
GET /open?k=db5
--- error_code: 200
--- response_headers
X-RL: PASSED
--- post_check
is_deeply([ main::keys_in_db(5) ], ['rl:{z:db5}:g'], 'the key is in db 5');
is_deeply([ main::keys_in_db(0) ], [], 'db 0 is empty');
--- no_error_log
[error]
[alert]
signal



=== TEST 8: an ACL user and db=3 together
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT db=3
                     username=$TEST_NGINX_ACL_USER
                     password=$TEST_NGINX_ACL_PASSWORD;
    rate_limit_zone z key=$arg_k rate=10r/m;
--- init
main::redis_cmd("FLUSHALL");
--- request eval
["GET /open?k=both", "GET /open?k=both"]
--- response_headers eval
["X-RL: PASSED\nX-RateLimit-Remaining: 0", "X-RL: REJECTED"]
--- error_code eval
[200, 429]
--- post_check
is_deeply([ main::keys_in_db(3) ], ['rl:{z:both}:g'], "the key is in db 3 (req $req_idx)");
--- no_error_log
[alert]
signal



=== TEST 9: a unix socket address
--- http_config
    rate_limit_redis unix:$TEST_NGINX_REDIS_SOCKET db=2;
    rate_limit_zone z key=$arg_k rate=10r/m;
--- init
main::redis_cmd("FLUSHALL");
--- request
GET /open?k=unix
--- error_code: 200
--- response_headers
X-RL: PASSED
--- post_check
is_deeply([ main::keys_in_db(2) ], ['rl:{z:unix}:g'], 'the key is in db 2');
my @unix = grep { $_->{addr} =~ m{^/} || $_->{addr} =~ /sock/ } redis_clients();
is(scalar @unix, 1, "one client on the unix socket ($unix[0]{addr})");
--- no_error_log
[error]
[alert]
signal
