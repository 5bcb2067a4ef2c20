// talkbench's command line, parsed in talkbench.cpp and read by every mode.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "talk/bench/wire.hpp"

namespace talk::bench {

enum class mode { fanout, echo, idle };
enum class output { table, csv, json };

struct options {
    bench::mode mode = mode::fanout;
    std::string host = "127.0.0.1";
    std::string port;
    bench::protocol proto = protocol::talk;

    // fanout
    std::uint32_t receivers = 1;   // -N
    std::uint32_t senders = 1;     // -P
    std::uint32_t idle = 0;        // -K (also idle mode)
    std::uint32_t messages = 1000; // -m, per sender
    // -w, per sender; 0: no limit. Small windows make every write of the server and
    // every read of the receivers carry a few messages, and then the per-syscall cost
    // of both sides is measured more than the server's fan-out: with 1000 receivers,
    // a window of 64 costs talkbench about as much CPU per delivery as talkd, one of
    // 256 clearly less.
    std::uint32_t window = 256;
    double rate = 0;               // -r, messages a second per sender; 0: use the window

    // echo, idle
    std::uint32_t connections = 1;  // -C
    std::uint32_t requests = 1000;  // -n, per connection

    std::size_t size = 64;          // -s, payload bytes
    pid_t server_pid = 0;           // --server-pid; 0: none
    double timeout_s = 60;          // -t, the whole run, setup included
    output out = output::table;
    bool quiet = false;             // -q: no table on stderr with --csv/--json
};

}  // namespace talk::bench
