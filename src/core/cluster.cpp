#include "cluster.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstring>
#include <type_traits>

namespace rl {

namespace {

// The byte table of CRC-16/XMODEM, made at compile time: entry b is the
// CRC register after shifting b through it from 0, MSB first.
struct Crc16Table {
    std::uint16_t v[256];

    constexpr Crc16Table() : v()
    {
        for (unsigned b = 0; b < 256; b++) {
            std::uint16_t crc = static_cast<std::uint16_t>(b << 8);

            for (int bit = 0; bit < 8; bit++) {
                crc = (crc & 0x8000)
                      ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                      : static_cast<std::uint16_t>(crc << 1);
            }

            v[b] = crc;
        }
    }
};

constexpr Crc16Table kCrc16;

}  // namespace

std::uint16_t crc16(const char *data, std::size_t len) noexcept
{
    std::uint16_t crc = 0;

    for (std::size_t i = 0; i < len; i++) {
        unsigned char b = static_cast<unsigned char>(data[i]);
        crc = static_cast<std::uint16_t>((crc << 8)
                                         ^ kCrc16.v[((crc >> 8) ^ b) & 0xff]);
    }

    return crc;
}

std::size_t hashTagEnd(std::string_view key) noexcept
{
    std::size_t open = key.find('{');

    if (open == std::string_view::npos) {
        return std::string_view::npos;
    }

    std::size_t close = key.find('}', open + 1);

    // No '}' after the '{', or "{}": the whole key is hashed.
    if (close == std::string_view::npos || close == open + 1) {
        return std::string_view::npos;
    }

    return close;
}

std::uint16_t keySlot(std::string_view key) noexcept
{
    std::size_t close = hashTagEnd(key);

    if (close != std::string_view::npos) {
        std::size_t open = key.find('{');
        key = key.substr(open + 1, close - open - 1);
    }

    return static_cast<std::uint16_t>(crc16(key.data(), key.size())
                                      & (kClusterSlots - 1));
}


namespace {

std::string_view stripBrackets(std::string_view host) noexcept
{
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        return host.substr(1, host.size() - 2);
    }

    return host;
}

// inet_pton with a NUL-terminated copy: a host is at most an IPv6 text
// (45 bytes with an embedded IPv4 part).
bool parseAddress(std::string_view host, Address &out) noexcept
{
    char buf[INET6_ADDRSTRLEN + 1];
    bool bracketed = host.size() >= 2 && host.front() == '[';

    host = stripBrackets(host);

    if (host.empty() || host.size() >= sizeof(buf)
        || host.find('\0') != std::string_view::npos)
    {
        return false;
    }

    std::memcpy(buf, host.data(), host.size());
    buf[host.size()] = '\0';

    if (!bracketed && inet_pton(AF_INET, buf, out.bytes.data()) == 1) {
        out.family = AF_INET;
        return true;
    }

    if (inet_pton(AF_INET6, buf, out.bytes.data()) == 1) {
        out.family = AF_INET6;
        return true;
    }

    return false;
}

bool sameAddress(const Address &a, const Address &b) noexcept
{
    std::size_t len = a.family == AF_INET ? 4 : 16;

    return a.family == b.family
           && std::memcmp(a.bytes.data(), b.bytes.data(), len) == 0;
}

void setError(char *err, std::size_t errlen, const char *fmt, long long a,
    long long b = 0) noexcept
{
    if (err != nullptr && errlen > 0) {
        std::snprintf(err, errlen, fmt, a, b);
    }
}

}  // namespace

rl_core_host_kind_e hostKind(std::string_view host) noexcept
{
    Address a;

    if (host.empty()) {
        return RL_CORE_HOST_SAME;
    }

    if (host == "?") {
        return RL_CORE_HOST_UNKNOWN;
    }

    return parseAddress(host, a) ? RL_CORE_HOST_NUMERIC : RL_CORE_HOST_NAME;
}


rl_core_status_e SlotMap::build(const rl_core_cluster_range_t *ranges,
    std::size_t n, std::string_view origin, char *err, std::size_t errlen)
{
    rl_core_status_e rc = fill(ranges, n, origin, err, errlen);

    if (rc != RL_CORE_OK) {
        slots_.fill(RL_CORE_CLUSTER_NO_NODE);
        nodes_.clear();
        unassigned_ = kClusterSlots;
    }

    return rc;
}

rl_core_status_e SlotMap::fill(const rl_core_cluster_range_t *ranges,
    std::size_t n, std::string_view origin, char *err, std::size_t errlen)
{
    slots_.fill(RL_CORE_CLUSTER_NO_NODE);
    nodes_.clear();
    unassigned_ = kClusterSlots;

    Address originAddr;
    bool haveOrigin = parseAddress(origin, originAddr);
    std::size_t assigned = 0;

    for (std::size_t i = 0; i < n; i++) {
        const rl_core_cluster_range_t &r = ranges[i];
        long long idx = static_cast<long long>(i);
        const std::int64_t last = static_cast<std::int64_t>(kClusterSlots) - 1;

        if (r.start < 0 || r.end < 0 || r.start > last || r.end > last) {
            setError(err, errlen, "slot range %lld: slot out of 0..16383",
                     idx);
            return RL_CORE_ERANGE;
        }

        if (r.start > r.end) {
            setError(err, errlen, "slot range %lld: start %lld after end",
                     idx, r.start);
            return RL_CORE_ERANGE;
        }

        if (r.port < 1 || r.port > 65535) {
            setError(err, errlen, "slot range %lld: port %lld out of 1..65535",
                     idx, r.port);
            return RL_CORE_ERANGE;
        }

        std::string_view host = r.host != nullptr
                                ? std::string_view(r.host, r.host_len)
                                : std::string_view();
        Address addr;

        if (host.empty()) {
            if (!haveOrigin) {
                setError(err, errlen, "slot range %lld: empty host and no "
                         "numeric origin", idx);
                return RL_CORE_EINVAL;
            }

            host = stripBrackets(origin);
            addr = originAddr;

        } else if (parseAddress(host, addr)) {
            host = stripBrackets(host);

        } else {
            setError(err, errlen, "slot range %lld: host is not a numeric "
                     "address", idx);
            return RL_CORE_EINVAL;
        }

        std::uint16_t port = static_cast<std::uint16_t>(r.port);
        std::uint32_t node = find(addr, port);

        if (node == RL_CORE_CLUSTER_NO_NODE) {
            node = static_cast<std::uint32_t>(nodes_.size());
            nodes_.push_back(Node { std::string(host), port, addr });
        }

        for (std::int64_t s = r.start; s <= r.end; s++) {
            if (slots_[s] != RL_CORE_CLUSTER_NO_NODE) {
                setError(err, errlen, "slot range %lld: slot %lld is in "
                         "another range too", idx, s);
                return RL_CORE_ERANGE;
            }

            slots_[s] = node;
        }

        assigned += static_cast<std::size_t>(r.end - r.start + 1);
    }

    unassigned_ = kClusterSlots - assigned;
    return RL_CORE_OK;
}

std::uint32_t SlotMap::find(const Address &addr, std::uint16_t port)
    const noexcept
{
    for (std::size_t k = 0; k < nodes_.size(); k++) {
        if (nodes_[k].port == port
            && sameAddress(addr, nodes_[k].addr))
        {
            return static_cast<std::uint32_t>(k);
        }
    }

    return RL_CORE_CLUSTER_NO_NODE;
}

std::uint32_t SlotMap::find(std::string_view host, std::uint16_t port)
    const noexcept
{
    Address addr;

    return parseAddress(host, addr) ? find(addr, port)
                                    : RL_CORE_CLUSTER_NO_NODE;
}


namespace {

// The first word of msg is word, followed by a space or the end.
bool firstWord(std::string_view msg, std::string_view word) noexcept
{
    return msg.size() >= word.size()
           && msg.compare(0, word.size(), word) == 0
           && (msg.size() == word.size() || msg[word.size()] == ' ');
}

// A decimal number of 1-5 digits at most max; false otherwise.
bool parseSmall(std::string_view s, unsigned max, unsigned &out) noexcept
{
    if (s.empty() || s.size() > 5) {
        return false;
    }

    unsigned v = 0;

    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }

        v = v * 10 + static_cast<unsigned>(c - '0');
    }

    if (v > max) {
        return false;
    }

    out = v;
    return true;
}

// "<slot> <host>:<port>", the rest of a MOVED or ASK.
bool parseTarget(std::string_view rest, rl_core_redirect_t &out) noexcept
{
    std::size_t sp = rest.find(' ');

    if (sp == std::string_view::npos) {
        return false;
    }

    unsigned slot, port;

    if (!parseSmall(rest.substr(0, sp), kClusterSlots - 1, slot)) {
        return false;
    }

    std::string_view endpoint = rest.substr(sp + 1);

    // Nothing follows the endpoint in Redis's format; a space, CR or LF
    // would be a malformed reply.
    if (endpoint.find_first_of(" \r\n") != std::string_view::npos) {
        return false;
    }

    // The last ':' separates the port: Redis writes IPv6 hosts bare.
    std::size_t colon = endpoint.rfind(':');

    if (colon == std::string_view::npos
        || !parseSmall(endpoint.substr(colon + 1), 65535, port) || port == 0)
    {
        return false;
    }

    std::string_view host = endpoint.substr(0, colon);
    rl_core_host_kind_e kind = hostKind(host);

    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        if (kind != RL_CORE_HOST_NUMERIC) {
            return false;       // "[name]" or "[]"
        }

        host = stripBrackets(host);
    }

    out.slot = static_cast<std::uint16_t>(slot);
    out.port = static_cast<std::uint16_t>(port);
    out.host_kind = kind;
    out.host = host.empty() ? nullptr : host.data();
    out.host_len = host.size();
    return true;
}

}  // namespace

rl_core_status_e parseRedirect(std::string_view msg,
    rl_core_redirect_t &out) noexcept
{
    out = rl_core_redirect_t {};
    out.kind = RL_CORE_REDIRECT_NONE;
    out.host_kind = RL_CORE_HOST_SAME;

    if (!msg.empty() && msg.front() == '-') {
        msg.remove_prefix(1);
    }

    rl_core_redirect_kind_e kind;
    std::size_t skip;

    if (firstWord(msg, "MOVED")) {
        kind = RL_CORE_REDIRECT_MOVED;
        skip = 6;
    } else if (firstWord(msg, "ASK")) {
        kind = RL_CORE_REDIRECT_ASK;
        skip = 4;
    } else {
        if (firstWord(msg, "TRYAGAIN")) {
            out.kind = RL_CORE_REDIRECT_TRYAGAIN;
        } else if (firstWord(msg, "CLUSTERDOWN")) {
            out.kind = RL_CORE_REDIRECT_CLUSTERDOWN;
        } else if (firstWord(msg, "CROSSSLOT")) {
            out.kind = RL_CORE_REDIRECT_CROSSSLOT;
        }

        return RL_CORE_OK;
    }

    if (msg.size() <= skip) {
        return RL_CORE_EREPLY;
    }

    rl_core_redirect_t target = out;

    if (!parseTarget(msg.substr(skip), target)) {
        return RL_CORE_EREPLY;
    }

    out = target;
    out.kind = kind;
    return RL_CORE_OK;
}


void groupBySlot(const std::uint16_t *slots, std::size_t n,
    std::size_t *order, rl_core_cluster_group_t *groups,
    std::size_t &ngroups) noexcept
{
    ngroups = 0;

    // Count the zones of each slot; groups in order of their first zone.
    for (std::size_t i = 0; i < n; i++) {
        std::size_t g = 0;

        while (g < ngroups && groups[g].slot != slots[i]) {
            g++;
        }

        if (g == ngroups) {
            groups[g].slot = slots[i];
            groups[g].count = 0;
            ngroups++;
        }

        groups[g].count++;
    }

    std::size_t first = 0;

    for (std::size_t g = 0; g < ngroups; g++) {
        groups[g].first = first;
        first += groups[g].count;
        groups[g].count = 0;
    }

    // Place the zones in increasing index: each group keeps rate_limit
    // order.
    for (std::size_t i = 0; i < n; i++) {
        std::size_t g = 0;

        while (groups[g].slot != slots[i]) {
            g++;
        }

        order[groups[g].first + groups[g].count++] = i;
    }
}


namespace {

// A group's state as the C caller stored it: read as the enum's integer,
// since a value out of the enum's range is undefined behaviour to load
// as the enum in C++.
int groupState(const rl_core_group_state_e *states, std::size_t g) noexcept
{
    std::underlying_type_t<rl_core_group_state_e> v;

    std::memcpy(&v, &states[g], sizeof(v));
    return static_cast<int>(v);
}

}  // namespace

rl_core_status_e clusterOutcome(const rl_core_cluster_group_t *groups,
    std::size_t ngroups, const std::size_t *order, std::size_t n,
    const rl_core_group_state_e *states, const int *allowed,
    rl_core_outcome_e &outcome, rl_core_cluster_refund_t *refunds,
    std::size_t &nrefunds) noexcept
{
    nrefunds = 0;
    outcome = RL_CORE_OUTCOME_ADMIT;

    // groups and order must be a partition of 0..n-1, in order.
    std::size_t next = 0;

    for (std::size_t g = 0; g < ngroups; g++) {
        if (groups[g].count == 0 || groups[g].first != next
            || groups[g].count > n - next)
        {
            return RL_CORE_EINVAL;
        }

        switch (groupState(states, g)) {
        case RL_CORE_GROUP_ANSWERED:
        case RL_CORE_GROUP_NOT_RUN:
        case RL_CORE_GROUP_UNKNOWN:
            break;
        default:
            return RL_CORE_EINVAL;
        }

        next += groups[g].count;
    }

    if (next != n) {
        return RL_CORE_EINVAL;
    }

    // Each zone once (quadratic, as the grouping: a request has few
    // zones, and a bitmap would allocate).
    for (std::size_t i = 0; i < n; i++) {
        if (order[i] >= n) {
            return RL_CORE_EINVAL;
        }

        for (std::size_t j = 0; j < i; j++) {
            if (order[j] == order[i]) {
                return RL_CORE_EINVAL;
            }
        }
    }

    bool rejected = false, unanswered = false;

    for (std::size_t g = 0; g < ngroups; g++) {
        if (groupState(states, g) != RL_CORE_GROUP_ANSWERED) {
            unanswered = true;
            continue;
        }

        for (std::size_t k = 0; k < groups[g].count; k++) {
            if (allowed[order[groups[g].first + k]] == 0) {
                rejected = true;
                break;
            }
        }
    }

    if (!rejected && !unanswered) {
        return RL_CORE_OK;      // ADMIT: nothing to give back
    }

    outcome = rejected ? RL_CORE_OUTCOME_REJECT : RL_CORE_OUTCOME_ERROR;

    // What consumed: the answered groups whose zones all allowed (the
    // script commits only then).  Never a NOT_RUN group (nothing ran) nor
    // an UNKNOWN one (a refund of what was not consumed would admit more
    // than the limit).
    for (std::size_t g = 0; g < ngroups; g++) {
        if (groupState(states, g) != RL_CORE_GROUP_ANSWERED) {
            continue;
        }

        bool all = true;

        for (std::size_t k = 0; k < groups[g].count; k++) {
            if (allowed[order[groups[g].first + k]] == 0) {
                all = false;
                break;
            }
        }

        if (!all) {
            continue;
        }

        for (std::size_t k = 0; k < groups[g].count; k++) {
            rl_core_cluster_refund_t &r = refunds[nrefunds++];
            r.group = g;
            r.zone = order[groups[g].first + k];
            r.cost = 1;
        }
    }

    return RL_CORE_OK;
}

}  // namespace rl
