// The renew and release commands of concurrency leases (rl_core_lease_*
// of rl_core.h): many leases of many requests in one script call, in the
// layout lua/multi.lua's header gives for those modes.  Builds only; the
// worker's registry of leases is src/ngx_http_rate_limit_lease.c.

#include <cstring>
#include <string_view>

#include "rl_core.h"

#include "algorithm.hpp"
#include "key.hpp"
#include "numbers.hpp"
#include "rate.hpp"
#include "scripts.hpp"

#define RL_CORE_EXPORT  extern "C" __attribute__((visibility("default")))

namespace {

constexpr std::size_t sha1Hex = 40;

// One pass writes (buf non-null) or only counts (buf null), so the size is
// exactly what the build writes.
class Resp {
public:
    explicit Resp(char *buf) noexcept : p_(buf) {}

    std::size_t bytes = 0;

    void arg(std::string_view s) noexcept
    {
        char *q = head(s.size());
        if (q != nullptr) {
            std::memcpy(q, s.data(), s.size());
        }
        tail(s.size());
    }

    void number(std::uint64_t v) noexcept
    {
        std::size_t len = rl::decimalLength(v);
        char *q = head(len);
        if (q != nullptr) {
            rl::writeDecimal(q, v);
        }
        tail(len);
    }

    void key(const rl::KeyParts &parts) noexcept
    {
        std::size_t len = parts.baseLength();
        char *q = head(len);
        if (q != nullptr) {
            parts.writeBase(q);
        }
        tail(len);
    }

    // "*" ARGC "\r\n"
    void array(std::size_t argc) noexcept
    {
        line('*', argc);
    }

private:
    void line(char c, std::size_t v) noexcept
    {
        std::size_t len = rl::decimalLength(static_cast<std::uint64_t>(v));
        if (p_ != nullptr) {
            *p_++ = c;
            p_ = rl::writeDecimal(p_, static_cast<std::uint64_t>(v));
            *p_++ = '\r';
            *p_++ = '\n';
        }
        bytes += 1 + len + 2;
    }

    // "$" LEN "\r\n", then the caller's bytes at the returned place
    char *head(std::size_t len) noexcept
    {
        line('$', len);
        return p_;
    }

    void tail(std::size_t len) noexcept
    {
        if (p_ != nullptr) {
            p_ += len;
            *p_++ = '\r';
            *p_++ = '\n';
        }
        bytes += len + 2;
    }

    char *p_;
};

bool validLease(const rl_core_lease_t &l) noexcept
{
    const rl_core_zone_request_t *z = l.zone;

    return z != nullptr && z->limit != nullptr
           && z->limit->algorithm == RL_CORE_ALG_CONCURRENCY
           && z->key != nullptr && z->key_len > 0
           && (z->prefix != nullptr || z->prefix_len == 0)
           && (z->zone != nullptr || z->zone_len == 0)
           && z->prefix_len <= RL_CORE_PREFIX_MAX
           && z->zone_len <= RL_CORE_ZONE_NAME_MAX
           && l.member != nullptr && l.member_len > 0
           && l.member_len <= RL_CORE_LEASE_MAX;
}

void emit(const rl_core_lease_t *leases, std::size_t n,
    std::string_view mode, Resp &out) noexcept
{
    const rl::Algorithm *cc = rl::findAlgorithm(RL_CORE_ALG_CONCURRENCY);

    out.array(3 + n + 4 + 7 * n);
    out.arg("EVALSHA");
    out.arg(std::string_view(rl::scriptSha1, sha1Hex));
    out.number(n);

    for (std::size_t i = 0; i < n; i++) {
        const rl_core_zone_request_t &z = *leases[i].zone;
        char hashed[RL_CORE_HASHED_KEY_LEN];
        rl::KeyParts parts;

        parts.prefix = std::string_view(z.prefix, z.prefix_len);
        parts.zone = std::string_view(z.zone, z.zone_len);
        parts.client = rl::clientKey(std::string_view(z.key, z.key_len),
                                     hashed);
        parts.tag = cc->tag;
        out.key(parts);
    }

    out.arg("0");
    out.arg(mode);
    out.arg("");
    out.number(n);

    for (std::size_t i = 0; i < n; i++) {
        out.arg(cc->name);
        out.arg(std::string_view(leases[i].member, leases[i].member_len));
        out.number(leases[i].zone->limit->period_s * rl::usPerSecond);
        out.arg("0");
        out.arg("0");
        out.arg("1");
        out.arg("0");       // delay
    }
}

bool validLeases(const rl_core_lease_t *leases, std::size_t n) noexcept
{
    if (leases == nullptr || n == 0) {
        return false;
    }

    for (std::size_t i = 0; i < n; i++) {
        if (!validLease(leases[i])) {
            return false;
        }
    }

    return true;
}

}  // namespace


RL_CORE_EXPORT rl_core_status_e
rl_core_lease_size(const rl_core_lease_t *leases, size_t n, size_t *bytes)
    noexcept
{
    if (bytes == nullptr || !validLeases(leases, n)) {
        return RL_CORE_EINVAL;
    }

    Resp count(nullptr);
    emit(leases, n, "release", count);
    *bytes = count.bytes;

    return RL_CORE_OK;
}


RL_CORE_EXPORT rl_core_status_e
rl_core_lease_build(const rl_core_lease_t *leases, size_t n,
    rl_core_mode_e mode, char *buf, size_t bytes, size_t *len) noexcept
{
    std::string_view name;

    if (mode == RL_CORE_MODE_RENEW) {
        name = "renew";
    } else if (mode == RL_CORE_MODE_RELEASE) {
        name = "release";
    } else {
        return RL_CORE_EINVAL;
    }

    if (buf == nullptr || len == nullptr || !validLeases(leases, n)) {
        return RL_CORE_EINVAL;
    }

    Resp count(nullptr);
    emit(leases, n, name, count);

    if (count.bytes > bytes) {
        return RL_CORE_EINVAL;
    }

    Resp out(buf);
    emit(leases, n, name, out);
    *len = out.bytes;

    return RL_CORE_OK;
}
