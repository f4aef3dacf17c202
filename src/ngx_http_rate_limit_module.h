
/*
 * ngx_http_rate_limit_module: types shared by the glue's files.
 */


#ifndef _NGX_HTTP_RATE_LIMIT_MODULE_H_INCLUDED_
#define _NGX_HTTP_RATE_LIMIT_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "rl_core.h"


/*
 * Zones whose per-call arrays fit on the stack; a request with more takes
 * them from its pool.
 */
#define NGX_HTTP_RATE_LIMIT_STACK_ZONES  8


/* What decided a zone of a request: ctx->answered[i], 0 for none. */
#define NGX_HTTP_RATE_LIMIT_BY_REDIS  1     /* or the deny cache */
#define NGX_HTTP_RATE_LIMIT_BY_LOCAL  2     /* the fallback */


typedef struct ngx_http_rate_limit_zone_metrics_s
    ngx_http_rate_limit_zone_metrics_t;


typedef struct {
    ngx_str_t                   name;
    ngx_http_complex_value_t   *key;        /* NULL until rate_limit_zone */
    ngx_str_t                   prefix;
    rl_core_limit_t             limit;
    ngx_uint_t                  cache;      /* deny cache entries, 0 off */
    ngx_uint_t                  index;      /* in the main conf's zones */

    /* fallback=: GCRA with interval T and tolerance tau; T 0: none */
    uint64_t                    fallback_t_us;
    uint64_t                    fallback_tau_us;
    uint64_t                    fallback_burst;
    ngx_uint_t                  fallback_count; /* fallback=N of a
                                                   concurrency zone, 0:
                                                   none */

    /* in shared memory, set when the zone is made (NULL: not counted) */
    ngx_http_rate_limit_zone_metrics_t  *metrics;

    /* concurrency=N (0: a rate zone) and lease=, while parsing */
    ngx_uint_t                  concurrency;
    time_t                      lease;
    char                       *rate_param; /* a rate zone's parameter
                                               given, for the error */

    /* the first "rate_limit NAME" that used it, for "unknown zone" */
    u_char                     *used_file;
    ngx_uint_t                  used_line;
} ngx_http_rate_limit_zone_t;


/* A Redis address as rate_limit_redis names it, resolved at nginx -t. */
typedef struct {
    ngx_str_t                   name;       /* as written, for logs */
    ngx_str_t                   host;       /* numeric, NUL-terminated */
    int                         port;
    ngx_str_t                   unix_path;  /* NUL-terminated, or empty */
} ngx_http_rate_limit_addr_t;


typedef enum {
    NGX_HTTP_RATE_LIMIT_STANDALONE = 0,
    NGX_HTTP_RATE_LIMIT_SENTINEL,
    NGX_HTTP_RATE_LIMIT_CLUSTER
} ngx_http_rate_limit_mode_e;


typedef struct {
    /* the first address: the node (standalone) or the first sentinel */
    ngx_str_t                   name;       /* as written, for logs */
    ngx_str_t                   host;       /* numeric, NUL-terminated */
    int                         port;
    ngx_str_t                   unix_path;  /* NUL-terminated, or empty */

    ngx_uint_t                  mode;       /* ngx_http_rate_limit_mode_e */
    ngx_array_t                *sentinels;  /* ngx_http_rate_limit_addr_t */
    ngx_array_t                *seeds;      /* cluster: the same */
    ngx_str_t                   master;     /* NUL-terminated */
    ngx_str_t                   sentinel_username;
    ngx_str_t                   sentinel_password;

    ngx_int_t                   db;         /* -1: no SELECT */
    ngx_str_t                   username;
    ngx_str_t                   password;
    ngx_msec_t                  connect_timeout;
    ngx_msec_t                  timeout;
    ngx_uint_t                  connections;
    ngx_uint_t                  max_pending;

    /* TLS: ssl_ctx is an SSL_CTX made when the configuration is loaded */
    ngx_flag_t                  tls;
    ngx_flag_t                  tls_verify;
    ngx_str_t                   tls_ca;
    ngx_str_t                   tls_cert;
    ngx_str_t                   tls_key;
    ngx_str_t                   tls_server_name; /* NUL-terminated */
    void                       *ssl_ctx;
} ngx_http_rate_limit_redis_conf_t;


typedef struct {
    ngx_array_t                 zones;      /* ngx_http_rate_limit_zone_t * */
    ngx_http_rate_limit_redis_conf_t  *redis;

    size_t                      shm_size;   /* rate_limit_shm_size */
    ngx_shm_zone_t             *shm;        /* NULL: module not used */
    ngx_flag_t                  metrics;    /* a rate_limit_metrics */

    /* the first "rate_limit NAME", for "no rate_limit_redis" */
    u_char                     *used_file;
    ngx_uint_t                  used_line;
} ngx_http_rate_limit_main_conf_t;


/*
 * A "rate_limit" or "rate_limit_charge" line: its zone, named or picked
 * per request by a variable, and its cost (ngx_http_rate_limit_rule.c).
 */
typedef struct {
    ngx_http_rate_limit_zone_t  *zone;      /* NULL: picked by name */
    ngx_http_complex_value_t    *name;      /* the $VARIABLE naming it */
    ngx_http_complex_value_t    *cost;      /* NULL: cost_n */
    uint64_t                     cost_n;    /* units */
    u_char                      *file;      /* the line, for nginx -t */
    ngx_uint_t                   line;
} ngx_http_rate_limit_rule_t;


typedef struct {
    ngx_array_t                *rules;      /* ngx_http_rate_limit_rule_t;
                                               NULL: off or none */
    ngx_array_t                *charges;    /* ngx_http_rate_limit_rule_t;
                                               NULL: none */
    ngx_uint_t                  status;
    ngx_flag_t                  fail_open;
    ngx_flag_t                  dry_run;
    ngx_flag_t                  headers;
    ngx_uint_t                  log_level;
} ngx_http_rate_limit_loc_conf_t;


typedef enum {
    NGX_HTTP_RATE_LIMIT_NONE = 0,           /* no zone applied */
    NGX_HTTP_RATE_LIMIT_PASSED,
    NGX_HTTP_RATE_LIMIT_REJECTED,
    NGX_HTTP_RATE_LIMIT_REJECTED_DRY_RUN,
    NGX_HTTP_RATE_LIMIT_ERROR
} ngx_http_rate_limit_outcome_e;


/*
 * Where a main request is in its decision.  The handler and the link's
 * completion move it along:
 *
 *   NEW --send--> WAITING --answer, error or timeout--> DECIDED --> DONE
 *    |                                                     ^  |     ^
 *    +---- deny cache hit, or no room on the link ---------+  v     |
 *                                                            HELD --+
 *
 * DECIDED: the outcome is final and the handler has yet to return it
 * (at once, or when the completion reruns the phases); HELD: passed, and
 * waiting its turn (delay=) on a timer; DONE: returned, so a handler run
 * again after an internal redirect declines.
 */
typedef enum {
    NGX_HTTP_RATE_LIMIT_STATE_NEW = 0,      /* keys built, nothing asked */
    NGX_HTTP_RATE_LIMIT_STATE_WAITING,      /* the command is out */
    NGX_HTTP_RATE_LIMIT_STATE_DECIDED,
    NGX_HTTP_RATE_LIMIT_STATE_HELD,         /* delayed, on ctx->wait */
    NGX_HTTP_RATE_LIMIT_STATE_DONE
} ngx_http_rate_limit_state_e;

/* The outcome is final: the filter and the variables may show it. */
#define ngx_http_rate_limit_decided(ctx)                                      \
    ((ctx)->state >= NGX_HTTP_RATE_LIMIT_STATE_DECIDED)


typedef struct ngx_http_rate_limit_op_s  ngx_http_rate_limit_op_t;


/*
 * The shape of a command's well-formed reply, which the link's reader
 * holds every reply to (ngx_http_rate_limit_reader.h).
 */
typedef struct {
    ngx_uint_t                  depth;  /* arrays nested this deep at most;
                                           0: no array */
    size_t                      size;   /* bytes of the reply at most */
} ngx_http_rate_limit_shape_t;


/*
 * The decision of a main request.  It lives in the main request's pool and
 * is found again through that pool's cleanup after an internal redirect
 * zeroed r->ctx.
 */
typedef struct {
    ngx_http_request_t         *request;
    ngx_http_rate_limit_loc_conf_t  *lcf;   /* the deciding location's */

    ngx_uint_t                  nzones;     /* zones with a non-empty key */
    ngx_http_rate_limit_zone_t **zones;
    ngx_str_t                  *keys;       /* client keys, raw */
    uint64_t                   *costs;      /* units per zone */
    rl_core_zone_result_t      *results;
    u_char                     *answered;   /* per zone: results[i] valid,
                                               NGX_HTTP_RATE_LIMIT_BY_* */

    ngx_http_rate_limit_op_t   *op;         /* the pending command */
    ngx_event_t                 wait;       /* the request's timeout */
    uint64_t                    sent;       /* us, monotonic, read before
                                               the command was handed on */

    rl_core_verdict_t           verdict;
    ngx_http_rate_limit_state_e    state;
    ngx_http_rate_limit_outcome_e  outcome;

    ngx_msec_t                  delay_ms;   /* held this long */

    unsigned                    cached:1;   /* decided by the deny cache */
    unsigned                    local:1;    /* a zone decided by fallback */
    unsigned                    local_held:1; /* holds local in-progress
                                                 counts, given back at the
                                                 end */
    unsigned                    held:1;     /* was HELD (delay=) */
    unsigned                    bad:1;      /* a rule's value was bad: the
                                               fail policy unless a zone
                                               rejects */

    /* concurrency zones: the request's lease member (empty: none) and
       the leases it holds, in ngx_http_rate_limit_lease.c's registry */
    ngx_str_t                   member;
    void                       *leases;
} ngx_http_rate_limit_ctx_t;


extern ngx_module_t  ngx_http_rate_limit_module;


/* ngx_http_rate_limit_conf.c */
extern ngx_command_t  ngx_http_rate_limit_commands[];
void *ngx_http_rate_limit_create_main_conf(ngx_conf_t *cf);
char *ngx_http_rate_limit_init_main_conf(ngx_conf_t *cf, void *conf);
void *ngx_http_rate_limit_create_loc_conf(ngx_conf_t *cf);
char *ngx_http_rate_limit_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
ngx_http_rate_limit_zone_t *ngx_http_rate_limit_find_zone(ngx_conf_t *cf,
    ngx_http_rate_limit_main_conf_t *rmcf, ngx_str_t *name);

/* ngx_http_rate_limit_rule.c */
char *ngx_http_rate_limit_rule_parse(ngx_conf_t *cf,
    ngx_http_rate_limit_rule_t *rule, ngx_str_t *name, ngx_str_t *cost,
    ngx_uint_t charge);
ngx_int_t ngx_http_rate_limit_rules_check(ngx_conf_t *cf,
    ngx_array_t *rules, ngx_uint_t charge);
ngx_int_t ngx_http_rate_limit_rule_eval(ngx_http_request_t *r,
    ngx_http_rate_limit_rule_t *rule, ngx_uint_t charge,
    ngx_http_rate_limit_zone_t **zonep, ngx_str_t *key, uint64_t *cost);

/* ngx_http_rate_limit_charge.c */
ngx_int_t ngx_http_rate_limit_charge_handler(ngx_http_request_t *r);

/* ngx_http_rate_limit_lease.c */
void ngx_http_rate_limit_lease_init(ngx_cycle_t *cycle);
ngx_int_t ngx_http_rate_limit_lease_admitted(ngx_http_rate_limit_ctx_t *ctx);
ngx_int_t ngx_http_rate_limit_lease_member(ngx_http_rate_limit_ctx_t *ctx);
void ngx_http_rate_limit_lease_end(ngx_http_rate_limit_ctx_t *ctx);
void ngx_http_rate_limit_lease_exit(void);

#define ngx_http_rate_limit_is_concurrency(zone)                              \
    ((zone)->limit.algorithm == RL_CORE_ALG_CONCURRENCY)

/* ngx_http_rate_limit_handler.c */
ngx_int_t ngx_http_rate_limit_handler(ngx_http_request_t *r);
ngx_http_rate_limit_ctx_t *ngx_http_rate_limit_get_ctx(
    ngx_http_request_t *r);
ngx_int_t ngx_http_rate_limit_init_worker(ngx_cycle_t *cycle);
void ngx_http_rate_limit_exit_worker(ngx_cycle_t *cycle);
/* us, monotonic and the same in every process, read when called */
uint64_t ngx_http_rate_limit_monotonic_usec(void);

/* ngx_http_rate_limit_filter.c */
ngx_int_t ngx_http_rate_limit_filter_init(ngx_conf_t *cf);

/* ngx_http_rate_limit_variables.c */
ngx_int_t ngx_http_rate_limit_add_variables(ngx_conf_t *cf);


#endif /* _NGX_HTTP_RATE_LIMIT_MODULE_H_INCLUDED_ */
