
/*
 * ngx_http_rate_limit_module: the lines that apply a zone to requests,
 * "rate_limit NAME|$VARIABLE [cost=VALUE]" and "rate_limit_charge NAME
 * VALUE".
 *
 * A rule names its zone, or picks it per request from a variable among
 * the declared zones; its cost is a number or a complex value.  What can
 * be checked when the configuration is loaded is checked then (a constant
 * cost against a named zone's limit, a charge on a zone that takes none);
 * what only a request can tell (a variable's zone name, a cost from a
 * variable) is checked here per request, logged with the zone and the
 * value, and answered NGX_ABORT so that the caller applies its policy.
 * This file touches only the rules and the zones they name.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_rate_limit_module.h"


static ngx_http_complex_value_t *ngx_http_rate_limit_rule_cv(
    ngx_conf_t *cf, ngx_str_t *value);
static ngx_int_t ngx_http_rate_limit_rule_number(ngx_str_t *s,
    uint64_t *n);
static ngx_int_t ngx_http_rate_limit_rule_check(
    ngx_http_rate_limit_zone_t *zone, uint64_t cost, ngx_uint_t charge,
    u_char *err, size_t len);


/*
 * Fills rule from a line's zone (a name or a $VARIABLE) and its cost
 * (NULL: the default of one unit).  A named zone may be declared later:
 * ngx_http_rate_limit_rules_check() checks the cost against it.
 */

char *
ngx_http_rate_limit_rule_parse(ngx_conf_t *cf,
    ngx_http_rate_limit_rule_t *rule, ngx_str_t *name, ngx_str_t *cost,
    ngx_uint_t charge)
{
    ngx_http_rate_limit_main_conf_t  *rmcf;

    ngx_memzero(rule, sizeof(ngx_http_rate_limit_rule_t));

    rule->file = cf->conf_file->file.name.data;
    rule->line = cf->conf_file->line;
    rule->cost_n = RL_CORE_COST_DEFAULT;

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_rate_limit_module);

    if (rmcf->used_file == NULL) {
        rmcf->used_file = rule->file;
        rmcf->used_line = rule->line;
    }

    if (ngx_http_script_variables_count(name) == 0) {
        if (!rl_core_valid_zone_name((char *) name->data, name->len)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid zone name \"%V\"", name);
            return NGX_CONF_ERROR;
        }

        rule->zone = ngx_http_rate_limit_find_zone(cf, rmcf, name);
        if (rule->zone == NULL) {
            return NGX_CONF_ERROR;
        }

    } else {
        rule->name = ngx_http_rate_limit_rule_cv(cf, name);
        if (rule->name == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (cost == NULL) {
        return NGX_CONF_OK;
    }

    if (ngx_http_script_variables_count(cost) == 0) {
        if (ngx_http_rate_limit_rule_number(cost, &rule->cost_n) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid %s \"%V\", must be an integer "
                               "between 0 and %uL",
                               charge ? "charge" : "cost", cost,
                               RL_CORE_COST_MAX);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    rule->cost = ngx_http_rate_limit_rule_cv(cf, cost);

    return rule->cost ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/*
 * The checks that need every zone declared (the merge runs after the
 * whole http block is read): a constant cost within the named zone's
 * limit, a charge only on a zone that takes charges.  Reported with the
 * rule's own file and line.
 */

ngx_int_t
ngx_http_rate_limit_rules_check(ngx_conf_t *cf, ngx_array_t *rules,
    ngx_uint_t charge)
{
    u_char                       err[128];
    uint64_t                     cost;
    ngx_uint_t                   i;
    ngx_http_rate_limit_rule_t  *rule;

    if (rules == NULL || rules == NGX_CONF_UNSET_PTR) {
        return NGX_OK;
    }

    rule = rules->elts;

    for (i = 0; i < rules->nelts; i++) {

        /* a variable zone, or one that init_main_conf reports unknown */

        if (rule[i].zone == NULL || rule[i].zone->key == NULL) {
            continue;
        }

        /* a cost from a variable is checked per request */

        cost = rule[i].cost ? 0 : rule[i].cost_n;

        if (ngx_http_rate_limit_rule_check(rule[i].zone, cost, charge, err,
                                           sizeof(err))
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%s \"%V\": %s in %s:%ui",
                          charge ? "rate_limit_charge" : "rate_limit",
                          &rule[i].zone->name, err, rule[i].file,
                          rule[i].line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * A rule for one request: its zone, the zone's client key and the cost.
 * NGX_OK: all set, the key not empty.  NGX_DECLINED: this line limits
 * nothing (an empty zone name or key; for a charge also an empty or 0
 * value).  NGX_ABORT: a bad value, logged (a name that is no declared
 * zone, a cost that is not an integer in 0..limit, a charge on a zone
 * that takes none).  NGX_ERROR: no memory.
 */

ngx_int_t
ngx_http_rate_limit_rule_eval(ngx_http_request_t *r,
    ngx_http_rate_limit_rule_t *rule, ngx_uint_t charge,
    ngx_http_rate_limit_zone_t **zonep, ngx_str_t *key, uint64_t *cost)
{
    u_char                            err[128];
    ngx_str_t                         s;
    ngx_uint_t                        i;
    ngx_http_rate_limit_zone_t       *zone, **zones;
    ngx_http_rate_limit_main_conf_t  *rmcf;

    zone = rule->zone;

    if (zone == NULL) {
        if (ngx_http_complex_value(r, rule->name, &s) != NGX_OK) {
            return NGX_ERROR;
        }

        if (s.len == 0) {
            return NGX_DECLINED;
        }

        rmcf = ngx_http_get_module_main_conf(r, ngx_http_rate_limit_module);
        zones = rmcf->zones.elts;

        for (i = 0; i < rmcf->zones.nelts; i++) {
            if (zones[i]->name.len == s.len
                && ngx_strncmp(zones[i]->name.data, s.data, s.len) == 0)
            {
                zone = zones[i];
                break;
            }
        }

        if (zone == NULL) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "%s: \"%*s\" is not a "
                          "rate_limit_zone",
                          charge ? "rate_limit_charge"
                                 : "rate_limit",
                          (size_t) ngx_min(s.len, 64),
                          s.data);
            return NGX_ABORT;
        }
    }

    *zonep = zone;

    if (ngx_http_complex_value(r, zone->key, key) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "rate limit: zone \"%V\" key of %uz bytes",
                   &zone->name, key->len);

    if (key->len == 0) {
        return NGX_DECLINED;
    }

    *cost = rule->cost_n;

    if (rule->cost) {
        if (ngx_http_complex_value(r, rule->cost, &s) != NGX_OK) {
            return NGX_ERROR;
        }

        if (charge && s.len == 0) {
            return NGX_DECLINED;
        }

        if (ngx_http_rate_limit_rule_number(&s, cost) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "%s: zone \"%V\": invalid %s "
                          "\"%*s\", not an integer in "
                          "0..%uL",
                          charge ? "rate_limit_charge"
                                 : "rate_limit",
                          &zone->name,
                          charge ? "charge" : "cost",
                          (size_t) ngx_min(s.len, 64),
                          s.data, RL_CORE_COST_MAX);
            return NGX_ABORT;
        }
    }

    if (charge && *cost == 0) {
        return NGX_DECLINED;
    }

    /* a named zone's constant cost was checked by nginx -t */

    if (rule->zone == NULL || rule->cost) {
        if (ngx_http_rate_limit_rule_check(zone, *cost, charge, err,
                                           sizeof(err))
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "%s: zone \"%V\": %s",
                          charge ? "rate_limit_charge"
                                 : "rate_limit",
                          &zone->name, err);
            return NGX_ABORT;
        }
    }

    return NGX_OK;
}


static ngx_http_complex_value_t *
ngx_http_rate_limit_rule_cv(ngx_conf_t *cf, ngx_str_t *value)
{
    ngx_http_complex_value_t          *cv;
    ngx_http_compile_complex_value_t   ccv;

    cv = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (cv == NULL) {
        return NULL;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = value;
    ccv.complex_value = cv;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NULL;
    }

    return cv;
}


/* Decimal digits only, at most RL_CORE_COST_MAX. */

static ngx_int_t
ngx_http_rate_limit_rule_number(ngx_str_t *s, uint64_t *n)
{
    off_t  v;

    if (s->len == 0) {
        return NGX_ERROR;
    }

    v = ngx_atoof(s->data, s->len);

    if (v == NGX_ERROR || (uint64_t) v > RL_CORE_COST_MAX) {
        return NGX_ERROR;
    }

    *n = (uint64_t) v;

    return NGX_OK;
}


/*
 * NGX_OK, or NGX_ERROR with what is wrong with this cost or charge on
 * zone in err (NUL-terminated).
 */

static ngx_int_t
ngx_http_rate_limit_rule_check(ngx_http_rate_limit_zone_t *zone,
    uint64_t cost, ngx_uint_t charge, u_char *err, size_t len)
{
    uint64_t  units;

    if (zone->limit.algorithm == RL_CORE_ALG_CONCURRENCY
        && (charge || cost != RL_CORE_COST_DEFAULT))
    {
        /* a request holds one lease: a slot, not units */
        *ngx_snprintf(err, len - 1, "a concurrency zone takes no %s",
                      charge ? "charges" : "cost") = '\0';
        return NGX_ERROR;
    }

    if (charge) {
        if (zone->limit.algorithm == RL_CORE_ALG_SLIDING_LOG) {
            *ngx_cpymem(err, "algorithm=sliding_log takes no charges",
                        sizeof("algorithm=sliding_log takes no charges") - 1)
                = '\0';
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    /* a cost above what a fresh key holds could never pass */

    units = rl_core_limit_units(&zone->limit);

    if (cost > units) {
        *ngx_snprintf(err, len - 1, "cost %uL is out of range, "
                      "must be between 0 and %uL (the zone's limit)",
                      cost, units) = '\0';
        return NGX_ERROR;
    }

    return NGX_OK;
}
