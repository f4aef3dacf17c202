
/*
 * ngx_http_rate_limit_module: counters, histograms and gauges in the
 * node's shared memory (ngx_http_rate_limit_metrics.c), and the
 * rate_limit_metrics content handler that serves them
 * (ngx_http_rate_limit_metrics_text.c).
 *
 * Records are laid out before they are counted in: a zone's when the
 * configuration is loaded, a node's when the link learns its address.
 * The request path and the link then only add atomically to fields of a
 * record they hold a pointer to: no lookup, no lock.
 */


#ifndef _NGX_HTTP_RATE_LIMIT_METRICS_H_INCLUDED_
#define _NGX_HTTP_RATE_LIMIT_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_rate_limit_module.h"
#include "ngx_http_rate_limit_shm.h"


/* nginx_rate_limit_requests_total's outcome label */
typedef enum {
    NGX_HTTP_RATE_LIMIT_M_PASSED = 0,
    NGX_HTTP_RATE_LIMIT_M_REJECTED,
    NGX_HTTP_RATE_LIMIT_M_REJECTED_CACHED,
    NGX_HTTP_RATE_LIMIT_M_DELAYED,
    NGX_HTTP_RATE_LIMIT_M_DRY_RUN_REJECTED,
    NGX_HTTP_RATE_LIMIT_M_ERROR_PASSED,
    NGX_HTTP_RATE_LIMIT_M_ERROR_REJECTED,
    NGX_HTTP_RATE_LIMIT_M_LOCAL_PASSED,
    NGX_HTTP_RATE_LIMIT_M_LOCAL_REJECTED,
    NGX_HTTP_RATE_LIMIT_M_OUTCOMES
} ngx_http_rate_limit_m_outcome_e;


/* nginx_rate_limit_redis_commands_total's result label */
typedef enum {
    NGX_HTTP_RATE_LIMIT_CMD_OK = 0,
    NGX_HTTP_RATE_LIMIT_CMD_ERROR,
    NGX_HTTP_RATE_LIMIT_CMD_TIMEOUT,
    NGX_HTTP_RATE_LIMIT_CMD_NO_ROOM,
    NGX_HTTP_RATE_LIMIT_CMD_MOVED,
    NGX_HTTP_RATE_LIMIT_CMD_ASK,
    NGX_HTTP_RATE_LIMIT_CMD_RESULTS
} ngx_http_rate_limit_cmd_result_e;


/* nginx_rate_limit_redis_connections's state label, then pending */
typedef enum {
    NGX_HTTP_RATE_LIMIT_G_UP = 0,
    NGX_HTTP_RATE_LIMIT_G_CONNECTING,
    NGX_HTTP_RATE_LIMIT_G_DOWN,
    NGX_HTTP_RATE_LIMIT_G_PENDING,
    NGX_HTTP_RATE_LIMIT_GAUGES
} ngx_http_rate_limit_gauge_e;


/* le= of the latency histogram, then +Inf */
#define NGX_HTTP_RATE_LIMIT_BUCKETS  12


struct ngx_http_rate_limit_zone_metrics_s {
    ngx_queue_t                 queue;
    ngx_atomic_t                requests[NGX_HTTP_RATE_LIMIT_M_OUTCOMES];
    ngx_atomic_t                charged;
    size_t                      len;
    u_char                      name[RL_CORE_ZONE_NAME_MAX];
};


typedef struct {
    ngx_queue_t                 queue;
    ngx_atomic_t                commands[NGX_HTTP_RATE_LIMIT_CMD_RESULTS];
    ngx_atomic_t                buckets[NGX_HTTP_RATE_LIMIT_BUCKETS];
    ngx_atomic_t                sum_us;
    /* each process's own, summed over the live ones when served */
    ngx_atomic_t                gauges[NGX_HTTP_RATE_LIMIT_PROCS]
                                      [NGX_HTTP_RATE_LIMIT_GAUGES];
    size_t                      len;
    u_char                      name[1];    /* len bytes */
} ngx_http_rate_limit_node_metrics_t;


/*
 * What one connection adds to its node's gauges, so that a state change
 * or a node that moves takes back exactly that.  Zeroed with the
 * connection.
 */
typedef struct {
    ngx_http_rate_limit_node_metrics_t  *node;
    ngx_uint_t                           state;  /* gauge + 1, 0: none */
    ngx_uint_t                           pending;
} ngx_http_rate_limit_conn_metrics_t;


/* rate_limit_metrics (ngx_http_rate_limit_metrics_text.c) */
char *ngx_http_rate_limit_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* This process's slot in sh->procs, -1: none (more than PROCS) */
ngx_int_t ngx_http_rate_limit_metrics_own_slot(void);

/* 1 when the process whose gauge slot it is still lives */
ngx_uint_t ngx_http_rate_limit_metrics_alive(ngx_pid_t pid);

/* shm init_zone: a record for every zone of the configuration */
ngx_int_t ngx_http_rate_limit_metrics_init_zone(
    ngx_http_rate_limit_shm_ctx_t *ctx);

/* The worker's gauge slot: taken at init_process, given back at exit. */
void ngx_http_rate_limit_metrics_init_worker(void);
void ngx_http_rate_limit_metrics_exit_worker(void);

/*
 * A node's record by its label ("host:port" or the socket path), made
 * when first named; NULL without shared memory or room (then the node is
 * not counted, and that is logged).  Not for the request path: the link
 * calls it when it learns a node's address.
 */
ngx_http_rate_limit_node_metrics_t *ngx_http_rate_limit_metrics_node(
    ngx_str_t *name, ngx_log_t *log);

/* A decided request, once, in every zone it was decided in. */
void ngx_http_rate_limit_metrics_request(ngx_http_rate_limit_ctx_t *ctx);

/* Units a charge took from a zone (rate_limit_charge). */
void ngx_http_rate_limit_metrics_charged(ngx_http_rate_limit_zone_t *zone,
    uint64_t units);

/*
 * A command's end on a node: its result (NGX_HTTP_RATE_LIMIT_CMD_RESULTS:
 * none, counted before), and when it was answered, the time from its write
 * (written_us from ngx_http_rate_limit_monotonic_usec, 0: not written, no
 * latency).
 */
void ngx_http_rate_limit_metrics_command(
    ngx_http_rate_limit_node_metrics_t *node,
    ngx_http_rate_limit_cmd_result_e result, uint64_t written_us);

/*
 * A connection's state (an rl_core_conn_state_e) and pending commands
 * now, on node (NULL: it counts nowhere any more).
 */
void ngx_http_rate_limit_metrics_conn(ngx_http_rate_limit_conn_metrics_t *cm,
    ngx_http_rate_limit_node_metrics_t *node, ngx_uint_t state,
    ngx_uint_t pending);


#endif /* _NGX_HTTP_RATE_LIMIT_METRICS_H_INCLUDED_ */
