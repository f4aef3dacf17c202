# The handler is the first of the access phase whatever the load_module
# order: with other dynamic access-phase modules loaded before and after
# this one.  t/module's fixture has no load order of its own, so NGINX
# runs its postconfiguration, which pushes its handler, in load_module
# order (as for many third-party modules): loaded after this one, its
# handler would run first unless ours moves itself.  Debian's
# libnginx-mod-http-auth-pam and libnginx-mod-http-lua (installed by
# ci/install-deps.sh) name a place among the static modules
# (ngx_module_order), so they are the packaged case.  The fixture's
# rl_test_deny answers its code, auth_pam answers 401 to a request
# without credentials and access_by_lua (not postponed: it stays where
# NGINX put it) refuses every request with 403, so a rate_limit that runs
# first counts the first request, which the other module then refuses,
# and rejects the second with 429; one that ran after would never be
# reached and every answer would be 401 or 403.
#
# A plain Test::More test: it starts its own nginx per order.

use strict;
use warnings;

use Test::More;
use Test::RateLimit::Instances;
use Test::RateLimit::Client qw(free_port http_get redis_cmd);

for my $var (qw(TEST_NGINX_REDIS_PORT TEST_NGINX_LOAD_MODULES)) {
    plan skip_all => "$var is not set (make test sets it)" unless $ENV{$var};
}

my $dir = '/usr/lib/nginx/modules';
my ($ndk, $lua, $pam) = map { "$dir/$_.so" }
    qw(ndk_http_module ngx_http_lua_module ngx_http_auth_pam_module);

for ($ndk, $lua, $pam) {
    # make test installs it (ci/install-deps.sh): missing is a failure
    ok(-f $_, "$_ is installed") or BAIL_OUT("$_ missing: run make test");
}

my $ours = $ENV{TEST_NGINX_LOAD_MODULES};
(my $fixture = $ours) =~ s{[^/]*$}{ngx_http_rl_test_access_module.so};
ok(-f $fixture, "$fixture is built (make test-module)")
    or BAIL_OUT("$fixture missing: run make test");

my @orders = (
    # name, modules, location's other access module, its status
    ['fixture loaded before', "$fixture $ours", 'rl_test_deny 418;', 418],
    ['fixture loaded after', "$ours $fixture", 'rl_test_deny 418;', 418],
    ['auth_pam loaded before', "$pam $ours", 'auth_pam "test";', 401],
    ['auth_pam loaded after', "$ours $pam", 'auth_pam "test";', 401],
    ['lua loaded before', "$ndk $lua $ours",
     'access_by_lua_block { ngx.exit(ngx.HTTP_FORBIDDEN) }', 403],
    ['lua loaded after', "$ours $ndk $lua",
     'access_by_lua_block { ngx.exit(ngx.HTTP_FORBIDDEN) }', 403],
    ['all, ours between', "$pam $fixture $ours $ndk $lua",
     'auth_pam "test"; rl_test_deny 418; '
     . 'access_by_lua_block { ngx.exit(403) }', qr/^(401|403|418)$/],
);

for my $o (@orders) {
    my ($name, $modules, $access, $status) = @$o;
    local $ENV{TEST_NGINX_LOAD_MODULES} = $modules;
    my $lua_conf = $modules =~ /lua/ ? 'access_by_lua_no_postpone on;' : '';

    my $port = free_port();
    my $nginx = Test::RateLimit::Instances::Nginx->start(
        name    => 'order',
        port    => $port,
        workers => 1,
        http    => <<"_EOC_",
    rate_limit_redis 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT};
    rate_limit_zone once key=\$arg_k rate=1r/m;
    $lua_conf
_EOC_
        server  => <<"_EOC_",
        location = /t {
            rate_limit once;
            $access
            add_header X-RL \$rate_limit_status always;
            empty_gif;
        }
_EOC_
    );

    redis_cmd('FLUSHALL');

    my @got = map {
        my $r = http_get('/t?k=order', port => $port);
        "$r->{status} " . ($r->{headers}{'x-rl'} // '-')
    } 1 .. 2;

    my ($first, $second) = @got;
    my ($code) = split / /, $first;
    ok((ref $status ? $code =~ $status : $code == $status)
       && $first =~ / PASSED$/ && $second eq '429 REJECTED',
       "$name: rate_limit decides first (got $first, $second)");

    my @bad = grep { /\[(alert|crit|emerg)\]|exited on signal/ }
        $nginx->error_log;
    is(scalar @bad, 0, "$name: no alert or crash") or diag @bad;
    ok($nginx->stop(10), "$name: stopped");
}

done_testing();
