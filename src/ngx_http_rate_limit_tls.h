
/*
 * ngx_http_rate_limit_module: TLS to Redis.
 *
 * The tls_* parameters of rate_limit_redis, the OpenSSL context made from
 * them when the configuration is loaded (so an unreadable file or a bad
 * key is an nginx -t error), and one TLS session per connection handed to
 * hiredis, whose SSL layer then runs the handshake on the nonblocking
 * socket.  Built only where hiredis has its SSL library (hiredis 1.0 and
 * later); elsewhere tls=on is refused with that reason.
 */


#ifndef _NGX_HTTP_RATE_LIMIT_TLS_H_INCLUDED_
#define _NGX_HTTP_RATE_LIMIT_TLS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_rate_limit_module.h"


/*
 * A tls parameter of rate_limit_redis: NGX_OK when taken, NGX_DECLINED
 * when value is not one, NGX_ERROR when it is wrong (logged).
 */
ngx_int_t ngx_http_rate_limit_tls_param(ngx_conf_t *cf,
    ngx_http_rate_limit_redis_conf_t *rcf, ngx_str_t *value);

/*
 * After the parameters: checks that they fit, and with tls=on makes
 * rcf->ssl_ctx (freed with the configuration).
 */
char *ngx_http_rate_limit_tls_conf(ngx_conf_t *cf,
    ngx_http_rate_limit_redis_conf_t *rcf);

/*
 * Starts TLS on a hiredis context whose connect is under way; ac is a
 * redisAsyncContext (void * keeps hiredis out of this header).  NGX_ERROR
 * is logged.
 */
ngx_int_t ngx_http_rate_limit_tls_start(void *ac, void *ssl_ctx,
    ngx_str_t *server_name, ngx_log_t *log);

/* OpenSSL's reason for the last TLS failure, or NULL. */
const char *ngx_http_rate_limit_tls_reason(void);


#endif /* _NGX_HTTP_RATE_LIMIT_TLS_H_INCLUDED_ */
