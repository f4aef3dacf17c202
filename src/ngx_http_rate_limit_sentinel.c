
/*
 * ngx_http_rate_limit_module: where the master is, as the sentinels say
 * (see the header).
 *
 * States: down (a cancelable retry timer), asking (connected or
 * connecting, AUTH and the question queued, connect_timeout bounding the
 * answer), subscribed (the answer came; +switch-master messages follow).
 * A sentinel that fails is skipped at once for the next; after a whole
 * round the retries back off as the link's do.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_rate_limit_sentinel.h"
#include "ngx_http_rate_limit_link.h"
#include "ngx_http_rate_limit_hiredis.h"
#include "ngx_http_rate_limit_reader.h"
#include "ngx_http_rate_limit_log.h"
#include "ngx_http_rate_limit_tls.h"


typedef enum {
    NGX_HTTP_RATE_LIMIT_SENTINEL_DOWN = 0,
    NGX_HTTP_RATE_LIMIT_SENTINEL_ASKING,
    NGX_HTTP_RATE_LIMIT_SENTINEL_SUBSCRIBED
} ngx_http_rate_limit_sentinel_state_e;


typedef struct {
    ngx_str_t                           name;   /* as written */
    char                               *host;   /* numeric */
    int                                 port;
} ngx_http_rate_limit_sentinel_addr_t;


/* A sentinel command: the shape first, as every privdata */
typedef struct {
    ngx_http_rate_limit_shape_t         shape;
    const char                         *name;
} ngx_http_rate_limit_sentinel_step_t;


typedef struct {
    ngx_log_t                          *log;
    ngx_http_rate_limit_sentinel_master_pt  master;

    ngx_uint_t                          naddrs;
    ngx_http_rate_limit_sentinel_addr_t  *addrs;
    ngx_uint_t                          current;
    ngx_uint_t                          failures;

    ngx_str_t                           master_name;
    ngx_str_t                           username;
    ngx_str_t                           password;
    ngx_msec_t                          connect_timeout;
    void                               *ssl_ctx;
    ngx_str_t                           tls_name;

    redisAsyncContext                  *ac;
    ngx_http_rate_limit_reader_t        reader;
    ngx_http_rate_limit_sentinel_state_e  state;

    ngx_event_t                         retry;
    ngx_event_t                         connect;

    ngx_http_rate_limit_throttle_t      throttle;

    unsigned                            exiting:1;
} ngx_http_rate_limit_sentinel_t;


static void ngx_http_rate_limit_sentinel_connect(void);
static void ngx_http_rate_limit_sentinel_lost(ngx_uint_t next);
static void ngx_http_rate_limit_sentinel_drop(ngx_uint_t next);
static void ngx_http_rate_limit_sentinel_on_connect(
    const redisAsyncContext *ac, int status);
static void ngx_http_rate_limit_sentinel_on_disconnect(
    const redisAsyncContext *ac, int status);
static void ngx_http_rate_limit_sentinel_on_auth(redisAsyncContext *ac,
    void *reply, void *privdata);
static void ngx_http_rate_limit_sentinel_on_master(redisAsyncContext *ac,
    void *reply, void *privdata);
static void ngx_http_rate_limit_sentinel_on_message(redisAsyncContext *ac,
    void *reply, void *privdata);
static ngx_int_t ngx_http_rate_limit_sentinel_address(u_char *host,
    size_t host_len, u_char *port, size_t port_len);
static void ngx_http_rate_limit_sentinel_read_done(void *data);
static void ngx_http_rate_limit_sentinel_retry_handler(ngx_event_t *ev);
static void ngx_http_rate_limit_sentinel_connect_handler(ngx_event_t *ev);
static void ngx_http_rate_limit_sentinel_free(
    ngx_http_rate_limit_sentinel_t *s);


static ngx_http_rate_limit_sentinel_t  *ngx_http_rate_limit_sentinel;


static const ngx_http_rate_limit_sentinel_step_t
    ngx_http_rate_limit_sentinel_step_auth = { { 0, 512 }, "AUTH" };

/* [ip, port], or a null array for a master it does not know */
static const ngx_http_rate_limit_sentinel_step_t
    ngx_http_rate_limit_sentinel_step_master = {
        { 1, 512 }, "SENTINEL GET-MASTER-ADDR-BY-NAME"
    };


ngx_int_t
ngx_http_rate_limit_sentinel_init(ngx_cycle_t *cycle,
    ngx_http_rate_limit_redis_conf_t *rcf,
    ngx_http_rate_limit_sentinel_master_pt master)
{
    ngx_str_t                        h;
    ngx_uint_t                       i;
    ngx_http_rate_limit_addr_t      *addr;
    ngx_http_rate_limit_sentinel_t  *s;

    s = ngx_calloc(sizeof(ngx_http_rate_limit_sentinel_t), cycle->log);
    if (s == NULL) {
        return NGX_ERROR;
    }

    s->log = cycle->log;
    s->master = master;
    s->connect_timeout = rcf->connect_timeout;
    s->ssl_ctx = rcf->ssl_ctx;

    s->naddrs = rcf->sentinels->nelts;
    s->addrs = ngx_calloc(s->naddrs
                          * sizeof(ngx_http_rate_limit_sentinel_addr_t),
                          cycle->log);
    if (s->addrs == NULL) {
        goto failed;
    }

    addr = rcf->sentinels->elts;

    for (i = 0; i < s->naddrs; i++) {
        if (ngx_http_rate_limit_link_copy(&s->addrs[i].name,
                                              &addr[i].name, cycle->log)
            != NGX_OK
            || ngx_http_rate_limit_link_copy(&h, &addr[i].host,
                                                 cycle->log)
               != NGX_OK)
        {
            goto failed;
        }

        s->addrs[i].host = (char *) h.data;
        s->addrs[i].port = addr[i].port;
    }

    if (ngx_http_rate_limit_link_copy(&s->master_name, &rcf->master,
                                          cycle->log)
        != NGX_OK
        || ngx_http_rate_limit_link_copy(&s->username,
                                             &rcf->sentinel_username,
                                             cycle->log)
           != NGX_OK
        || ngx_http_rate_limit_link_copy(&s->password,
                                             &rcf->sentinel_password,
                                             cycle->log)
           != NGX_OK
        || ngx_http_rate_limit_link_copy(&s->tls_name,
                                             &rcf->tls_server_name,
                                             cycle->log)
           != NGX_OK)
    {
        goto failed;
    }

    /* data is what NGINX's timer debug lines read an fd from: never NULL */

    s->retry.handler = ngx_http_rate_limit_sentinel_retry_handler;
    s->retry.data = s;
    s->retry.log = cycle->log;
    s->retry.cancelable = 1;

    s->connect.handler = ngx_http_rate_limit_sentinel_connect_handler;
    s->connect.data = s;
    s->connect.log = cycle->log;
    s->connect.cancelable = 1;

    ngx_http_rate_limit_sentinel = s;

    ngx_http_rate_limit_sentinel_connect();

    return NGX_OK;

failed:

    ngx_http_rate_limit_sentinel_free(s);
    return NGX_ERROR;
}


void
ngx_http_rate_limit_sentinel_exit(void)
{
    redisAsyncContext               *ac;
    ngx_http_rate_limit_sentinel_t  *s;

    s = ngx_http_rate_limit_sentinel;
    if (s == NULL) {
        return;
    }

    s->exiting = 1;

    ac = s->ac;

    if (ac) {
        s->ac = NULL;
        redisAsyncFree(ac);
    }

    if (s->retry.timer_set) {
        ngx_del_timer(&s->retry);
    }

    if (s->connect.timer_set) {
        ngx_del_timer(&s->connect);
    }

    ngx_http_rate_limit_sentinel_free(s);
    ngx_http_rate_limit_sentinel = NULL;
}


void
ngx_http_rate_limit_sentinel_refresh(void)
{
    ngx_http_rate_limit_sentinel_t  *s;

    s = ngx_http_rate_limit_sentinel;

    if (s == NULL || s->exiting
        || s->state != NGX_HTTP_RATE_LIMIT_SENTINEL_SUBSCRIBED)
    {
        /* down: a retry is due; asking: the answer is on its way */
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, s->log, 0,
                   "rate_limit: asking sentinel \"%V\" again",
                   &s->addrs[s->current].name);

    /* a subscribed connection takes no question: a new one asks */

    ngx_http_rate_limit_sentinel_drop(0);
}


static void
ngx_http_rate_limit_sentinel_connect(void)
{
    int                                   argc;
    size_t                                argvlen[3];
    const char                           *argv[3];
    redisAsyncContext                    *ac;
    ngx_http_rate_limit_sentinel_t       *s;
    ngx_http_rate_limit_sentinel_addr_t  *addr;

    s = ngx_http_rate_limit_sentinel;
    addr = &s->addrs[s->current];

    s->state = NGX_HTTP_RATE_LIMIT_SENTINEL_ASKING;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, s->log, 0,
                   "rate_limit: connecting to sentinel \"%V\"", &addr->name);

    ac = redisAsyncConnect(addr->host, addr->port);

    if (ac == NULL || ac->err) {
        ngx_http_rate_limit_log_error(&s->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_CONNECT, s->log,
                                      "rate_limit: cannot connect to "
                                      "sentinel \"%V\": %s", &addr->name,
                                      ac ? ac->errstr : "out of memory");
        if (ac) {
            redisAsyncFree(ac);
        }

        ngx_http_rate_limit_sentinel_lost(1);
        return;
    }

    if (s->ssl_ctx
        && ngx_http_rate_limit_tls_start(ac, s->ssl_ctx, &s->tls_name, s->log)
           != NGX_OK)
    {
        redisAsyncFree(ac);
        ngx_http_rate_limit_sentinel_lost(1);
        return;
    }

    ngx_http_rate_limit_reader_attach(&s->reader, ac);
    ac->data = s;

    if (ngx_http_rate_limit_hiredis_attach(ac, s->log,
                                     ngx_http_rate_limit_sentinel_read_done,
                                     s)
        != NGX_OK)
    {
        redisAsyncFree(ac);
        ngx_http_rate_limit_sentinel_lost(1);
        return;
    }

    s->ac = ac;

    redisAsyncSetDisconnectCallback(ac,
                                 ngx_http_rate_limit_sentinel_on_disconnect);
    redisAsyncSetConnectCallback(ac, ngx_http_rate_limit_sentinel_on_connect);

    ngx_add_timer(&s->connect, s->connect_timeout);

    argc = ngx_http_rate_limit_link_auth(&s->username, &s->password,
                                         argv, argvlen);
    if (argc) {
        (void) redisAsyncCommandArgv(ac, ngx_http_rate_limit_sentinel_on_auth,
                          (void *) &ngx_http_rate_limit_sentinel_step_auth,
                          argc, argv, argvlen);
    }

    argv[0] = "SENTINEL";
    argvlen[0] = 8;
    argv[1] = "GET-MASTER-ADDR-BY-NAME";
    argvlen[1] = 23;
    argv[2] = (char *) s->master_name.data;
    argvlen[2] = s->master_name.len;

    (void) redisAsyncCommandArgv(ac, ngx_http_rate_limit_sentinel_on_master,
                        (void *) &ngx_http_rate_limit_sentinel_step_master,
                        3, argv, argvlen);
}


/*
 * The connection is gone (s->ac already NULL).  next: that sentinel
 * failed, try the next one; a whole round is tried at once, then the
 * retries back off.
 */

static void
ngx_http_rate_limit_sentinel_lost(ngx_uint_t next)
{
    ngx_msec_t                       delay;
    ngx_http_rate_limit_sentinel_t  *s;

    s = ngx_http_rate_limit_sentinel;

    s->state = NGX_HTTP_RATE_LIMIT_SENTINEL_DOWN;

    if (s->connect.timer_set) {
        ngx_del_timer(&s->connect);
    }

    if (s->exiting || s->retry.timer_set) {
        return;
    }

    delay = 0;

    if (next) {
        s->current = (s->current + 1) % s->naddrs;
        s->failures++;

        if (s->failures >= s->naddrs) {
            delay = (ngx_msec_t) rl_core_backoff_ms(
                                 (unsigned) (s->failures - s->naddrs + 1));
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, s->log, 0,
                   "rate_limit: sentinel \"%V\" next, in %M ms",
                   &s->addrs[s->current].name, delay);

    ngx_add_timer(&s->retry, delay);
}


static void
ngx_http_rate_limit_sentinel_drop(ngx_uint_t next)
{
    redisAsyncContext               *ac;
    ngx_http_rate_limit_sentinel_t  *s;

    s = ngx_http_rate_limit_sentinel;

    ac = s->ac;
    if (ac == NULL) {
        return;
    }

    s->ac = NULL;

    ngx_http_rate_limit_sentinel_lost(next);

    /* deferred by hiredis when inside one of its callbacks */
    redisAsyncFree(ac);
}


static void
ngx_http_rate_limit_sentinel_on_connect(const redisAsyncContext *ac,
    int status)
{
    ngx_http_rate_limit_sentinel_t  *s = ac->data;

    if (s->ac != ac || status == REDIS_OK) {
        return;
    }

    ngx_http_rate_limit_log_error(&s->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_CONNECT, s->log,
                                  "rate_limit: cannot connect to sentinel "
                                  "\"%V\": %s", &s->addrs[s->current].name,
                                  ac->errstr);

    s->ac = NULL;
    ngx_http_rate_limit_sentinel_lost(1);
}


static void
ngx_http_rate_limit_sentinel_on_disconnect(const redisAsyncContext *ac,
    int status)
{
    ngx_http_rate_limit_sentinel_t  *s = ac->data;

    const char  *why;

    if (s->ac != ac) {
        return;
    }

    why = ngx_http_rate_limit_reader_refusal(&s->reader);

    ngx_http_rate_limit_log_error(&s->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_CLOSED, s->log,
                                  "rate_limit: sentinel \"%V\" closed the "
                                  "connection: %s",
                                  &s->addrs[s->current].name,
                                  why ? why : ac->errstr);

    s->ac = NULL;
    ngx_http_rate_limit_sentinel_lost(1);
}


static void
ngx_http_rate_limit_sentinel_on_auth(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                      *r = reply;
    ngx_http_rate_limit_sentinel_t  *s = ac->data;

    if (r == NULL || s->ac != ac || r->type != REDIS_REPLY_ERROR) {
        return;
    }

    ngx_http_rate_limit_log_error(&s->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE, s->log,
                                  "rate_limit: sentinel \"%V\" refused AUTH: "
                                  "%*s", &s->addrs[s->current].name,
                                  (size_t) ngx_min(r->len, 256), r->str);

    ngx_http_rate_limit_sentinel_drop(1);
}


static void
ngx_http_rate_limit_sentinel_on_master(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                      *r = reply;
    ngx_http_rate_limit_sentinel_t  *s = ac->data;

    ngx_str_t                       *name;

    if (r == NULL || s->ac != ac) {
        return;
    }

    name = &s->addrs[s->current].name;

    if (r->type == REDIS_REPLY_ERROR) {
        ngx_http_rate_limit_log_error(&s->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                      s->log,
                                      "rate_limit: sentinel \"%V\" refused "
                                      "GET-MASTER-ADDR-BY-NAME: %*s", name,
                                      (size_t) ngx_min(r->len, 256), r->str);
        ngx_http_rate_limit_sentinel_drop(1);
        return;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_STRING
        || ngx_http_rate_limit_sentinel_address((u_char *) r->element[0]->str,
                                                r->element[0]->len,
                                                (u_char *) r->element[1]->str,
                                                r->element[1]->len)
           != NGX_OK)
    {
        ngx_http_rate_limit_log_error(&s->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                      s->log,
                                      "rate_limit: sentinel \"%V\" does not "
                                      "know master \"%V\"", name,
                                      &s->master_name);
        ngx_http_rate_limit_sentinel_drop(1);
        return;
    }

    if (s->connect.timer_set) {
        ngx_del_timer(&s->connect);
    }

    s->state = NGX_HTTP_RATE_LIMIT_SENTINEL_SUBSCRIBED;
    s->failures = 0;

    /* hiredis keeps this callback for every message of the channel */

    (void) redisAsyncCommand(ac, ngx_http_rate_limit_sentinel_on_message,
                             NULL, "SUBSCRIBE +switch-master");
}


/*
 * ["message", "+switch-master", "NAME OLD-IP OLD-PORT NEW-IP NEW-PORT"]:
 * the link moves at once.
 */

static void
ngx_http_rate_limit_sentinel_on_message(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                      *r = reply;
    ngx_http_rate_limit_sentinel_t  *s = ac->data;

    u_char                          *p, *last, *word[5];
    size_t                           len[5];
    ngx_uint_t                       n;

    if (r == NULL || s->ac != ac || r->type != REDIS_REPLY_ARRAY
        || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[2]->type != REDIS_REPLY_STRING
        || r->element[0]->len != 7
        || ngx_strncmp(r->element[0]->str, "message", 7) != 0)
    {
        /* the subscription's own confirmation, or a teardown */
        return;
    }

    p = (u_char *) r->element[2]->str;
    last = p + r->element[2]->len;

    for (n = 0; n < 5 && p < last; n++) {
        word[n] = p;

        while (p < last && *p != ' ') {
            p++;
        }

        len[n] = p - word[n];

        while (p < last && *p == ' ') {
            p++;
        }
    }

    if (n != 5 || p != last || len[0] != s->master_name.len
        || ngx_strncmp(word[0], s->master_name.data, len[0]) != 0)
    {
        /* another master's, or not understood */
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, s->log, 0,
                  "rate_limit: sentinel \"%V\": master \"%V\" is now "
                  "%*s:%*s", &s->addrs[s->current].name, &s->master_name,
                  len[3], word[3], len[4], word[4]);

    (void) ngx_http_rate_limit_sentinel_address(word[3], len[3], word[4],
                                                len[4]);
}


/*
 * A numeric address (a sentinel never names a master by host name unless
 * configured to; such a name would need a DNS lookup, which a worker
 * never makes) is handed to the link.
 */

static ngx_int_t
ngx_http_rate_limit_sentinel_address(u_char *host, size_t host_len,
    u_char *port, size_t port_len)
{
    u_char                           addr[16], text[NGX_SOCKADDR_STRLEN + 1];
    ngx_int_t                        n;
    ngx_http_rate_limit_sentinel_t  *s;

    s = ngx_http_rate_limit_sentinel;

    if (host_len == 0 || host_len > NGX_SOCKADDR_STRLEN) {
        return NGX_ERROR;
    }

    ngx_memcpy(text, host, host_len);
    text[host_len] = '\0';

    if (inet_pton(AF_INET, (char *) text, addr) != 1
        && inet_pton(AF_INET6, (char *) text, addr) != 1)
    {
        ngx_http_rate_limit_log_error(&s->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                      s->log,
                                      "rate_limit: sentinel \"%V\" names "
                                      "the master \"%s\", not an IP "
                                      "address", &s->addrs[s->current].name,
                                      text);
        return NGX_ERROR;
    }

    n = ngx_atoi(port, port_len);
    if (n < 1 || n > 65535) {
        return NGX_ERROR;
    }

    s->master((char *) text, (int) n);

    return NGX_OK;
}


static void
ngx_http_rate_limit_sentinel_read_done(void *data)
{
    ngx_http_rate_limit_sentinel_t  *s = data;

    if (s->ac == NULL
        || ngx_http_rate_limit_reader_check(&s->reader) == NGX_OK)
    {
        return;
    }

    ngx_http_rate_limit_log_error(&s->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_CLOSED, s->log,
                                  "rate_limit: sentinel \"%V\" sent %s",
                                  &s->addrs[s->current].name,
                                  ngx_http_rate_limit_reader_refusal(
                                                                &s->reader));

    ngx_http_rate_limit_sentinel_drop(1);
}


static void
ngx_http_rate_limit_sentinel_retry_handler(ngx_event_t *ev)
{
    ngx_http_rate_limit_sentinel_t  *s;

    s = ngx_http_rate_limit_sentinel;

    if (s == NULL || s->exiting || s->ac != NULL) {
        return;
    }

    ngx_http_rate_limit_sentinel_connect();
}


static void
ngx_http_rate_limit_sentinel_connect_handler(ngx_event_t *ev)
{
    ngx_http_rate_limit_sentinel_t  *s;

    s = ngx_http_rate_limit_sentinel;

    ngx_http_rate_limit_log_error(&s->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_CONNECT, s->log,
                                  "rate_limit: sentinel \"%V\" did not "
                                  "answer within %M ms",
                                  &s->addrs[s->current].name,
                                  s->connect_timeout);

    ngx_http_rate_limit_sentinel_drop(1);
}


static void
ngx_http_rate_limit_sentinel_free(ngx_http_rate_limit_sentinel_t *s)
{
    ngx_uint_t  i;

    for (i = 0; s->addrs && i < s->naddrs; i++) {
        ngx_free(s->addrs[i].name.data);
        ngx_free(s->addrs[i].host);
    }

    ngx_free(s->addrs);
    ngx_free(s->master_name.data);
    ngx_free(s->username.data);
    ngx_free(s->password.data);
    ngx_free(s->tls_name.data);
    ngx_free(s);
}
