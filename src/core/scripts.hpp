#pragma once

// The module's one Redis script, assembled from lua/ and embedded at build
// time by embed_scripts.sh, which writes build/core/rl_scripts.cpp with
// these definitions.  scriptSha1 is computed by the build (sha1sum); a
// unit test checks it against the core's own SHA-1 of scriptText.

#include <cstddef>

namespace rl {

extern const char scriptText[];         // NUL-terminated Lua source
extern const char scriptSha1[];         // 40 lowercase hex digits
extern const std::size_t scriptLength;  // bytes of scriptText before NUL

}  // namespace rl
