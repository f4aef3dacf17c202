#include "backoff.hpp"

namespace rl {

namespace {

constexpr std::uint64_t firstDelayMs = 100;
constexpr std::uint64_t maxDelayMs = 2000;

}  // namespace

std::uint64_t backoffMs(unsigned attempt) noexcept
{
    // A connection that just dropped is retried at once: most drops are a
    // restart or an idle timeout, and the next attempt usually works.
    if (attempt == 0) {
        return 0;
    }

    std::uint64_t delay = firstDelayMs;

    // Stop doubling at the cap, so no attempt count can overflow.
    for (unsigned i = 1; i < attempt && delay < maxDelayMs; i++) {
        delay *= 2;
    }

    return delay < maxDelayMs ? delay : maxDelayMs;
}

}  // namespace rl
