#include "talk/hub.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace talk {

void hub::open(client& c) {
    c.slot = clients_.size();
    clients_.push_back(&c);
    ++stats_.connections;
    console_.add(fmt::format("Connected to : {} : {}", c.host, c.port));
    service_->joined(c);
}

std::size_t hub::feed(client& c, std::string_view bytes) {
    if (c.closing) return bytes.size();
    return c.framer.feed(
        bytes,
        [&](std::string_view line) {
            ++stats_.lines_in;
            service_->line(c, line);
            return !c.closing;  // lines after /quit in the same read are not run
        },
        [&] { reply(c, fmt::format("ERR line-too-long max {} bytes", limits_.max_line)); });
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

void hub::overflow(client& c) {
    close(c, close_mode::drop,
          fmt::format("output queue over {} bytes: not reading", limits_.max_queue),
          "ERR too-slow you stopped reading and your messages piled up; disconnected");
}

void hub::forget(client& c) {
    service_->left(c);
    client* last = clients_.back();
    clients_[c.slot] = last;
    last->slot = c.slot;
    clients_.pop_back();
    if (c.mode == close_mode::drop)  // the server decided: say why
        console_.add(fmt::format("Dropped {}: {}", c.peer, c.reason));
    console_.add(fmt::format("Disconnected : {} : {}", c.host, c.port));
}

}  // namespace talk
