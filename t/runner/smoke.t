# Smoke test of the Test::Nginx::Socket-compatible runner with stock nginx
# directives only.  Runs unchanged under t/lib and under upstream
# Test::Nginx:   prove -I t/lib t/runner/smoke.t

# Own server root and port unless told otherwise, so that this can run
# while the suites of t/ use t/servroot and port 1984.
BEGIN {
    require File::Temp;
    require IO::Socket::INET;
    $ENV{TEST_NGINX_SERVROOT} ||= File::Temp::tempdir('rl-smoke-XXXXXX',
        TMPDIR => 1, CLEANUP => 1) . '/servroot';
    if (!$ENV{TEST_NGINX_SERVER_PORT}) {
        for (1 .. 100) {
            my $port = 20000 + int rand 30000;
            my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                LocalPort => $port, Listen => 1, ReuseAddr => 1) or next;
            close $s;
            $ENV{TEST_NGINX_SERVER_PORT} = $port;
            last;
        }
    }
}

use Test::Nginx::Socket;

repeat_each(2);

plan tests => repeat_each() * 23 + 1;

no_long_string();

run_tests();

__DATA__

=== TEST 1: return with a body, a header and the default status check
--- config
    location = /t {
        add_header X-Test yes;
        return 200 "hello\n";
    }
--- request
GET /t
--- response_body
hello
--- response_headers
X-Test: yes
!X-Missing
--- no_error_log
[error]
[alert]



=== TEST 2: status, body like, header like, raw header like
--- config
    location = /t {
        add_header X-Num 12345 always;
        return 404 "not here, port $server_port\n";
    }
--- request
GET /t?a=1
--- error_code: 404
--- response_body_like: ^not here, port \d+$
--- response_headers_like
X-Num: \d+
--- raw_response_headers_like: ^HTTP/1\.1 404 Not Found\r\n



=== TEST 3: several requests in one block, array expectations, more_headers
--- config
    location = /a { return 200 "a:$http_x_key\n"; }
    location = /b { return 403; }
    location = /c { empty_gif; }
--- more_headers
X-Key: k1
--- request eval
["GET /a", "GET /b", "GET /c"]
--- error_code eval
[200, 403, 200]
--- response_headers eval
["Content-Type: text/plain", "", "Content-Type: image/gif"]
--- no_error_log
[alert]



=== TEST 4: a file from user_files, POST body, error_log seen
--- config
    location = /f.txt {
        root html;
    }
    location = /post {
        error_page 405 = /f.txt;
    }
--- user_files
>>> f.txt
file body
--- request
GET /f.txt
--- response_body
file body
--- error_log
http request line: "GET /f.txt HTTP/1.1"



=== TEST 5: env substitution in the config and shutdown_error_log
--- config
    location = /port {
        return 200 "$TEST_NGINX_SERVER_PORT";
    }
--- request
GET /port
--- response_body_like: ^\d+$
--- shutdown_error_log
signal 3 (SIGQUIT) received
