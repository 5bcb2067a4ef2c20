#include "talk/hub.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "talk/text.hpp"

namespace talk {

void hub::open(client& c) {
    c.slot = clients_.size();
    clients_.push_back(&c);
    c.tokens = limits_.flood_burst;
    c.refilled = c.last_input = now_;
    ++stats_.connections;
    console_.add(fmt::format("Connected to : {} : {}", c.host, c.port));
    service_->joined(c);
}

void hub::feed(client& c, std::string_view bytes) {
    if (c.closing) return;
    c.last_input = now_;
    if (c.throttled) {  // the transport should not read a throttled client; keep order anyway
        c.held.append(bytes);
        return;
    }
    frame(c, bytes);
}

void hub::frame(client& c, std::string_view bytes) {
    const std::uint64_t lines_before = stats_.lines_in;
    std::size_t used = c.framer.feed(
        bytes,
        [&](std::string_view line) {
            if (limits_.flood_rate > 0 && !take_token(c)) {
                if (limits_.flood_disconnect) {
                    close(c, close_mode::drop,
                          fmt::format("flooding: over {} a second", counted(limits_.flood_rate, "line")),
                          fmt::format("ERR flood more than {} a second; disconnected",
                                      counted(limits_.flood_rate, "line")));
                    return false;
                }
                c.throttled = true;  // this line waits for a token, with all after it
                c.held.assign(line);
                c.held.push_back('\n');
                return false;
            }
            ++stats_.lines_in;
            service_->line(c, line);
            return !c.closing;  // lines after /quit in the same read are not run
        },
        [&] { reply(c, fmt::format("ERR line-too-long max {} bytes", limits_.max_line)); });
    if (c.throttled) c.held.append(bytes.substr(used));
    if (c.closing || c.throttled) return;

    if (c.framer.skipped() > limits_.max_skip()) {
        close(c, close_mode::drop, fmt::format("no end of line in {} bytes", c.framer.skipped()),
              fmt::format("ERR line-too-long no end of line in {} bytes; disconnected",
                          c.framer.skipped()));
        return;
    }
    // The deadline of an unfinished line counts from its first byte: from now if a
    // line ended in this read and another began.
    if (!c.framer.in_line())
        c.line_started = {};
    else if (c.line_started == clock::time_point{} || stats_.lines_in != lines_before)
        c.line_started = now_;
}

bool hub::take_token(client& c) {
    double elapsed = std::chrono::duration<double>(now_ - c.refilled).count();
    c.tokens = std::min(limits_.flood_burst, c.tokens + elapsed * limits_.flood_rate);
    c.refilled = now_;
    if (c.tokens < 1) return false;
    c.tokens -= 1;
    return true;
}

bool hub::resume(client& c) {
    if (!c.throttled) return true;
    if (c.closing) return true;
    c.throttled = false;
    c.last_input = now_;  // reading it again counts as hearing from it
    if (c.line_started != clock::time_point{}) c.line_started = now_;
    std::string held;
    held.swap(c.held);
    frame(c, held);
    return !c.throttled;
}

clock::duration hub::throttle_delay(const client& c) const {
    double elapsed = std::chrono::duration<double>(now_ - c.refilled).count();
    double tokens = c.tokens + elapsed * limits_.flood_rate;
    if (tokens >= 1 || limits_.flood_rate <= 0) return clock::duration::zero();
    return std::chrono::ceil<std::chrono::milliseconds>(
        std::chrono::duration<double>((1 - tokens) / limits_.flood_rate));
}

clock::time_point hub::check_deadlines(client& c) {
    auto next = clock::time_point::max();
    // A throttled client's input waits on us, not on it: its clocks stop until
    // resume() (which starts them again from now).
    if (c.closing || c.throttled) return next;
    if (limits_.line_timeout.count() > 0 && c.line_started != clock::time_point{}) {
        auto due = c.line_started + limits_.line_timeout;
        if (now_ >= due) {
            close(c, close_mode::drop,
                  fmt::format("no end of line within {} s", limits_.line_timeout.count()),
                  fmt::format("ERR line-timeout no end of line within {}; disconnected",
                              counted(limits_.line_timeout.count(), "second")));
            return clock::time_point::max();
        }
        next = std::min(next, due);
    }
    if (limits_.idle_timeout.count() > 0) {
        auto due = c.last_input + limits_.idle_timeout;
        if (now_ >= due) {
            close(c, close_mode::drop, fmt::format("idle for {} s", limits_.idle_timeout.count()),
                  fmt::format("ERR idle-timeout nothing received for {}; disconnected",
                              counted(limits_.idle_timeout.count(), "second")));
            return clock::time_point::max();
        }
        next = std::min(next, due);
    }
    return next;
}

void hub::feed_eof(client& c) {
    if (c.closing) return;
    c.framer.finish(
        [&](std::string_view line) {
            ++stats_.lines_in;
            service_->line(c, line);
            return true;
        },
        [&] { reply(c, fmt::format("ERR line-too-long max {} bytes", limits_.max_line)); });
    close(c, close_mode::flush, "end of input");
}

void hub::operator_line(std::string_view text) { service_->operator_line(text); }

void hub::reply(client& c, std::string_view line) {
    if (c.closing) return;
    send(c, compose(arena_, line));
}

void hub::broadcast(const msg_slice& m, const client* except) {
    for (client* c : clients_)
        if (c != except) send(*c, m);
}

void hub::broadcast_from_server(std::string_view text) {
    // Usually one or two distinct addresses (IPv4 and IPv6 loopback, say).
    std::vector<std::pair<std::string_view, msg_slice>> by_address;
    for (client* c : clients_) {
        auto it = std::find_if(by_address.begin(), by_address.end(),
                               [&](const auto& e) { return e.first == c->local; });
        if (it == by_address.end()) {
            by_address.emplace_back(c->local, compose(arena_, "From ", c->local, ", ", untrusted{text}));
            it = by_address.end() - 1;
        }
        send(*c, it->second);
    }
    ++stats_.messages;
}

void hub::close(client& c, close_mode mode, std::string_view reason, std::string_view last_line) {
    if (c.closing) return;
    if (mode != close_mode::flush) c.out.drop_unstarted();
    if (mode != close_mode::abort && !last_line.empty()) c.out.push(compose(arena_, last_line));
    c.closing = true;
    c.mode = mode;
    c.reason = reason;
    closing_.push_back(&c);
    if (mode != close_mode::abort && !c.pending) {  // an aborted client is never written
        c.pending = true;
        pending_.push_back(&c);
    }
}

// c's queue is over the soft limit: tolerated for soft_queue_time, never past the
// hard limit.
void hub::queue_pressure(client& c) {
    std::size_t queued = c.out.bytes();
    std::string why;
    if (queued > limits_.max_queue) {
        why = fmt::format("output queue over {} bytes: not reading", limits_.max_queue);
    } else if (c.over_soft == clock::time_point{}) {
        c.over_soft = now_;
        return;
    } else if (now_ - c.over_soft >= limits_.soft_queue_time) {
        why = fmt::format("output queue over {} bytes for {} s: not reading", limits_.soft_queue,
                          limits_.soft_queue_time.count());
    } else {
        return;
    }
    close(c, close_mode::drop, why,
          "ERR too-slow you stopped reading and your messages piled up; disconnected");
}

// All queues together hold more than the budget. Messages are shared, so memory is
// pinned by the oldest message a queue still holds, not by how long the queue is:
// the client holding the oldest chunk, the one furthest behind, goes first (a long
// queue of fresh messages, such as a busy reader's within one pass, pins nothing
// that others do not). Again while evictions free memory, but otherwise only once
// per chunk of growth, so a budget that stays exceeded does not cost a scan of
// every client per message.
void hub::over_budget() {
    std::size_t held = arena_.bytes();
    if (held >= evicted_at_ && held < evicted_at_ + message_arena::default_chunk) return;
    evicted_at_ = held;
    client* worst = nullptr;
    for (client* c : clients_) {
        if (c->closing || c->out.empty()) continue;
        if (!worst) {
            worst = c;
            continue;
        }
        auto s = c->out.oldest_chunk()->serial, w = worst->out.oldest_chunk()->serial;
        if (s < w || (s == w && c->out.bytes() > worst->out.bytes())) worst = c;
    }
    if (!worst) return;
    close(*worst, close_mode::drop,
          fmt::format("all output queues over {} bytes, and this one holds the oldest",
                      limits_.max_total_queue),
          "ERR too-slow the server is short of memory and your queue was the furthest behind; "
          "disconnected");
}

void hub::forget(client& c) {
    service_->left(c);
    client* last = clients_.back();
    clients_[c.slot] = last;
    last->slot = c.slot;
    clients_.pop_back();
    if (c.mode == close_mode::drop) {  // the server decided: say why
        ++stats_.dropped;
        console_.add(fmt::format("Dropped {}: {}", c.peer, c.reason));
    }
    console_.add(fmt::format("Disconnected : {} : {}", c.host, c.port));
}

}  // namespace talk
