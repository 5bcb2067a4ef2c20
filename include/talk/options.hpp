// talkd's command line, parsed into server_options. Kept apart from main so that
// the parsing, the defaults and the error messages can be tested.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "talk/hub.hpp"

namespace talk {

struct server_options {
    std::string bind;         // empty: every address (IPv6 dual-stack, else IPv4)
    std::uint16_t port = 0;   // 0: an ephemeral port, printed at start
    std::string backend;      // select, poll or epoll
    std::string service = "chat";
    int verbose = 0;          // -v connections, -vv waits and I/O, -vvv buffer sizes
    talk::limits limits;      // what one client can make the server hold or do
    std::size_t max_clients = 0;       // 0: 10000, or as many as descriptors allow
    std::size_t max_input = 16u << 10; // bytes read from one client per wakeup
    std::size_t max_write = 64u << 10; // bytes written to one client per wakeup
    int max_accepts = 16;              // connections accepted per loop pass
};

struct parse_result {
    enum { run, exit_ok, usage_error } action;
    std::string text;  // --help or --version text (stdout), or the usage error (stderr)
};

parse_result parse_talkd_args(int argc, char** argv, server_options& out);

// "4096", "64K", "1M", "2MiB": a byte count; nullopt when malformed or zero.
std::optional<std::size_t> parse_size(std::string_view s);

}  // namespace talk
