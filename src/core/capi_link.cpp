// The C ABI of rl_core.h for the link's bookkeeping (link.hpp): thin
// wrappers, noexcept like the functions they call.

#include "rl_core.h"

#include <string_view>

#include "capi.hpp"
#include "backoff.hpp"
#include "link.hpp"


RL_CORE_EXPORT uint64_t
rl_core_backoff_ms(unsigned attempt) noexcept
{
    return rl::backoffMs(attempt);
}


RL_CORE_EXPORT void
rl_core_conn_init(rl_core_conn_t *c, uint32_t max_pending) noexcept
{
    rl::connInit(*c, max_pending);
}


RL_CORE_EXPORT rl_core_status_e
rl_core_conn_connect(rl_core_conn_t *c) noexcept
{
    return rl::connConnect(*c) ? RL_CORE_OK : RL_CORE_EINVAL;
}


RL_CORE_EXPORT rl_core_status_e
rl_core_conn_connected(rl_core_conn_t *c) noexcept
{
    return rl::connConnected(*c) ? RL_CORE_OK : RL_CORE_EINVAL;
}


RL_CORE_EXPORT rl_core_status_e
rl_core_conn_ready(rl_core_conn_t *c) noexcept
{
    return rl::connReady(*c) ? RL_CORE_OK : RL_CORE_EINVAL;
}


RL_CORE_EXPORT uint64_t
rl_core_conn_lost(rl_core_conn_t *c) noexcept
{
    return rl::connLost(*c);
}


RL_CORE_EXPORT int
rl_core_conn_room(const rl_core_conn_t *c) noexcept
{
    return rl::connRoom(*c);
}


RL_CORE_EXPORT rl_core_status_e
rl_core_conn_queue(rl_core_conn_t *c) noexcept
{
    return rl::connQueue(*c);
}


RL_CORE_EXPORT void
rl_core_conn_unqueue(rl_core_conn_t *c) noexcept
{
    rl::connUnqueue(*c);
}


RL_CORE_EXPORT int
rl_core_conn_write(rl_core_conn_t *c, uint32_t *gen) noexcept
{
    return rl::connWrite(*c, *gen);
}


RL_CORE_EXPORT void
rl_core_conn_replied(rl_core_conn_t *c, int answered) noexcept
{
    rl::connReplied(*c, answered != 0);
}


RL_CORE_EXPORT int
rl_core_conn_resend(rl_core_conn_t *c, uint32_t *gen) noexcept
{
    return rl::connResend(*c, *gen);
}


RL_CORE_EXPORT rl_core_status_e
rl_core_redis_version(const char *info, size_t len, rl_core_version_t *v)
    noexcept
{
    if (info == nullptr) {
        return RL_CORE_EINVAL;
    }

    return rl::redisVersion(std::string_view(info, len), *v) ? RL_CORE_OK
                                                             : RL_CORE_EINVAL;
}


RL_CORE_EXPORT int
rl_core_redis_version_supported(const rl_core_version_t *v) noexcept
{
    return rl::redisVersionSupported(*v);
}
