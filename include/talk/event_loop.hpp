// The event loop: one thread, one backend, timers.
//
//     loop.watch(fd, io_read);            // say what to wait for
//     while (running)
//         loop.run_once([&](int fd, unsigned ready) { ... });   // wait, dispatch, timers
//
// run_once() waits in the backend until a descriptor is ready or the nearest timer is
// due, calls the handler once per ready descriptor, then runs the due timers.
//
// The backend is a template parameter: which syscall waits is fixed at compile time
// and the per-event path has no virtual call. The handler is a template parameter
// too, usually a lambda, so dispatch inlines.
//
// The loop keeps the interest mask of every descriptor in a vector indexed by the
// descriptor (as Redis and picoev do) and passes old and new masks to the backend.
// Before each handler call the ready bits are cut down to the current interest: a
// handler that forgets descriptor B while A is being handled stops B's events of the
// same pass from being delivered. That is what makes "close after the pass" safe:
// the server forgets a connection at once and closes its descriptor only after
// run_once() returns, so a descriptor number cannot be reused within a pass.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "talk/backend/contract.hpp"
#include "talk/timer_queue.hpp"

namespace talk {

// What the last wait did; the trace (-vv) prints it.
struct wait_info {
    std::size_t watched = 0;  // descriptors the backend watched
    int ready = 0;            // descriptors it reported ready
    int timeout_ms = 0;       // the timeout it was given (-1: none)
    std::chrono::microseconds waited{0};
    int error = 0;  // errno when the wait itself failed
    clock::time_point woke{};  // when the wait returned
};

template <backend Backend>
class event_loop {
public:
    using backend_type = Backend;
    static constexpr std::string_view backend_name = Backend::name;

    explicit event_loop(std::size_t max_events = 1024) : ready_(max_events) {}

    bool can_watch(int fd) const { return backend_.can_watch(fd); }

    // Sets what to wait for on fd; io_none forgets it. Returns 0 or an errno value,
    // in which case the previous interest is kept.
    int watch(int fd, unsigned mask) {
        unsigned old = interest(fd);
        if (old == mask) return 0;
        if (int err = backend_.update(fd, old, mask)) return err;
        if (static_cast<std::size_t>(fd) >= interest_.size())
            interest_.resize(std::max<std::size_t>(fd + 1, interest_.size() * 2), io_none);
        interest_[fd] = static_cast<unsigned char>(mask);
        return 0;
    }

    unsigned interest(int fd) const {
        return fd >= 0 && static_cast<std::size_t>(fd) < interest_.size() ? unsigned{interest_[fd]} : unsigned{io_none};
    }

    timer_queue& timers() { return timers_; }

    // Waits at most until the nearest timer, and at most max_wait_ms when that is not
    // -1; calls on_woke(wait_info) once the wait returns; dispatches on_ready(fd, mask)
    // for each ready descriptor; runs due timers.
    template <class Handler, class Woke = void (*)(const wait_info&)>
    const wait_info& run_once(Handler&& on_ready, int max_wait_ms = -1,
                              Woke&& on_woke = [](const wait_info&) {}) {
        auto start = clock::now();
        int timeout = timers_.timeout_ms(start);
        if (max_wait_ms >= 0 && (timeout < 0 || max_wait_ms < timeout)) timeout = max_wait_ms;

        int n = backend_.wait(std::span<ready_event>(ready_), timeout);
        auto woke = clock::now();
        info_ = {backend_.watched(), n < 0 ? 0 : n, timeout,
                 std::chrono::duration_cast<std::chrono::microseconds>(woke - start),
                 n < 0 ? -n : 0, woke};
        on_woke(info_);

        for (int i = 0; i < n; ++i) {
            const ready_event& ev = ready_[i];
            unsigned mask = ev.mask & interest(ev.fd);
            if (mask != io_none) on_ready(ev.fd, mask);
        }
        timers_.run_due(clock::now());
        return info_;
    }

    const wait_info& last_wait() const { return info_; }
    std::size_t watched() const { return backend_.watched(); }

private:
    Backend backend_;
    std::vector<unsigned char> interest_;  // fd -> io_mask
    std::vector<ready_event> ready_;
    timer_queue timers_;
    wait_info info_;
};

}  // namespace talk
