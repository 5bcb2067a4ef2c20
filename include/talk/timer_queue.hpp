// Timers owned by the event loop: the shutdown grace, closing connections' linger,
// per-connection deadlines. The loop's wait timeout is the time to the nearest one.
//
// A binary heap of (when, id) plus a table of live callbacks. Cancelling only drops
// the callback; the heap entry is skipped when it reaches the top. Timers are few and
// never on the per-message path, so std::function is fine here.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <queue>
#include <unordered_map>
#include <vector>

#include "talk/clock.hpp"

namespace talk {

class timer_queue {
public:
    using id = std::uint64_t;  // never 0, so 0 can mean "no timer"

    id add(clock::time_point when, std::function<void()> fn);
    id add_after(clock::duration delay, std::function<void()> fn) {
        return add(clock::now() + delay, std::move(fn));
    }
    // Returns false if the timer already ran or was cancelled.
    bool cancel(id t);

    // Milliseconds until the nearest timer, rounded up so that a wait never wakes
    // just before its deadline and spins; -1 when there is no timer.
    int timeout_ms(clock::time_point now);

    // Runs the timers due at `now`, in deadline order. Timers added while running
    // wait for the next call even if already due, so a callback that re-arms itself
    // cannot trap the loop here. Returns how many ran.
    std::size_t run_due(clock::time_point now);

    std::size_t size() const { return live_.size(); }

private:
    struct entry {
        clock::time_point when;
        id tid;
        bool operator>(const entry& o) const {
            return when != o.when ? when > o.when : tid > o.tid;
        }
    };
    void drop_cancelled();

    std::priority_queue<entry, std::vector<entry>, std::greater<>> heap_;
    std::unordered_map<id, std::function<void()>> live_;
    id next_id_ = 1;
};

}  // namespace talk
