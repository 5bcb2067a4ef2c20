// The operator's console commands, shared by both server models.
//
// A line typed on talkd's stdin is either text for every client or a command:
// /who and /kick belong to the service, /help is answered here, and /stats and
// /shutdown are handed back to the server, which alone knows its loop and its
// sockets. Replies go to the hub's console.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "talk/clock.hpp"
#include "talk/hub.hpp"

namespace talk {

enum class operator_action { none, stats, shutdown };

// Handles what the operator typed; returns what the server must do itself.
operator_action operator_input(hub& h, service& s, std::string_view line);

// What /stats prints, for either server model.
struct server_counters {
    std::string_view backend;
    std::string_view service;
    clock::time_point started;
    std::uint64_t passes = 0;  // loop passes; 0 for the threads model
    std::size_t threads = 0;   // client threads; 0 for the event loop
};
void print_stats(hub& h, const service& s, const server_counters& c);

}  // namespace talk
