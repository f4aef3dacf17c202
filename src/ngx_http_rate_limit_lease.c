
/*
 * ngx_http_rate_limit_module: the worker's concurrency leases.
 *
 * A request admitted by concurrency zones holds one lease per such zone
 * (member: the request's lease member, made here).  The worker keeps them
 * in one registry, renews every lease due with one command per round (in
 * a cluster one per slot, see link_send_set; a
 * cancelable timer at the earliest due time, each lease due a third of its
 * length after its last renewal), and releases a request's leases when its
 * pool is destroyed, and every lease still held when the worker exits.
 * Renewals and releases never wait: their replies are only counted, their
 * failures counted and logged at most once a second.  It touches the
 * request's ctx (member, leases) and the link; nothing else.
 *
 * Why the pool cleanup and not the log phase: the pool is destroyed on
 * every way a request ends (a normal end, the client leaving, an internal
 * error, a request finalized before the log phase), and only after the
 * log phase ran, so the lease is held exactly while the request exists.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#if (NGX_LINUX)
#include <sys/random.h>
#endif

#include "ngx_http_rate_limit_module.h"
#include "ngx_http_rate_limit_link.h"
#include "ngx_http_rate_limit_log.h"


typedef struct {
    ngx_queue_t                 queue;      /* in the registry */
    ngx_http_rate_limit_ctx_t  *ctx;        /* the request holding it */
    rl_core_zone_request_t      zone;       /* strings: the zone's conf and
                                               the request's pool */
    ngx_msec_t                  interval;   /* a third of the lease */
    ngx_msec_t                  due;
} ngx_http_rate_limit_lease_t;


typedef struct {
    ngx_uint_t                  n;
    ngx_http_rate_limit_lease_t  *lease;
} ngx_http_rate_limit_lease_set_t;


/* what the leases met, for the logs (and later for metrics) */
typedef struct {
    ngx_uint_t                  renewed;    /* leases found and renewed */
    ngx_uint_t                  lost;       /* renewals that found none */
    ngx_uint_t                  released;
    ngx_uint_t                  failed;     /* commands not sent or failed */
} ngx_http_rate_limit_lease_stats_t;


/* a command set being sent: the leases and what they are sent for */
typedef struct {
    rl_core_lease_t            *leases;
    rl_core_mode_e              mode;
} ngx_http_rate_limit_lease_cmd_t;


static ngx_int_t ngx_http_rate_limit_lease_send(
    ngx_http_rate_limit_lease_t **leases, ngx_uint_t n, rl_core_mode_e mode,
    ngx_log_t *log);
static void ngx_http_rate_limit_lease_on_answer(ngx_http_rate_limit_op_t *op,
    ngx_http_rate_limit_answer_e answer, ngx_str_t *text);
static const rl_core_zone_request_t *ngx_http_rate_limit_lease_zone(
    void *data, size_t i);
static ngx_http_rate_limit_op_t *ngx_http_rate_limit_lease_build(void *data,
    const size_t *items, size_t n, ngx_log_t *log);
static void ngx_http_rate_limit_lease_renew(ngx_event_t *ev);
static void ngx_http_rate_limit_lease_arm(void);
static void ngx_http_rate_limit_lease_zones(ngx_http_rate_limit_ctx_t *ctx,
    ngx_http_rate_limit_lease_t *lease, ngx_uint_t *n);


static ngx_queue_t                        ngx_http_rate_limit_leases;
static ngx_event_t                        ngx_http_rate_limit_lease_timer;
/* the timer's data: debug traces name an event by its data's fd */
static ngx_connection_t                   ngx_http_rate_limit_lease_ident;
static ngx_http_rate_limit_throttle_t     ngx_http_rate_limit_lease_throttle;
static ngx_http_rate_limit_lease_stats_t  ngx_http_rate_limit_lease_stats;

/* the member's parts: random once per worker, the pid, a counter */
static uint64_t                           ngx_http_rate_limit_lease_random;
static uint64_t                           ngx_http_rate_limit_lease_seq;
static ngx_uint_t                         ngx_http_rate_limit_lease_ready;

static ngx_str_t  ngx_http_rate_limit_lost = ngx_string("connection lost");


/* Once per worker, before any request: never on the request path. */

void
ngx_http_rate_limit_lease_init(ngx_cycle_t *cycle)
{
    ngx_event_t  *ev;

    ngx_queue_init(&ngx_http_rate_limit_leases);

#if (NGX_LINUX)
    if (getrandom(&ngx_http_rate_limit_lease_random,
                  sizeof(ngx_http_rate_limit_lease_random), GRND_NONBLOCK)
        != (ssize_t) sizeof(ngx_http_rate_limit_lease_random))
#endif
    {
        /* still unique with the pid and the time, if less surely */
        ngx_http_rate_limit_lease_random = ((uint64_t) ngx_random() << 32)
                                           ^ (uint64_t) ngx_time()
                                           ^ ngx_current_msec;
    }

    ev = &ngx_http_rate_limit_lease_timer;
    ngx_memzero(ev, sizeof(ngx_event_t));
    ngx_http_rate_limit_lease_ident.fd = (ngx_socket_t) -1;
    ev->data = &ngx_http_rate_limit_lease_ident;
    ev->handler = ngx_http_rate_limit_lease_renew;
    ev->log = cycle->log;
    ev->cancelable = 1;     /* never delays a graceful quit */

    ngx_http_rate_limit_lease_ready = 1;
}


/*
 * Sets ctx->member when a zone of the request is a concurrency zone:
 * RANDOM-PID-SEQ in hex, unique across nodes and workers.
 */

ngx_int_t
ngx_http_rate_limit_lease_member(ngx_http_rate_limit_ctx_t *ctx)
{
    u_char      *p;
    ngx_uint_t   i;

    for (i = 0; i < ctx->nzones; i++) {
        if (ngx_http_rate_limit_is_concurrency(ctx->zones[i])) {
            break;
        }
    }

    if (i == ctx->nzones || ctx->member.len) {
        return NGX_OK;
    }

    p = ngx_pnalloc(ctx->request->pool, 3 * NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->member.data = p;
    ctx->member.len = ngx_sprintf(p, "%uxL-%xP-%uxL",
                                  ngx_http_rate_limit_lease_random, ngx_pid,
                                  ++ngx_http_rate_limit_lease_seq)
                      - p;

    return NGX_OK;
}


/* The request passed: its concurrency zones hold leases from now. */

ngx_int_t
ngx_http_rate_limit_lease_admitted(ngx_http_rate_limit_ctx_t *ctx)
{
    ngx_uint_t                        i, n;
    ngx_http_rate_limit_lease_set_t  *set;

    if (ctx->member.len == 0 || ctx->leases || !ngx_http_rate_limit_lease_ready)
    {
        return NGX_OK;
    }

    ngx_http_rate_limit_lease_zones(ctx, NULL, &n);

    if (n == 0) {
        return NGX_OK;
    }

    set = ngx_palloc(ctx->request->pool, sizeof(ngx_http_rate_limit_lease_set_t)
                     + n * sizeof(ngx_http_rate_limit_lease_t));
    if (set == NULL) {
        return NGX_ERROR;
    }

    set->lease = (ngx_http_rate_limit_lease_t *) (set + 1);
    ngx_http_rate_limit_lease_zones(ctx, set->lease, &set->n);

    for (i = 0; i < set->n; i++) {
        set->lease[i].due = ngx_current_msec + set->lease[i].interval;
        ngx_queue_insert_tail(&ngx_http_rate_limit_leases,
                              &set->lease[i].queue);
    }

    ctx->leases = set;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "rate limit: %ui leases held as \"%V\"", set->n,
                   &ctx->member);

    ngx_http_rate_limit_lease_arm();

    return NGX_OK;
}


/*
 * The request is going away: its leases are released.  A check that was
 * sent but never answered well (a timeout, a lost connection, a request
 * that left first) may still have taken them: those are released too (a
 * release of a lease that does not exist changes nothing).
 */

void
ngx_http_rate_limit_lease_end(ngx_http_rate_limit_ctx_t *ctx)
{
    ngx_uint_t                        i, n;
    ngx_http_rate_limit_lease_t      *lease, **list;
    ngx_http_rate_limit_lease_set_t  *set;
    ngx_http_rate_limit_lease_t      *stack[NGX_HTTP_RATE_LIMIT_STACK_ZONES];

    /* the request's pool is being destroyed: nothing is taken from it */

    if (ctx->member.len == 0 || !ngx_http_rate_limit_lease_ready) {
        return;
    }

    set = ctx->leases;
    lease = NULL;

    if (set == NULL) {
        for (i = 0; i < ctx->nzones; i++) {
            if (ctx->answered[i]) {
                /* an answer: a rejection took nothing */
                return;
            }
        }

        if (ctx->sent == 0) {
            return;     /* never sent */
        }

        ngx_http_rate_limit_lease_zones(ctx, NULL, &n);

        lease = ngx_alloc(n * sizeof(ngx_http_rate_limit_lease_t),
                          ngx_cycle->log);
        if (lease == NULL) {
            return;     /* they expire after the lease */
        }

        ngx_http_rate_limit_lease_zones(ctx, lease, &n);

        list = stack;

    } else {
        n = set->n;

        for (i = 0; i < n; i++) {
            ngx_queue_remove(&set->lease[i].queue);
        }

        ctx->leases = NULL;
        list = stack;
    }

    if (n > NGX_HTTP_RATE_LIMIT_STACK_ZONES) {
        list = ngx_alloc(n * sizeof(void *), ngx_cycle->log);
    }

    if (list) {
        for (i = 0; i < n; i++) {
            list[i] = lease ? &lease[i] : &set->lease[i];
        }

        (void) ngx_http_rate_limit_lease_send(list, n, RL_CORE_MODE_RELEASE,
                                              ngx_cycle->log);
    }

    if (list != stack && list != NULL) {
        ngx_free(list);
    }

    if (lease) {
        ngx_free(lease);
    }
}


/*
 * The worker exits: every lease still held is released, best effort, and
 * the link writes what it can without waiting before it closes.
 */

void
ngx_http_rate_limit_lease_exit(void)
{
    ngx_queue_t                      *q;
    ngx_http_rate_limit_lease_t      *lease;

    if (!ngx_http_rate_limit_lease_ready) {
        return;
    }

    if (ngx_http_rate_limit_lease_timer.timer_set) {
        ngx_del_timer(&ngx_http_rate_limit_lease_timer);
    }

    /* one request at a time: its member goes with its leases */

    while (!ngx_queue_empty(&ngx_http_rate_limit_leases)) {
        q = ngx_queue_head(&ngx_http_rate_limit_leases);
        lease = ngx_queue_data(q, ngx_http_rate_limit_lease_t, queue);
        ngx_http_rate_limit_lease_end(lease->ctx);
    }

    ngx_http_rate_limit_link_flush_now();

    ngx_http_rate_limit_lease_ready = 0;
}


/*
 * The leases of ctx's concurrency zones, written into lease when it is not
 * NULL; *n is their number.
 */

static void
ngx_http_rate_limit_lease_zones(ngx_http_rate_limit_ctx_t *ctx,
    ngx_http_rate_limit_lease_t *lease, ngx_uint_t *n)
{
    ngx_uint_t                   i, k;
    ngx_http_rate_limit_zone_t  *zone;

    k = 0;

    for (i = 0; i < ctx->nzones; i++) {
        zone = ctx->zones[i];

        /* a local admission holds no Redis lease */

        if (!ngx_http_rate_limit_is_concurrency(zone)
            || ctx->answered[i] == NGX_HTTP_RATE_LIMIT_BY_LOCAL)
        {
            continue;
        }

        if (lease) {
            lease[k].ctx = ctx;
            lease[k].zone.prefix = (char *) zone->prefix.data;
            lease[k].zone.prefix_len = zone->prefix.len;
            lease[k].zone.zone = (char *) zone->name.data;
            lease[k].zone.zone_len = zone->name.len;
            lease[k].zone.key = (char *) ctx->keys[i].data;
            lease[k].zone.key_len = ctx->keys[i].len;
            lease[k].zone.limit = &zone->limit;
            lease[k].zone.cost = 0;
            lease[k].interval = ngx_max(zone->limit.period_s * 1000 / 3, 1);
        }

        k++;
    }

    *n = k;
}


/* The command(s) for these leases; NGX_OK when they went to the link. */

static ngx_int_t
ngx_http_rate_limit_lease_send(ngx_http_rate_limit_lease_t **leases,
    ngx_uint_t n, rl_core_mode_e mode, ngx_log_t *log)
{
    ngx_int_t                        rc;
    ngx_uint_t                       i;
    rl_core_lease_t                 *l;
    ngx_http_rate_limit_set_t        set;
    ngx_http_rate_limit_lease_cmd_t  cmd;

    if (n == 0) {
        return NGX_OK;
    }

    l = ngx_alloc(n * sizeof(rl_core_lease_t), log);
    if (l == NULL) {
        ngx_http_rate_limit_lease_stats.failed++;
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        l[i].zone = &leases[i]->zone;
        l[i].member = (char *) leases[i]->ctx->member.data;
        l[i].member_len = leases[i]->ctx->member.len;
    }

    cmd.leases = l;
    cmd.mode = mode;

    set.n = n;
    set.zone = ngx_http_rate_limit_lease_zone;
    set.build = ngx_http_rate_limit_lease_build;
    set.data = &cmd;

    rc = ngx_http_rate_limit_link_send_set(&set, log);

    ngx_free(l);

    if (rc != NGX_OK) {
        ngx_http_rate_limit_lease_stats.failed++;
        ngx_http_rate_limit_log_error(&ngx_http_rate_limit_lease_throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_DOWN, log,
                                      "rate_limit: %s of %ui leases not "
                                      "sent (%ui failed so far)",
                                      mode == RL_CORE_MODE_RENEW
                                      ? "renewal" : "release", n,
                                      ngx_http_rate_limit_lease_stats.failed);
    }

    return rc;
}


static const rl_core_zone_request_t *
ngx_http_rate_limit_lease_zone(void *data, size_t i)
{
    ngx_http_rate_limit_lease_cmd_t  *cmd = data;

    return cmd->leases[i].zone;
}


/* One command of these leases; the op outlives the request. */

static ngx_http_rate_limit_op_t *
ngx_http_rate_limit_lease_build(void *data, const size_t *items, size_t n,
    ngx_log_t *log)
{
    size_t                            i, bytes;
    rl_core_lease_t                  *sub;
    ngx_http_rate_limit_op_t         *op;
    ngx_http_rate_limit_lease_cmd_t  *cmd = data;

    sub = ngx_alloc(n * sizeof(rl_core_lease_t), log);
    if (sub == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        sub[i] = cmd->leases[items[i]];
    }

    op = NULL;

    if (rl_core_lease_size(sub, n, &bytes) != RL_CORE_OK) {
        goto done;
    }

    op = ngx_alloc(sizeof(ngx_http_rate_limit_op_t) + sizeof(int64_t) + bytes,
                   log);
    if (op == NULL) {
        goto done;
    }

    ngx_memzero(op, sizeof(ngx_http_rate_limit_op_t));

    op->handler = ngx_http_rate_limit_lease_on_answer;
    /* what the answer is counted against: the mode and how many */
    op->data = (void *) (uintptr_t) ((n << 1)
                                     | (cmd->mode == RL_CORE_MODE_RENEW));
    op->nvalues = 1;
    op->values = (int64_t *) (op + 1);
    op->cmd = (char *) (op->values + 1);

    if (rl_core_lease_build(sub, n, cmd->mode, op->cmd, bytes, &op->len)
        != RL_CORE_OK)
    {
        ngx_free(op);
        op = NULL;
    }

done:

    ngx_free(sub);
    return op;
}


/* Only counted: nobody waits for a renewal or a release. */

static void
ngx_http_rate_limit_lease_on_answer(ngx_http_rate_limit_op_t *op,
    ngx_http_rate_limit_answer_e answer, ngx_str_t *text)
{
    int64_t     found;
    uintptr_t   data;
    ngx_uint_t  n, renew;

    data = (uintptr_t) op->data;
    renew = data & 1;
    n = data >> 1;
    found = op->values[0];

    if (answer != NGX_HTTP_RATE_LIMIT_ANSWER_OK || found < 0
        || (uint64_t) found > n)
    {
        ngx_http_rate_limit_lease_stats.failed++;
        ngx_http_rate_limit_log_error(&ngx_http_rate_limit_lease_throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_REPLY,
                                      ngx_cycle->log,
                                      "rate_limit: lease %s failed: \"%V\" "
                                      "(%ui failed so far)",
                                      renew ? "renewal" : "release",
                                      text ? text : &ngx_http_rate_limit_lost,
                                      ngx_http_rate_limit_lease_stats.failed);

    } else if (!renew) {
        ngx_http_rate_limit_lease_stats.released += found;

    } else {
        ngx_http_rate_limit_lease_stats.renewed += found;

        if ((ngx_uint_t) found < n) {
            /* expired before its renewal: another request may have its
               slot while it runs */
            ngx_http_rate_limit_lease_stats.lost += n - found;
            ngx_http_rate_limit_log_error(
                &ngx_http_rate_limit_lease_throttle,
                NGX_HTTP_RATE_LIMIT_LOG_LOST, ngx_cycle->log,
                "rate_limit: %ui of %ui leases had expired before their "
                "renewal (%ui so far)", n - (ngx_uint_t) found, n,
                ngx_http_rate_limit_lease_stats.lost);
        }
    }

    ngx_free(op);
}


/*
 * A renewal round: every lease due within half its interval goes in one
 * command (renewing a little early costs nothing and makes rounds fewer);
 * each is due again an interval from now, sent or not: two rounds may
 * fail before a lease expires.
 */

static void
ngx_http_rate_limit_lease_renew(ngx_event_t *ev)
{
    ngx_uint_t                    n, cap;
    ngx_queue_t                  *q;
    ngx_http_rate_limit_lease_t  *lease, **list;

    cap = 0;

    for (q = ngx_queue_head(&ngx_http_rate_limit_leases);
         q != ngx_queue_sentinel(&ngx_http_rate_limit_leases);
         q = ngx_queue_next(q))
    {
        cap++;
    }

    list = cap ? ngx_alloc(cap * sizeof(void *), ev->log) : NULL;
    n = 0;

    for (q = ngx_queue_head(&ngx_http_rate_limit_leases);
         q != ngx_queue_sentinel(&ngx_http_rate_limit_leases);
         q = ngx_queue_next(q))
    {
        lease = ngx_queue_data(q, ngx_http_rate_limit_lease_t, queue);

        if ((ngx_msec_int_t) (lease->due - ngx_current_msec)
            > (ngx_msec_int_t) (lease->interval / 2))
        {
            continue;
        }

        lease->due = ngx_current_msec + lease->interval;

        if (list) {
            list[n++] = lease;
        }
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "rate limit: renewing %ui leases", n);

    if (list) {
        (void) ngx_http_rate_limit_lease_send(list, n, RL_CORE_MODE_RENEW,
                                              ev->log);
        ngx_free(list);

    } else if (cap) {
        ngx_http_rate_limit_lease_stats.failed++;
    }

    ngx_http_rate_limit_lease_arm();
}


/* The timer at the earliest due time, if any lease is held. */

static void
ngx_http_rate_limit_lease_arm(void)
{
    ngx_msec_t                    first;
    ngx_msec_int_t                wait;
    ngx_queue_t                  *q;
    ngx_http_rate_limit_lease_t  *lease;
    ngx_event_t                  *ev;

    ev = &ngx_http_rate_limit_lease_timer;

    if (ngx_queue_empty(&ngx_http_rate_limit_leases)) {
        return;     /* a timer still set finds nothing due: harmless */
    }

    q = ngx_queue_head(&ngx_http_rate_limit_leases);
    lease = ngx_queue_data(q, ngx_http_rate_limit_lease_t, queue);
    first = lease->due;

    for (q = ngx_queue_next(q);
         q != ngx_queue_sentinel(&ngx_http_rate_limit_leases);
         q = ngx_queue_next(q))
    {
        lease = ngx_queue_data(q, ngx_http_rate_limit_lease_t, queue);

        if ((ngx_msec_int_t) (lease->due - first) < 0) {
            first = lease->due;
        }
    }

    wait = (ngx_msec_int_t) (first - ngx_current_msec);

    if (wait < 1) {
        wait = 1;
    }

    if (ev->timer_set
        && (ngx_msec_int_t) (ev->timer.key - (ngx_current_msec + wait)) <= 0)
    {
        return;     /* it fires first anyway */
    }

    ngx_add_timer(ev, (ngx_msec_t) wait);
}
