
/*
 * ngx_http_rate_limit_module: directives and configuration merge.
 *
 * Everything a user can get wrong is found here, when the configuration is
 * loaded, and reported with the file and line: nothing is checked for the
 * first time at request time.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_rate_limit_module.h"
#include "ngx_http_rate_limit_tls.h"
#include "ngx_http_rate_limit_shm.h"
#include "ngx_http_rate_limit_metrics.h"


#define NGX_HTTP_RATE_LIMIT_DEFAULT_PORT     6379
#define NGX_HTTP_RATE_LIMIT_DEFAULT_CACHE    10000
#define NGX_HTTP_RATE_LIMIT_DEFAULT_LEASE    30          /* seconds */
#define NGX_HTTP_RATE_LIMIT_MAX_CONNECTIONS  64
#define NGX_HTTP_RATE_LIMIT_MAX_PENDING      1000000
/* SELECT takes a C int; Redis's "databases" is bounded by it too */
#define NGX_HTTP_RATE_LIMIT_MAX_DB           NGX_MAX_INT32_VALUE
/*
 * Timeouts become timers: a bound well below the 24.8 days that a 32-bit
 * ngx_msec_t timer may be ahead of its clock.
 */
#define NGX_HTTP_RATE_LIMIT_MAX_TIMEOUT      3600000
#define NGX_HTTP_RATE_LIMIT_DEFAULT_SHM      (10 * 1024 * 1024)
/* the fallback's tolerance, in us, as exact as the script's numbers */
#define NGX_HTTP_RATE_LIMIT_MAX_TAU          (1ULL << 53)
#define NGX_HTTP_RATE_LIMIT_MAX_FALLBACK_COUNT  1000000


static char *ngx_http_rate_limit_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_rate_limit_redis_address(ngx_conf_t *cf,
    ngx_http_rate_limit_addr_t *addr, ngx_str_t *value);
static char *ngx_http_rate_limit_redis_cluster(ngx_conf_t *cf,
    ngx_http_rate_limit_redis_conf_t *rcf, ngx_array_t *addrs);
static char *ngx_http_rate_limit_redis_mode(ngx_conf_t *cf,
    ngx_http_rate_limit_redis_conf_t *rcf, ngx_array_t *addrs);
static char *ngx_http_rate_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_rate_limit_concurrency_zone(ngx_conf_t *cf,
    ngx_http_rate_limit_zone_t *zone);
static char *ngx_http_rate_limit_zone_param(ngx_conf_t *cf,
    ngx_http_rate_limit_zone_t *zone, ngx_str_t *value);
static char *ngx_http_rate_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_rate_limit_delay_check(ngx_conf_t *cf,
    ngx_http_rate_limit_zone_t *zone);
static char *ngx_http_rate_limit_fallback_param(ngx_conf_t *cf,
    ngx_http_rate_limit_zone_t *zone, ngx_str_t *s);
static char *ngx_http_rate_limit_fallback_check(ngx_conf_t *cf,
    ngx_http_rate_limit_zone_t *zone);
static char *ngx_http_rate_limit_charge(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_rate_limit_check_status(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_rate_limit_check_shm_size(ngx_conf_t *cf, void *post,
    void *data);
static ngx_int_t ngx_http_rate_limit_param(ngx_str_t *value, char *name,
    ngx_str_t *out);


static ngx_conf_post_handler_pt  ngx_http_rate_limit_status_post =
    ngx_http_rate_limit_check_status;

static ngx_conf_post_handler_pt  ngx_http_rate_limit_shm_size_post =
    ngx_http_rate_limit_check_shm_size;


static ngx_conf_enum_t  ngx_http_rate_limit_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


ngx_command_t  ngx_http_rate_limit_commands[] = {

    { ngx_string("rate_limit_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_rate_limit_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("rate_limit_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_rate_limit_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("rate_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_rate_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("rate_limit_charge"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_rate_limit_charge,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("rate_limit_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_rate_limit_loc_conf_t, status),
      &ngx_http_rate_limit_status_post },

    { ngx_string("rate_limit_fail_open"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_rate_limit_loc_conf_t, fail_open),
      NULL },

    { ngx_string("rate_limit_dry_run"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_rate_limit_loc_conf_t, dry_run),
      NULL },

    { ngx_string("rate_limit_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_rate_limit_loc_conf_t, headers),
      NULL },

    { ngx_string("rate_limit_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_rate_limit_loc_conf_t, log_level),
      &ngx_http_rate_limit_log_levels },

    { ngx_string("rate_limit_shm_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_rate_limit_main_conf_t, shm_size),
      &ngx_http_rate_limit_shm_size_post },

    { ngx_string("rate_limit_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_rate_limit_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


void *
ngx_http_rate_limit_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_rate_limit_main_conf_t  *rmcf;

    rmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_rate_limit_main_conf_t));
    if (rmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     rmcf->redis = NULL;
     *     rmcf->used_file = NULL;
     *     rmcf->used_line = 0;
     *     rmcf->shm = NULL;
     *     rmcf->metrics = 0;
     */

    rmcf->shm_size = NGX_CONF_UNSET_SIZE;

    if (ngx_array_init(&rmcf->zones, cf->pool, 4,
                       sizeof(ngx_http_rate_limit_zone_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return rmcf;
}


char *
ngx_http_rate_limit_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_rate_limit_main_conf_t *rmcf = conf;

    ngx_uint_t                   i;
    ngx_http_rate_limit_zone_t **zones;

    /* zones may be used before their rate_limit_zone line: check now */

    zones = rmcf->zones.elts;

    for (i = 0; i < rmcf->zones.nelts; i++) {
        if (zones[i]->key == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "unknown rate_limit zone \"%V\" in %s:%ui",
                          &zones[i]->name, zones[i]->used_file,
                          zones[i]->used_line);
            return NGX_CONF_ERROR;
        }
    }

    if (rmcf->used_file != NULL && rmcf->redis == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"rate_limit\" requires \"rate_limit_redis\" "
                      "in %s:%ui", rmcf->used_file, rmcf->used_line);
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_size_value(rmcf->shm_size,
                             NGX_HTTP_RATE_LIMIT_DEFAULT_SHM);

    /* metrics and fallback states: only where the module is used */

    if ((rmcf->redis != NULL || rmcf->metrics)
        && ngx_http_rate_limit_shm_add(cf, rmcf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


void *
ngx_http_rate_limit_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_rate_limit_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_rate_limit_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->rules = NGX_CONF_UNSET_PTR;
    conf->charges = NGX_CONF_UNSET_PTR;
    conf->status = NGX_CONF_UNSET_UINT;
    conf->fail_open = NGX_CONF_UNSET;
    conf->dry_run = NGX_CONF_UNSET;
    conf->headers = NGX_CONF_UNSET;
    conf->log_level = NGX_CONF_UNSET_UINT;

    return conf;
}


char *
ngx_http_rate_limit_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_rate_limit_loc_conf_t *prev = parent;
    ngx_http_rate_limit_loc_conf_t *conf = child;

    /* a level with no rate_limit inherits the list; "off" is a NULL list */
    ngx_conf_merge_ptr_value(conf->rules, prev->rules, NULL);
    ngx_conf_merge_ptr_value(conf->charges, prev->charges, NULL);

    /* every zone is declared by now: the checks that need them */

    if (ngx_http_rate_limit_rules_check(cf, conf->rules, 0) != NGX_OK
        || ngx_http_rate_limit_rules_check(cf, conf->charges, 1) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_uint_value(conf->status, prev->status,
                              NGX_HTTP_TOO_MANY_REQUESTS);
    ngx_conf_merge_value(conf->fail_open, prev->fail_open, 1);
    ngx_conf_merge_value(conf->dry_run, prev->dry_run, 0);
    ngx_conf_merge_value(conf->headers, prev->headers, 1);
    ngx_conf_merge_uint_value(conf->log_level, prev->log_level, NGX_LOG_ERR);

    return NGX_CONF_OK;
}


static char *
ngx_http_rate_limit_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_rate_limit_main_conf_t *rmcf = conf;

    char                              *rv;
    u_char                            *p;
    ngx_int_t                          n;
    ngx_str_t                         *value, s;
    ngx_uint_t                         i;
    ngx_array_t                       *addrs;
    ngx_http_rate_limit_addr_t        *addr;
    ngx_http_rate_limit_redis_conf_t  *rcf;

    if (rmcf->redis != NULL) {
        return "is duplicate";
    }

    rcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_rate_limit_redis_conf_t));
    if (rcf == NULL) {
        return NGX_CONF_ERROR;
    }

    rcf->db = -1;
    rcf->connect_timeout = 1000;
    rcf->timeout = 100;
    rcf->connections = 1;
    rcf->max_pending = 1000;
    rcf->tls = NGX_CONF_UNSET;
    rcf->tls_verify = NGX_CONF_UNSET;

    rcf->mode = NGX_CONF_UNSET_UINT;

    value = cf->args->elts;

    /* the addresses come first: every parameter has a "=" */

    addrs = ngx_array_create(cf->pool, 3, sizeof(ngx_http_rate_limit_addr_t));
    if (addrs == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_strlchr(value[i].data, value[i].data + value[i].len, '=')
            != NULL)
        {
            break;
        }

        addr = ngx_array_push(addrs);
        if (addr == NULL) {
            return NGX_CONF_ERROR;
        }

        rv = ngx_http_rate_limit_redis_address(cf, addr, &value[i]);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (addrs->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no redis address in \"rate_limit_redis\"");
        return NGX_CONF_ERROR;
    }

    for ( /* void */ ; i < cf->args->nelts; i++) {

        if (ngx_http_rate_limit_param(&value[i], "mode=", &s) == NGX_OK) {
            if (rcf->mode != NGX_CONF_UNSET_UINT) {
                return "has a duplicate \"mode=\"";
            }

            if (s.len == 10 && ngx_strncmp(s.data, "standalone", 10) == 0) {
                rcf->mode = NGX_HTTP_RATE_LIMIT_STANDALONE;

            } else if (s.len == 8 && ngx_strncmp(s.data, "sentinel", 8) == 0)
            {
                rcf->mode = NGX_HTTP_RATE_LIMIT_SENTINEL;

            } else if (s.len == 7 && ngx_strncmp(s.data, "cluster", 7) == 0) {
                rcf->mode = NGX_HTTP_RATE_LIMIT_CLUSTER;

            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid mode \"%V\", must be "
                                   "\"standalone\", \"sentinel\" or "
                                   "\"cluster\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_http_rate_limit_param(&value[i], "master=", &s) == NGX_OK) {
            if (s.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "empty name in \"master=\"");
                return NGX_CONF_ERROR;
            }

            rcf->master = s;
            continue;
        }

        if (ngx_http_rate_limit_param(&value[i], "sentinel_username=", &s)
            == NGX_OK)
        {
            if (s.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "empty name in \"sentinel_username=\"");
                return NGX_CONF_ERROR;
            }

            rcf->sentinel_username = s;
            continue;
        }

        if (ngx_http_rate_limit_param(&value[i], "sentinel_password=", &s)
            == NGX_OK)
        {
            if (s.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "empty password in "
                                   "\"sentinel_password=\"");
                return NGX_CONF_ERROR;
            }

            rcf->sentinel_password = s;
            continue;
        }

        if (ngx_http_rate_limit_param(&value[i], "db=", &s) == NGX_OK) {
            n = ngx_atoi(s.data, s.len);
            if (n == NGX_ERROR || n > NGX_HTTP_RATE_LIMIT_MAX_DB) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid db \"%V\", must be between "
                                   "0 and %d", &value[i],
                                   NGX_HTTP_RATE_LIMIT_MAX_DB);
                return NGX_CONF_ERROR;
            }

            rcf->db = n;
            continue;
        }

        if (ngx_http_rate_limit_param(&value[i], "username=", &s) == NGX_OK) {
            if (s.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "empty username in \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            rcf->username = s;
            continue;
        }

        if (ngx_http_rate_limit_param(&value[i], "password=", &s) == NGX_OK) {
            if (s.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "empty password in \"password=\"");
                return NGX_CONF_ERROR;
            }

            rcf->password = s;
            continue;
        }

        if (ngx_http_rate_limit_param(&value[i], "connect_timeout=", &s)
            == NGX_OK)
        {
            n = ngx_parse_time(&s, 0);
            if (n < 1 || n > NGX_HTTP_RATE_LIMIT_MAX_TIMEOUT) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid connect_timeout \"%V\", "
                                   "must be between 1ms and 1h", &value[i]);
                return NGX_CONF_ERROR;
            }

            rcf->connect_timeout = (ngx_msec_t) n;
            continue;
        }

        if (ngx_http_rate_limit_param(&value[i], "timeout=", &s) == NGX_OK) {
            n = ngx_parse_time(&s, 0);
            if (n < 1 || n > NGX_HTTP_RATE_LIMIT_MAX_TIMEOUT) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid timeout \"%V\", "
                                   "must be between 1ms and 1h", &value[i]);
                return NGX_CONF_ERROR;
            }

            rcf->timeout = (ngx_msec_t) n;
            continue;
        }

        if (ngx_http_rate_limit_param(&value[i], "connections=", &s)
            == NGX_OK)
        {
            n = ngx_atoi(s.data, s.len);
            if (n < 1 || n > NGX_HTTP_RATE_LIMIT_MAX_CONNECTIONS) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid connections \"%V\", "
                                   "must be between 1 and %d", &value[i],
                                   NGX_HTTP_RATE_LIMIT_MAX_CONNECTIONS);
                return NGX_CONF_ERROR;
            }

            rcf->connections = n;
            continue;
        }

        if (ngx_http_rate_limit_param(&value[i], "max_pending=", &s)
            == NGX_OK)
        {
            n = ngx_atoi(s.data, s.len);
            if (n < 1 || n > NGX_HTTP_RATE_LIMIT_MAX_PENDING) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid max_pending \"%V\", "
                                   "must be between 1 and %d", &value[i],
                                   NGX_HTTP_RATE_LIMIT_MAX_PENDING);
                return NGX_CONF_ERROR;
            }

            rcf->max_pending = n;
            continue;
        }

        n = ngx_http_rate_limit_tls_param(cf, rcf, &value[i]);

        if (n == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (n == NGX_OK) {
            continue;
        }

        /* NGX_DECLINED: not a tls parameter either */

        /* a misspelt "password=" must not put the secret in the log */

        s = value[i];
        p = ngx_strlchr(s.data, s.data + s.len, '=');

        if (p != NULL) {
            s.len = p - s.data + 1;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &s);
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_rate_limit_redis_mode(cf, rcf, addrs);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    /* certificates and keys are read now: errors name this line */

    if (ngx_http_rate_limit_tls_conf(cf, rcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    rmcf->redis = rcf;

    return NGX_CONF_OK;
}


/*
 * The address is resolved here, once, by the master: a worker must never
 * wait for a DNS answer, and hiredis would resolve a host name with a
 * blocking getaddrinfo().  hiredis gets the numeric form.
 */

static char *
ngx_http_rate_limit_redis_address(ngx_conf_t *cf,
    ngx_http_rate_limit_addr_t *addr, ngx_str_t *value)
{
    u_char     *p;
    ngx_url_t   u;

    ngx_memzero(addr, sizeof(ngx_http_rate_limit_addr_t));

    addr->name = *value;

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *value;
    u.default_port = NGX_HTTP_RATE_LIMIT_DEFAULT_PORT;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        if (u.err) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s in redis address \"%V\"", u.err, value);
        }

        return NGX_CONF_ERROR;
    }

    if (u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no address for redis \"%V\"", value);
        return NGX_CONF_ERROR;
    }

#if (NGX_HAVE_UNIX_DOMAIN)

    if (u.addrs[0].sockaddr->sa_family == AF_UNIX) {
        p = ngx_pnalloc(cf->pool, u.host.len + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(p, u.host.data, u.host.len);
        p[u.host.len] = '\0';

        addr->unix_path.data = p;
        addr->unix_path.len = u.host.len;

        return NGX_CONF_OK;
    }

#endif

    p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    addr->host.len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen,
                                  p, NGX_SOCKADDR_STRLEN, 0);
    p[addr->host.len] = '\0';
    addr->host.data = p;
    addr->port = ngx_inet_get_port(u.addrs[0].sockaddr);

    return NGX_CONF_OK;
}


/*
 * What the addresses are depends on the mode: the one node (standalone),
 * sentinels that name the master (sentinel), or seeds that give the slot
 * map (cluster).  The first address also gives the logs their name and
 * TLS its default server name.
 */

static char *
ngx_http_rate_limit_redis_mode(ngx_conf_t *cf,
    ngx_http_rate_limit_redis_conf_t *rcf, ngx_array_t *addrs)
{
    ngx_uint_t                   i;
    ngx_http_rate_limit_addr_t  *addr;

    addr = addrs->elts;

    rcf->name = addr[0].name;
    rcf->host = addr[0].host;
    rcf->port = addr[0].port;
    rcf->unix_path = addr[0].unix_path;

    if (rcf->mode == NGX_CONF_UNSET_UINT) {
        rcf->mode = NGX_HTTP_RATE_LIMIT_STANDALONE;
    }

    if (rcf->mode != NGX_HTTP_RATE_LIMIT_SENTINEL
        && (rcf->master.len || rcf->sentinel_username.len
            || rcf->sentinel_password.len))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"master=\" and \"sentinel_*=\" need "
                           "\"mode=sentinel\"");
        return NGX_CONF_ERROR;
    }

    if (rcf->mode == NGX_HTTP_RATE_LIMIT_STANDALONE) {
        if (addrs->nelts > 1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"mode=standalone\" takes one address, "
                               "not %ui", addrs->nelts);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    /* sentinels and seeds name the nodes by IP address */

    for (i = 0; i < addrs->nelts; i++) {
        if (addr[i].unix_path.len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               rcf->mode == NGX_HTTP_RATE_LIMIT_SENTINEL
                               ? "sentinel \"%V\": sentinels are reached "
                                 "over TCP"
                               : "cluster seed \"%V\": cluster nodes are "
                                 "reached over TCP", &addr[i].name);
            return NGX_CONF_ERROR;
        }
    }

    if (rcf->mode == NGX_HTTP_RATE_LIMIT_CLUSTER) {
        return ngx_http_rate_limit_redis_cluster(cf, rcf, addrs);
    }

    /* NGX_HTTP_RATE_LIMIT_SENTINEL */

    if (rcf->master.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"mode=sentinel\" needs \"master=\"");
        return NGX_CONF_ERROR;
    }

    rcf->sentinels = addrs;

    return NGX_CONF_OK;
}


/* Seeds: any nodes of the cluster, asked for the slot map. */

static char *
ngx_http_rate_limit_redis_cluster(ngx_conf_t *cf,
    ngx_http_rate_limit_redis_conf_t *rcf, ngx_array_t *addrs)
{
    if (rcf->db >= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"db=\" is not allowed with \"mode=cluster\": "
                           "a cluster has only database 0");
        return NGX_CONF_ERROR;
    }

    rcf->seeds = addrs;

    return NGX_CONF_OK;
}


static char *
ngx_http_rate_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_rate_limit_main_conf_t *rmcf = conf;

    char                        *rv, err[256];
    ngx_str_t                   *value;
    ngx_uint_t                   i;
    rl_core_status_e             rc;
    ngx_http_rate_limit_zone_t  *zone;

    value = cf->args->elts;

    /* "off" could never be applied: "rate_limit off" is the keyword */

    if (!rl_core_valid_zone_name((char *) value[1].data, value[1].len)
        || ngx_strcmp(value[1].data, "off") == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone name \"%V\", must be 1-%d of "
                           "\"A-Za-z0-9_-\" and not \"off\"", &value[1],
                           RL_CORE_ZONE_NAME_MAX);
        return NGX_CONF_ERROR;
    }

    zone = ngx_http_rate_limit_find_zone(cf, rmcf, &value[1]);
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (zone->key != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&zone->prefix, "rl");
    zone->cache = NGX_HTTP_RATE_LIMIT_DEFAULT_CACHE;
    zone->limit.algorithm = RL_CORE_ALG_GCRA;

    for (i = 2; i < cf->args->nelts; i++) {
        rv = ngx_http_rate_limit_zone_param(cf, zone, &value[i]);
        if (rv != NGX_CONF_OK) {
            zone->key = NULL;
            return rv;
        }
    }

    if (zone->key == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" must have \"key\" parameter",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (zone->concurrency) {
        rv = ngx_http_rate_limit_concurrency_zone(cf, zone);
        if (rv != NGX_CONF_OK) {
            zone->key = NULL;
            return rv;
        }

    } else if (zone->lease) {
        zone->key = NULL;
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"lease\" needs \"concurrency\" in zone \"%V\"",
                           &value[1]);
        return NGX_CONF_ERROR;

    } else if (zone->limit.count == 0) {
        zone->key = NULL;
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" must have \"rate\" parameter",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    rc = rl_core_check_limit(&zone->limit, err, sizeof(err));
    if (rc != RL_CORE_OK) {
        zone->key = NULL;
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_rate_limit_delay_check(cf, zone);

    if (rv == NGX_CONF_OK) {
        rv = ngx_http_rate_limit_fallback_check(cf, zone);
    }

    if (rv != NGX_CONF_OK) {
        zone->key = NULL;
        return rv;
    }

    return NGX_CONF_OK;
}


/*
 * delay= (gcra only, 0..burst, default burst: none): a request with more
 * than delay excess requests ahead waits until delay remain, as
 * limit_req ... delay= does.  The script works out the wait (lua/gcra.lua)
 * and its reply says it (delay_ms).
 */

static char *
ngx_http_rate_limit_delay_check(ngx_conf_t *cf,
    ngx_http_rate_limit_zone_t *zone)
{
    if (!zone->limit.delay_set) {
        return NGX_CONF_OK;
    }

    if (zone->limit.algorithm != RL_CORE_ALG_GCRA) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"delay\" is only for algorithm=gcra");
        return NGX_CONF_ERROR;
    }

    if (zone->limit.delay > zone->limit.burst) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "delay=%uL is more than burst=%uL",
                           zone->limit.delay, zone->limit.burst);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* fallback=RATE: the emission interval T now, the burst once known. */

static char *
ngx_http_rate_limit_fallback_param(ngx_conf_t *cf,
    ngx_http_rate_limit_zone_t *zone, ngx_str_t *s)
{
    ngx_int_t         n;
    uint64_t          count, period_s;
    rl_core_status_e  rc;

    n = ngx_atoi(s->data, s->len);

    if (n != NGX_ERROR) {
        /* fallback=N: an in-progress count, for concurrency zones */
        if (n < 1 || n > NGX_HTTP_RATE_LIMIT_MAX_FALLBACK_COUNT) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "fallback \"%V\" is out of range: N must be "
                               "between 1 and %d", s,
                               NGX_HTTP_RATE_LIMIT_MAX_FALLBACK_COUNT);
            return NGX_CONF_ERROR;
        }

        zone->fallback_count = n;
        return NGX_CONF_OK;
    }

    rc = rl_core_parse_rate((char *) s->data, s->len, &count, &period_s);

    if (rc == RL_CORE_ERANGE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "fallback rate \"%V\" is out of range: N must be "
                           "between 1 and 1000000000", s);
        return NGX_CONF_ERROR;
    }

    if (rc != RL_CORE_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid fallback rate \"%V\", must be like "
                           "\"10r/s\", \"r/m\", \"r/h\" or \"r/d\"", s);
        return NGX_CONF_ERROR;
    }

    zone->fallback_t_us = (period_s * 1000000 + count - 1) / count;

    return NGX_CONF_OK;
}


/*
 * The fallback takes the zone's burst when the zone is gcra (the other
 * algorithms' burst means something else): tau = burst x T, bounded so
 * that the arithmetic stays exact.
 */

static char *
ngx_http_rate_limit_fallback_check(ngx_conf_t *cf,
    ngx_http_rate_limit_zone_t *zone)
{
    uint64_t  burst;

    if (zone->limit.algorithm == RL_CORE_ALG_CONCURRENCY) {
        if (zone->fallback_t_us) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid fallback in zone \"%V\", must be "
                               "a count like \"10\" (a rate is for rate "
                               "zones)", &zone->name);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (zone->fallback_count) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid fallback rate in zone \"%V\", must be "
                           "like \"10r/s\" (a number alone is for "
                           "concurrency zones)", &zone->name);
        return NGX_CONF_ERROR;
    }

    if (zone->fallback_t_us == 0) {
        return NGX_CONF_OK;
    }

    burst = zone->limit.algorithm == RL_CORE_ALG_GCRA ? zone->limit.burst : 0;

    if (burst && zone->fallback_t_us > NGX_HTTP_RATE_LIMIT_MAX_TAU / burst) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "fallback rate with burst=%uL is out of range: "
                           "burst x the fallback's interval must be below "
                           "2^53 us", burst);
        return NGX_CONF_ERROR;
    }

    zone->fallback_burst = burst;
    zone->fallback_tau_us = burst * zone->fallback_t_us;

    return NGX_CONF_OK;
}


static char *
ngx_http_rate_limit_zone_param(ngx_conf_t *cf,
    ngx_http_rate_limit_zone_t *zone, ngx_str_t *value)
{
    ngx_int_t                          n;
    ngx_str_t                          s;
    rl_core_status_e                   rc;
    ngx_http_compile_complex_value_t   ccv;

    if (ngx_http_rate_limit_param(value, "key=", &s) == NGX_OK) {

        /* a key that is always empty would never limit anything */

        if (s.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "empty key in \"key=\"");
            return NGX_CONF_ERROR;
        }

        zone->key = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (zone->key == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &s;
        ccv.complex_value = zone->key;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (ngx_http_rate_limit_param(value, "rate=", &s) == NGX_OK) {
        zone->rate_param = "rate";

        rc = rl_core_parse_rate((char *) s.data, s.len, &zone->limit.count,
                                &zone->limit.period_s);

        if (rc == RL_CORE_ERANGE) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "rate \"%V\" is out of range: N must be "
                               "between 1 and 1000000000", &s);
            return NGX_CONF_ERROR;
        }

        if (rc != RL_CORE_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid rate \"%V\", must be like "
                               "\"10r/s\", \"r/m\", \"r/h\", \"r/d\", "
                               "\"r/w\" or \"r/M\"", &s);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (ngx_http_rate_limit_param(value, "burst=", &s) == NGX_OK) {
        zone->rate_param = "burst";

        n = ngx_atoi(s.data, s.len);
        /* the core names the bounds a number breaks, with the rate's */

        if (n == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid burst value \"%V\", must be "
                               "between 0 and %d", &s, RL_CORE_BURST_MAX);
            return NGX_CONF_ERROR;
        }

        zone->limit.burst = n;
        zone->limit.burst_set = 1;

        return NGX_CONF_OK;
    }

    if (ngx_http_rate_limit_param(value, "algorithm=", &s) == NGX_OK) {
        zone->rate_param = "algorithm";

        if (rl_core_parse_algorithm((char *) s.data, s.len,
                                    &zone->limit.algorithm)
            != RL_CORE_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown algorithm \"%V\"", &s);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (ngx_http_rate_limit_param(value, "prefix=", &s) == NGX_OK) {
        if (!rl_core_valid_prefix((char *) s.data, s.len)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid prefix \"%V\", must be 1-%d bytes "
                               "without \"{\", \"}\", spaces or control "
                               "characters", &s, RL_CORE_PREFIX_MAX);
            return NGX_CONF_ERROR;
        }

        zone->prefix = s;

        return NGX_CONF_OK;
    }

    if (ngx_http_rate_limit_param(value, "cache=", &s) == NGX_OK) {
        zone->rate_param = "cache";

        /* a worker that cannot make its cache could not start at all */

        n = ngx_atoi(s.data, s.len);
        if (n == NGX_ERROR || n > RL_CORE_CACHE_MAX) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid cache size \"%V\", must be "
                               "between 0 and %d", &s, RL_CORE_CACHE_MAX);
            return NGX_CONF_ERROR;
        }

        zone->cache = n;

        return NGX_CONF_OK;
    }

    if (ngx_http_rate_limit_param(value, "delay=", &s) == NGX_OK) {
        n = ngx_atoi(s.data, s.len);

        if (n == NGX_ERROR || n > RL_CORE_BURST_MAX) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid delay value \"%V\", must be "
                               "between 0 and the zone's burst", &s);
            return NGX_CONF_ERROR;
        }

        zone->limit.delay = n;
        zone->limit.delay_set = 1;
        zone->rate_param = "delay";

        return NGX_CONF_OK;
    }

    if (ngx_http_rate_limit_param(value, "concurrency=", &s) == NGX_OK) {
        n = ngx_atoi(s.data, s.len);
        if (n <= 0 || n > RL_CORE_CONCURRENCY_MAX) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid concurrency \"%V\", must be "
                               "between 1 and %d", &s,
                               RL_CORE_CONCURRENCY_MAX);
            return NGX_CONF_ERROR;
        }

        zone->concurrency = n;

        return NGX_CONF_OK;
    }

    if (ngx_http_rate_limit_param(value, "fallback=", &s) == NGX_OK) {
        return ngx_http_rate_limit_fallback_param(cf, zone, &s);
    }

    if (ngx_http_rate_limit_param(value, "lease=", &s) == NGX_OK) {
        zone->lease = ngx_parse_time(&s, 1);
        if (zone->lease == (time_t) NGX_ERROR
            || zone->lease < RL_CORE_LEASE_MIN_S
            || zone->lease > RL_CORE_LEASE_MAX_S)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid lease \"%V\", must be whole "
                               "seconds between %ds and %ds (1h)", &s,
                               RL_CORE_LEASE_MIN_S, RL_CORE_LEASE_MAX_S);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", value);

    return NGX_CONF_ERROR;
}


/*
 * concurrency=N [lease=T]: no rate, burst, algorithm or deny cache (a
 * release frees a slot early, so a cached rejection could outlive it).
 */

static char *
ngx_http_rate_limit_concurrency_zone(ngx_conf_t *cf,
    ngx_http_rate_limit_zone_t *zone)
{
    if (zone->rate_param) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" is not allowed with \"concurrency\" "
                           "in zone \"%V\"", zone->rate_param, &zone->name);
        return NGX_CONF_ERROR;
    }

    zone->limit.algorithm = RL_CORE_ALG_CONCURRENCY;
    zone->limit.count = zone->concurrency;
    zone->limit.period_s = zone->lease ? (uint64_t) zone->lease
                           : NGX_HTTP_RATE_LIMIT_DEFAULT_LEASE;
    zone->cache = 0;

    /* the bounds are checked with every limit's, by the core */

    return NGX_CONF_OK;
}


static char *
ngx_http_rate_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_rate_limit_loc_conf_t *rlcf = conf;

    char                        *rv;
    ngx_str_t                   *value, cost, *costp;
    ngx_uint_t                   i;
    ngx_http_rate_limit_rule_t  *rule, *rules;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts > 2) {
            return "\"off\" takes no parameters";
        }

        if (rlcf->rules != NGX_CONF_UNSET_PTR) {
            return rlcf->rules == NULL ? "is duplicate"
                                       : "\"off\" cannot be combined with "
                                         "zones at one level";
        }

        rlcf->rules = NULL;
        return NGX_CONF_OK;
    }

    if (rlcf->rules == NULL) {
        return "\"off\" cannot be combined with zones at one level";
    }

    costp = NULL;

    if (cf->args->nelts > 2) {
        if (ngx_strncmp(value[2].data, "cost=", 5) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        cost.data = value[2].data + 5;
        cost.len = value[2].len - 5;
        costp = &cost;
    }

    if (rlcf->rules == NGX_CONF_UNSET_PTR) {
        rlcf->rules = ngx_array_create(cf->pool, 2,
                                       sizeof(ngx_http_rate_limit_rule_t));
        if (rlcf->rules == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rule = ngx_array_push(rlcf->rules);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_rate_limit_rule_parse(cf, rule, &value[1], costp, 0);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    /* a named zone once per level; a variable may name any */

    rules = rlcf->rules->elts;

    for (i = 0; i + 1 < rlcf->rules->nelts; i++) {
        if (rule->zone != NULL && rules[i].zone == rule->zone) {
            return "is duplicate";
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_rate_limit_charge(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_rate_limit_loc_conf_t *rlcf = conf;

    ngx_str_t                   *value;
    ngx_http_rate_limit_rule_t  *rule;

    value = cf->args->elts;

    if (rlcf->charges == NGX_CONF_UNSET_PTR) {
        rlcf->charges = ngx_array_create(cf->pool, 1,
                                         sizeof(ngx_http_rate_limit_rule_t));
        if (rlcf->charges == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rule = ngx_array_push(rlcf->charges);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_rate_limit_rule_parse(cf, rule, &value[1], &value[2], 1);
}


/* Finds zone NAME, or adds it undefined, remembering where it was used. */

ngx_http_rate_limit_zone_t *
ngx_http_rate_limit_find_zone(ngx_conf_t *cf,
    ngx_http_rate_limit_main_conf_t *rmcf, ngx_str_t *name)
{
    ngx_uint_t                   i;
    ngx_http_rate_limit_zone_t  *zone, **zones, **z;

    zones = rmcf->zones.elts;

    for (i = 0; i < rmcf->zones.nelts; i++) {
        if (zones[i]->name.len == name->len
            && ngx_strncmp(zones[i]->name.data, name->data, name->len) == 0)
        {
            return zones[i];
        }
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_rate_limit_zone_t));
    if (zone == NULL) {
        return NULL;
    }

    zone->name = *name;
    zone->index = rmcf->zones.nelts;
    zone->used_file = cf->conf_file->file.name.data;
    zone->used_line = cf->conf_file->line;

    z = ngx_array_push(&rmcf->zones);
    if (z == NULL) {
        return NULL;
    }

    *z = zone;

    return zone;
}


static char *
ngx_http_rate_limit_check_status(ngx_conf_t *cf, void *post, void *data)
{
    ngx_uint_t  *np = data;

    /*
     * 401 and 403 mean "try the next access module" under "satisfy any":
     * a rejection must always end the request.  408 and 499 are the
     * client's failure to NGINX, which may close the connection without a
     * response, and 444 is NGINX's "close without a response".
     */

    if (*np < 400 || *np > 599
        || *np == NGX_HTTP_UNAUTHORIZED || *np == NGX_HTTP_FORBIDDEN
        || *np == NGX_HTTP_REQUEST_TIME_OUT || *np == NGX_HTTP_CLOSE
        || *np == NGX_HTTP_CLIENT_CLOSED_REQUEST)
    {
        return "must be between 400 and 599, "
               "except 401, 403, 408, 444 and 499";
    }

    return NGX_CONF_OK;
}


/* As limit_req_zone: the slab needs a few pages of its own. */

static char *
ngx_http_rate_limit_check_shm_size(ngx_conf_t *cf, void *post, void *data)
{
    size_t  *sp = data;

    if (*sp < 8 * ngx_pagesize) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "rate_limit_shm_size of %uz is too small, must "
                           "be at least %uz", *sp, 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* If value is "name..." sets out to what follows name. */

static ngx_int_t
ngx_http_rate_limit_param(ngx_str_t *value, char *name, ngx_str_t *out)
{
    size_t  len;

    len = ngx_strlen(name);

    if (value->len < len || ngx_strncmp(value->data, name, len) != 0) {
        return NGX_DECLINED;
    }

    out->data = value->data + len;
    out->len = value->len - len;

    return NGX_OK;
}
