#include "algorithm.hpp"

namespace rl {

namespace {

// Indexed by rl_core_algorithm_e.  Plain aggregates of string_views: no
// dynamic initialization and no destructor at exit.
//
// The window algorithms pass candidate windows around the caller's own
// window W because the script decides with Redis TIME: a worker whose
// clock is a little off still names the window Redis is in.  Fixed
// windows need W - 1, W, W + 1; sliding windows also need the window
// before the current one, so W - 2 ... W + 1.
constexpr Algorithm algorithms[RL_CORE_ALG_COUNT] = {
    { "gcra",           "g",  1, 0, false, true  },
    { "token_bucket",   "tb", 1, 0, false, true  },
    { "fixed_window",   "fw", 3, 1, true,  false },
    { "sliding_window", "sw", 4, 2, true,  false },
    { "sliding_log",    "sl", 1, 0, false, false },
    { "concurrency",    "cc", 1, 0, false, false },
};

// algorithm= names the first five; concurrency= makes the last.
constexpr unsigned configurable = RL_CORE_ALG_CONCURRENCY;

}  // namespace

const Algorithm *findAlgorithm(rl_core_algorithm_e algorithm) noexcept
{
    auto i = static_cast<unsigned>(algorithm);

    if (i >= RL_CORE_ALG_COUNT) {
        return nullptr;
    }

    return &algorithms[i];
}

rl_core_status_e parseAlgorithm(std::string_view s,
    rl_core_algorithm_e &algorithm) noexcept
{
    for (unsigned i = 0; i < configurable; i++) {
        if (algorithms[i].name == s) {
            algorithm = static_cast<rl_core_algorithm_e>(i);
            return RL_CORE_OK;
        }
    }

    return RL_CORE_EINVAL;
}

}  // namespace rl
