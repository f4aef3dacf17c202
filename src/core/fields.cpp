#include "fields.hpp"

#include <cstdint>
#include <cstring>
#include <string_view>

#include "numbers.hpp"
#include "verdict.hpp"

namespace rl {

namespace {

// Appends while there is room and remembers when there was not, so a
// value is formatted in one pass with no arithmetic for sizes.
class Writer {
public:
    Writer(char *buf, std::size_t cap) noexcept
        : buf_(buf), p_(buf), end_(buf + cap)
    {
    }

    void put(std::string_view s) noexcept
    {
        if (!room(s.size())) {
            return;
        }

        if (!s.empty()) {
            std::memcpy(p_, s.data(), s.size());
        }
        p_ += s.size();
    }

    void put(std::uint64_t v) noexcept
    {
        if (room(decimalLength(v))) {
            p_ = writeDecimal(p_, v);
        }
    }

    void put(std::int64_t v) noexcept
    {
        if (room(decimalLength(v))) {
            p_ = writeDecimal(p_, v);
        }
    }

    std::size_t result() const noexcept
    {
        return ok_ ? static_cast<std::size_t>(p_ - buf_) : 0;
    }

private:
    bool room(std::size_t len) noexcept
    {
        if (ok_ && static_cast<std::size_t>(end_ - p_) < len) {
            ok_ = false;
        }

        return ok_;
    }

    char *buf_;
    char *p_;
    char *end_;
    bool ok_ = true;
};

// '"NAME";' for item i, with the list separator before all but the first.
void putName(Writer &w, const rl_core_field_zone_t &z, std::size_t i)
    noexcept
{
    if (i > 0) {
        w.put(std::string_view(", "));
    }

    w.put(std::string_view("\""));
    w.put(std::string_view(z.name, z.name_len));
    w.put(std::string_view("\";"));
}

}  // namespace

std::size_t formatPolicy(char *buf, std::size_t cap,
    const rl_core_field_zone_t *zones, std::size_t n) noexcept
{
    if (buf == nullptr || zones == nullptr) {
        return 0;
    }

    Writer w(buf, cap);

    for (std::size_t i = 0; i < n; i++) {
        putName(w, zones[i], i);
        w.put(std::string_view("q="));
        w.put(zones[i].count);

        if (zones[i].period_s == 0) {
            // a concurrency zone: requests in progress, not per window
            w.put(std::string_view(";qu=\"concurrent-requests\""));
            continue;
        }

        w.put(std::string_view(";w="));
        w.put(zones[i].period_s);
    }

    return w.result();
}

std::size_t formatRatelimit(char *buf, std::size_t cap,
    const rl_core_field_zone_t *zones, std::size_t n) noexcept
{
    if (buf == nullptr || zones == nullptr) {
        return 0;
    }

    Writer w(buf, cap);

    for (std::size_t i = 0; i < n; i++) {
        const rl_core_zone_result_t &r = zones[i].result;

        // With nothing left, the useful time is when one more passes;
        // otherwise when the quota is whole again.
        std::int64_t t = r.remaining == 0 ? ceilSeconds(r.retry_after_ms)
                                          : ceilSeconds(r.reset_after_ms);

        putName(w, zones[i], i);
        w.put(std::string_view("r="));
        w.put(r.remaining);

        if (zones[i].period_s == 0) {
            // free slots: a release, not a time, makes more
            continue;
        }

        w.put(std::string_view(";t="));
        w.put(t);
    }

    return w.result();
}

}  // namespace rl
