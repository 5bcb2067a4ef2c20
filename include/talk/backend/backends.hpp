// Which backends this platform has, and a way to visit them by name.
//
// The choice of backend is made once, in main, by name; below that point everything
// is a template instantiation over one backend type and no call goes through a
// virtual function. with_backend() is the one place that turns a runtime name into
// a compile-time type.
#pragma once

#include <string>
#include <string_view>

#include "talk/backend/poll_backend.hpp"
#include "talk/backend/select_backend.hpp"

#if __has_include(<sys/epoll.h>)
#define TALK_HAVE_EPOLL 1
#include "talk/backend/epoll_backend.hpp"
#else
#define TALK_HAVE_EPOLL 0
#endif

namespace talk {

// Calls f(backend_tag<B>{}) for the backend called `name` and returns true, or returns
// false when this build has no backend of that name.
template <class B>
struct backend_tag {
    using type = B;
};

template <class F>
bool with_backend(std::string_view name, F&& f) {
#if TALK_HAVE_EPOLL
    if (name == epoll_backend::name) return f(backend_tag<epoll_backend>{}), true;
#endif
    if (name == poll_backend::name) return f(backend_tag<poll_backend>{}), true;
    if (name == select_backend::name) return f(backend_tag<select_backend>{}), true;
    return false;
}

// The backends compiled in, best first, separated by ", ".
inline std::string available_backends() {
    std::string s;
#if TALK_HAVE_EPOLL
    s += "epoll, ";
#endif
    s += "poll, select";
    return s;
}

// The best backend this platform has: the default for --backend.
inline constexpr std::string_view default_backend =
#if TALK_HAVE_EPOLL
    epoll_backend::name;
#else
    poll_backend::name;
#endif

}  // namespace talk
