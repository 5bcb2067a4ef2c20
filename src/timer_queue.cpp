#include "talk/timer_queue.hpp"

namespace talk {

timer_queue::id timer_queue::add(clock::time_point when, std::function<void()> fn) {
    id t = next_id_++;
    heap_.push({when, t});
    live_.emplace(t, std::move(fn));
    return t;
}

bool timer_queue::cancel(id t) { return live_.erase(t) > 0; }

void timer_queue::drop_cancelled() {
    while (!heap_.empty() && !live_.count(heap_.top().tid)) heap_.pop();
}

int timer_queue::timeout_ms(clock::time_point now) {
    drop_cancelled();
    if (heap_.empty()) return -1;
    auto left = heap_.top().when - now;
    if (left <= clock::duration::zero()) return 0;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return ms > 24 * 3600 * 1000 ? 24 * 3600 * 1000 : static_cast<int>(ms);
}

std::size_t timer_queue::run_due(clock::time_point now) {
    const id first_new = next_id_;
    std::size_t ran = 0;
    std::vector<entry> later;  // added during this run and already due
    while (!heap_.empty() && heap_.top().when <= now) {
        entry e = heap_.top();
        heap_.pop();
        if (e.tid >= first_new) {
            later.push_back(e);
            continue;
        }
        auto it = live_.find(e.tid);
        if (it == live_.end()) continue;  // cancelled
        auto fn = std::move(it->second);
        live_.erase(it);
        fn();
        ++ran;
    }
    for (const entry& e : later) heap_.push(e);
    return ran;
}

}  // namespace talk
