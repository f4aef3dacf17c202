
/*
 * ngx_http_rate_limit_module: TLS to Redis (see the header).
 *
 * The context is made in the master when the configuration is loaded and
 * inherited by the workers; each connection gets its own SSL object with
 * the name to check (a DNS name, with SNI, or an IP address), and hiredis
 * owns that object from redisInitiateSSL() on.  hiredis does not check
 * the server's name itself: OpenSSL's verify parameters do.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_rate_limit_tls.h"

#if (NGX_HTTP_RATE_LIMIT_TLS)
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/hiredis_ssl.h>
#endif


static ngx_int_t ngx_http_rate_limit_tls_file(ngx_conf_t *cf,
    ngx_str_t *value, const char *name, ngx_str_t *file);
static ngx_int_t ngx_http_rate_limit_tls_flag(ngx_conf_t *cf,
    ngx_str_t *value, const char *name, ngx_flag_t *flag);

#if (NGX_HTTP_RATE_LIMIT_TLS)
static ngx_int_t ngx_http_rate_limit_tls_default_name(ngx_conf_t *cf,
    ngx_http_rate_limit_redis_conf_t *rcf);
static ngx_int_t ngx_http_rate_limit_tls_context(ngx_conf_t *cf,
    ngx_http_rate_limit_redis_conf_t *rcf);
static void ngx_http_rate_limit_tls_cleanup(void *data);
static const char *ngx_http_rate_limit_tls_error(void);
#endif


ngx_int_t
ngx_http_rate_limit_tls_param(ngx_conf_t *cf,
    ngx_http_rate_limit_redis_conf_t *rcf, ngx_str_t *value)
{
    ngx_int_t  rc;

    rc = ngx_http_rate_limit_tls_flag(cf, value, "tls=", &rcf->tls);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_rate_limit_tls_flag(cf, value, "tls_verify=",
                                      &rcf->tls_verify);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_rate_limit_tls_file(cf, value, "tls_ca=", &rcf->tls_ca);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_rate_limit_tls_file(cf, value, "tls_cert=", &rcf->tls_cert);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_rate_limit_tls_file(cf, value, "tls_key=", &rcf->tls_key);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (value->len > 16
        && ngx_strncmp(value->data, "tls_server_name=", 16) == 0)
    {
        if (rcf->tls_server_name.data != NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate \"tls_server_name=\"");
            return NGX_ERROR;
        }

        rcf->tls_server_name.len = value->len - 16;
        rcf->tls_server_name.data = ngx_pnalloc(cf->pool,
                                                rcf->tls_server_name.len + 1);
        if (rcf->tls_server_name.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(rcf->tls_server_name.data, value->data + 16,
                   rcf->tls_server_name.len);
        rcf->tls_server_name.data[rcf->tls_server_name.len] = '\0';

        return NGX_OK;
    }

    if (value->len == 16
        && ngx_strncmp(value->data, "tls_server_name=", 16) == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty name in \"tls_server_name=\"");
        return NGX_ERROR;
    }

    return NGX_DECLINED;
}


char *
ngx_http_rate_limit_tls_conf(ngx_conf_t *cf,
    ngx_http_rate_limit_redis_conf_t *rcf)
{
    if (rcf->tls != 1) {
        if (rcf->tls_verify != NGX_CONF_UNSET || rcf->tls_ca.len
            || rcf->tls_cert.len || rcf->tls_key.len
            || rcf->tls_server_name.len)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "tls_* parameters need \"tls=on\"");
            return NGX_CONF_ERROR;
        }

        rcf->tls = 0;
        return NGX_CONF_OK;
    }

#if !(NGX_HTTP_RATE_LIMIT_TLS)

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"tls=on\" needs hiredis 1.0 or later with its SSL "
                       "library (libhiredis_ssl); this module was built "
                       "without it");
    return NGX_CONF_ERROR;

#else

    if (rcf->unix_path.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tls=on\" is for TCP addresses, not \"%V\"",
                           &rcf->name);
        return NGX_CONF_ERROR;
    }

    if ((rcf->tls_cert.len == 0) != (rcf->tls_key.len == 0)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tls_cert=\" and \"tls_key=\" go together");
        return NGX_CONF_ERROR;
    }

    if (rcf->tls_verify == NGX_CONF_UNSET) {
        rcf->tls_verify = 1;
    }

    if (rcf->tls_server_name.len == 0
        && ngx_http_rate_limit_tls_default_name(cf, rcf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_rate_limit_tls_context(cf, rcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

#endif
}


ngx_int_t
ngx_http_rate_limit_tls_start(void *data, void *ssl_ctx,
    ngx_str_t *server_name, ngx_log_t *log)
{
#if (NGX_HTTP_RATE_LIMIT_TLS)

    SSL                 *ssl;
    X509_VERIFY_PARAM   *param;
    redisAsyncContext   *ac = data;
    u_char               addr[16];
    const char          *name;

    name = (const char *) server_name->data;

    ssl = SSL_new(ssl_ctx);
    if (ssl == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "rate_limit: SSL_new() failed: %s",
                      ngx_http_rate_limit_tls_error());
        return NGX_ERROR;
    }

    param = SSL_get0_param(ssl);

    /* an address is checked as one; a name also goes out as SNI */

    if (inet_pton(AF_INET, name, addr) == 1
        || inet_pton(AF_INET6, name, addr) == 1)
    {
        if (X509_VERIFY_PARAM_set1_ip_asc(param, name) != 1) {
            goto failed;
        }

    } else {
        X509_VERIFY_PARAM_set_hostflags(param,
                                       X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);

        if (X509_VERIFY_PARAM_set1_host(param, name, 0) != 1
            || SSL_set_tlsext_host_name(ssl, name) != 1)
        {
            goto failed;
        }
    }

    /* from here hiredis owns ssl, and frees it with the context */

    if (redisInitiateSSL(&ac->c, ssl) != REDIS_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "rate_limit: cannot start TLS: %s", ac->c.errstr);
        return NGX_ERROR;
    }

    return NGX_OK;

failed:

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "rate_limit: cannot set the TLS name \"%s\": %s", name,
                  ngx_http_rate_limit_tls_error());
    SSL_free(ssl);
    return NGX_ERROR;

#else

    return NGX_ERROR;

#endif
}


const char *
ngx_http_rate_limit_tls_reason(void)
{
#if (NGX_HTTP_RATE_LIMIT_TLS)
    unsigned long  e;

    e = ERR_peek_last_error();

    if (e == 0) {
        return NULL;
    }

    ERR_clear_error();

    return ERR_reason_error_string(e);
#else
    return NULL;
#endif
}


static ngx_int_t
ngx_http_rate_limit_tls_flag(ngx_conf_t *cf, ngx_str_t *value,
    const char *name, ngx_flag_t *flag)
{
    size_t  len;

    len = ngx_strlen(name);

    if (value->len < len || ngx_strncmp(value->data, name, len) != 0) {
        return NGX_DECLINED;
    }

    if (*flag != NGX_CONF_UNSET) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "duplicate \"%s\"", name);
        return NGX_ERROR;
    }

    if (value->len == len + 2
        && ngx_strncmp(value->data + len, "on", 2) == 0)
    {
        *flag = 1;
        return NGX_OK;
    }

    if (value->len == len + 3
        && ngx_strncmp(value->data + len, "off", 3) == 0)
    {
        *flag = 0;
        return NGX_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\", must be \"%son\" or \"%soff\"",
                       value, name, name);
    return NGX_ERROR;
}


/* A file parameter, relative to the configuration prefix as NGINX's. */

static ngx_int_t
ngx_http_rate_limit_tls_file(ngx_conf_t *cf, ngx_str_t *value,
    const char *name, ngx_str_t *file)
{
    size_t  len;

    len = ngx_strlen(name);

    if (value->len < len || ngx_strncmp(value->data, name, len) != 0) {
        return NGX_DECLINED;
    }

    if (file->data != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "duplicate \"%s\"", name);
        return NGX_ERROR;
    }

    if (value->len == len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "empty file in \"%s\"",
                           name);
        return NGX_ERROR;
    }

    file->data = value->data + len;
    file->len = value->len - len;

    /* NUL-terminated, for OpenSSL */

    if (ngx_conf_full_name(cf->cycle, file, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


#if (NGX_HTTP_RATE_LIMIT_TLS)

/* The host of the address as written: "host:port", "[v6]:port", "host". */

static ngx_int_t
ngx_http_rate_limit_tls_default_name(ngx_conf_t *cf,
    ngx_http_rate_limit_redis_conf_t *rcf)
{
    u_char     *p, *start, *end;
    ngx_str_t  *name;

    name = &rcf->name;
    start = name->data;
    end = name->data + name->len;

    if (name->len && start[0] == '[') {
        start++;
        p = ngx_strlchr(start, end, ']');
        end = p ? p : end;

    } else {
        p = ngx_strlchr(start, end, ':');
        end = p ? p : end;
    }

    if (end == start) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no host in \"%V\" for \"tls_server_name=\"",
                           name);
        return NGX_ERROR;
    }

    rcf->tls_server_name.len = end - start;
    rcf->tls_server_name.data = ngx_pnalloc(cf->pool,
                                            rcf->tls_server_name.len + 1);
    if (rcf->tls_server_name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(rcf->tls_server_name.data, start, rcf->tls_server_name.len);
    rcf->tls_server_name.data[rcf->tls_server_name.len] = '\0';

    return NGX_OK;
}


static ngx_int_t
ngx_http_rate_limit_tls_context(ngx_conf_t *cf,
    ngx_http_rate_limit_redis_conf_t *rcf)
{
    SSL_CTX             *ctx;
    ngx_pool_cleanup_t  *cln;

    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "SSL_CTX_new() failed: %s",
                           ngx_http_rate_limit_tls_error());
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        SSL_CTX_free(ctx);
        return NGX_ERROR;
    }

    cln->handler = ngx_http_rate_limit_tls_cleanup;
    cln->data = ctx;

    rcf->ssl_ctx = ctx;

    (void) SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);

    if (rcf->tls_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);

        if (rcf->tls_ca.len) {
            if (SSL_CTX_load_verify_locations(ctx,
                                              (char *) rcf->tls_ca.data, NULL)
                != 1)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "cannot read tls_ca \"%V\": %s",
                                   &rcf->tls_ca,
                                   ngx_http_rate_limit_tls_error());
                return NGX_ERROR;
            }

        } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "cannot use the system's CA store: %s",
                               ngx_http_rate_limit_tls_error());
            return NGX_ERROR;
        }

    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }

    if (rcf->tls_cert.len) {
        if (SSL_CTX_use_certificate_chain_file(ctx,
                                               (char *) rcf->tls_cert.data)
            != 1)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "cannot read tls_cert \"%V\": %s",
                               &rcf->tls_cert,
                               ngx_http_rate_limit_tls_error());
            return NGX_ERROR;
        }

        if (SSL_CTX_use_PrivateKey_file(ctx, (char *) rcf->tls_key.data,
                                        SSL_FILETYPE_PEM)
            != 1)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "cannot read tls_key \"%V\": %s",
                               &rcf->tls_key,
                               ngx_http_rate_limit_tls_error());
            return NGX_ERROR;
        }

        if (SSL_CTX_check_private_key(ctx) != 1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "tls_key \"%V\" does not match tls_cert "
                               "\"%V\": %s", &rcf->tls_key, &rcf->tls_cert,
                               ngx_http_rate_limit_tls_error());
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_http_rate_limit_tls_cleanup(void *data)
{
    SSL_CTX_free(data);
}


/*
 * OpenSSL's reasons for the last failure, first to last ("No such file or
 * directory: system lib"), taken off its queue.  Configuration time only:
 * the text lives in a static buffer.
 */

static const char *
ngx_http_rate_limit_tls_error(void)
{
    u_char         *p, *last;
    const char     *reason;
    unsigned long   e;

    static u_char   text[256];

    p = text;
    last = text + sizeof(text) - 1;

    while ((e = ERR_get_error()) != 0) {
        reason = ERR_reason_error_string(e);

        if (reason == NULL) {
            continue;
        }

        p = ngx_slprintf(p, last, "%s%s", p == text ? "" : ": ", reason);
    }

    if (p == text) {
        return "unknown error";
    }

    *p = '\0';

    return (const char *) text;
}

#endif
