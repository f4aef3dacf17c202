#include "link.hpp"

#include "backoff.hpp"

namespace rl {

namespace {

constexpr std::uint32_t minMajor = 5;

// Digits of s from pos into n; false when none or more than fit.
bool readNumber(std::string_view s, std::size_t &pos, unsigned &n) noexcept
{
    std::size_t start = pos;

    n = 0;

    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (pos - start >= 6) {
            return false;
        }

        n = n * 10 + static_cast<unsigned>(s[pos] - '0');
        pos++;
    }

    return pos > start;
}

}  // namespace

void connInit(rl_core_conn_t &c, std::uint32_t maxPending) noexcept
{
    c = rl_core_conn_t{};
    c.state = RL_CORE_CONN_DOWN;
    c.max_pending = maxPending;
}

bool connConnect(rl_core_conn_t &c) noexcept
{
    if (c.state != RL_CORE_CONN_DOWN) {
        return false;
    }

    c.state = RL_CORE_CONN_CONNECTING;
    c.script_gen = 0;
    return true;
}

bool connConnected(rl_core_conn_t &c) noexcept
{
    if (c.state != RL_CORE_CONN_CONNECTING) {
        return false;
    }

    c.state = RL_CORE_CONN_HANDSHAKE;
    return true;
}

bool connReady(rl_core_conn_t &c) noexcept
{
    if (c.state != RL_CORE_CONN_HANDSHAKE) {
        return false;
    }

    c.state = RL_CORE_CONN_UP;
    return true;
}

std::uint64_t connLost(rl_core_conn_t &c) noexcept
{
    // The count grows with every attempt that did not end in an answered
    // command, handshake failures included: a node that accepts and then
    // refuses (a replica, LOADING, a wrong password) is retried at the
    // capped pace, not at once each time.
    std::uint64_t delay = backoffMs(c.failures);

    if (c.failures < UINT32_MAX) {
        c.failures++;
    }

    c.state = RL_CORE_CONN_DOWN;
    return delay;
}

bool connRoom(const rl_core_conn_t &c) noexcept
{
    return c.state != RL_CORE_CONN_DOWN
           && static_cast<std::uint64_t>(c.waiting) + c.sent < c.max_pending;
}

rl_core_status_e connQueue(rl_core_conn_t &c) noexcept
{
    if (c.state == RL_CORE_CONN_DOWN) {
        return RL_CORE_EINVAL;
    }

    if (!connRoom(c)) {
        return RL_CORE_ERANGE;
    }

    c.waiting++;
    return RL_CORE_OK;
}

void connUnqueue(rl_core_conn_t &c) noexcept
{
    if (c.waiting > 0) {
        c.waiting--;
    }
}

bool connWrite(rl_core_conn_t &c, std::uint32_t &gen) noexcept
{
    // Only an up connection takes commands: none may run before AUTH,
    // SELECT and ROLE have been answered.
    if (c.state != RL_CORE_CONN_UP || c.waiting == 0) {
        return false;
    }

    c.waiting--;
    c.sent++;
    gen = c.script_gen;
    return true;
}

void connReplied(rl_core_conn_t &c, bool answered) noexcept
{
    if (c.sent > 0) {
        c.sent--;
    }

    if (answered) {
        c.failures = 0;
    }
}

bool connResend(rl_core_conn_t &c, std::uint32_t &gen) noexcept
{
    // A command written after the last SCRIPT LOAD needs a new one; one
    // written before it finds the script loaded by the time it is resent
    // (Redis runs a connection's commands in order).  So a flush costs one
    // load per connection, however many commands it caught.
    bool load = (gen == c.script_gen);

    if (load) {
        c.script_gen++;
    }

    gen = c.script_gen;
    return load;
}

bool redisVersion(std::string_view info, rl_core_version_t &v) noexcept
{
    constexpr std::string_view field = "redis_version:";

    std::size_t at = 0;

    // The field at the start of a line, not inside another's name.
    for (;;) {
        at = info.find(field, at);

        if (at == std::string_view::npos) {
            return false;
        }

        if (at == 0 || info[at - 1] == '\n') {
            break;
        }

        at += field.size();
    }

    std::size_t pos = at + field.size();

    v = rl_core_version_t{};

    if (!readNumber(info, pos, v.major)) {
        return false;
    }

    if (pos < info.size() && info[pos] == '.') {
        pos++;

        if (!readNumber(info, pos, v.minor)) {
            return false;
        }

        if (pos < info.size() && info[pos] == '.') {
            pos++;

            if (!readNumber(info, pos, v.patch)) {
                return false;
            }
        }
    }

    return pos == info.size() || info[pos] == '\r' || info[pos] == '\n';
}

bool redisVersionSupported(const rl_core_version_t &v) noexcept
{
    // Scripts that read TIME and then write are replicated by their
    // effects from 5.0 on; Valkey reports the Redis version it forked
    // from (7.2), so this covers Valkey 7.2 and later too.
    return v.major >= minMajor;
}

}  // namespace rl
