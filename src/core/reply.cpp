#include "reply.hpp"

namespace rl {

namespace {

constexpr std::size_t valuesPerZone = RL_CORE_REPLY_VALUES;

bool validResult(const rl_core_zone_result_t &r) noexcept
{
    if (r.allowed != 0 && r.allowed != 1) {
        return false;
    }

    if (r.limit < 1 || r.remaining < 0 || r.remaining > r.limit) {
        return false;
    }

    if (r.reset_after_ms < 0 || r.retry_after_ms < 0 || r.delay_ms < 0) {
        return false;
    }

    // One more unit can pass now exactly when some remain.  A rejected
    // request may find some remaining: its cost was more than that.
    if ((r.retry_after_ms == 0) != (r.remaining > 0)) {
        return false;
    }

    // Only an admitted request waits.
    return r.allowed == 1 || r.delay_ms == 0;
}

}  // namespace

rl_core_status_e decodeReply(const std::int64_t *values, std::size_t n,
    std::size_t nzones, rl_core_zone_result_t *out) noexcept
{
    if (out == nullptr || nzones == 0) {
        return RL_CORE_EINVAL;
    }

    if (values == nullptr || nzones > n / valuesPerZone
        || n != nzones * valuesPerZone)
    {
        return RL_CORE_EREPLY;
    }

    for (std::size_t i = 0; i < nzones; i++) {
        const std::int64_t *v = values + i * valuesPerZone;
        rl_core_zone_result_t &r = out[i];

        r.allowed = v[0];
        r.limit = v[1];
        r.remaining = v[2];
        r.reset_after_ms = v[3];
        r.retry_after_ms = v[4];
        r.delay_ms = v[5];

        if (!validResult(r)) {
            return RL_CORE_EREPLY;
        }
    }

    return RL_CORE_OK;
}

rl_core_redis_error_e classifyError(std::string_view msg) noexcept
{
    std::size_t end = msg.find(' ');
    std::string_view word = msg.substr(0, end);

    if (word == "NOSCRIPT") {
        return RL_CORE_REDIS_ERR_NOSCRIPT;
    }

    // The server cannot serve this connection as it is (not authenticated,
    // a replica, still loading, master link down): reconnecting, with its
    // handshake, is the way back.
    static constexpr std::string_view reconnect[] = {
        "NOAUTH", "WRONGPASS", "READONLY", "LOADING", "MASTERDOWN",
    };

    for (std::string_view w : reconnect) {
        if (word == w) {
            return RL_CORE_REDIS_ERR_RECONNECT;
        }
    }

    return RL_CORE_REDIS_ERR_REQUEST;
}

}  // namespace rl
