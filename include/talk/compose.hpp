// Building one output line in the message arena, in place.
//
//     msg_slice m = compose(arena, "From ", sender, ", ", untrusted{text});
//
// Plain string_views are copied as they are; untrusted{...} marks bytes a client
// sent, which go through sanitize() so no control byte reaches a terminal. The
// newline is added. The room needed is worked out first (sanitising can grow text
// fourfold), reserved once, and written straight into the shared chunk.
#pragma once

#include <cstring>
#include <string_view>

#include "talk/message.hpp"
#include "talk/text.hpp"

namespace talk {

struct untrusted {
    std::string_view text;
};

namespace detail {
inline std::size_t room_for(std::string_view s) { return s.size(); }
inline std::size_t room_for(untrusted u) { return max_sanitized_size(u.text.size()); }
inline char* put(char* p, std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    return p + s.size();
}
inline char* put(char* p, untrusted u) { return p + sanitize(u.text, p); }
}  // namespace detail

template <class... Parts>
msg_slice compose(message_arena& arena, const Parts&... parts) {
    std::size_t room = (detail::room_for(parts) + ... + 1);
    char* const start = arena.reserve(room);
    char* p = start;
    ((p = detail::put(p, parts)), ...);
    *p++ = '\n';
    return arena.commit(static_cast<std::size_t>(p - start));
}

}  // namespace talk
