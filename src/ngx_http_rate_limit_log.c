
/*
 * ngx_http_rate_limit_module: error lines at most once a second per cause.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_rate_limit_log.h"


void
ngx_http_rate_limit_log_error(ngx_http_rate_limit_throttle_t *t,
    ngx_http_rate_limit_log_cause_e cause, ngx_log_t *log,
    const char *fmt, ...)
{
    u_char   *p, buf[NGX_MAX_ERROR_STR];
    va_list   args;

    /* formatted only when it will be written */

    if (log->log_level < NGX_LOG_ERR || t->logged[cause] == ngx_time()) {
        return;
    }

    t->logged[cause] = ngx_time();

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    ngx_log_error(NGX_LOG_ERR, log, 0, "%*s", p - buf, buf);
}
