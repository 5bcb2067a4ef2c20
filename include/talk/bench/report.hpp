// What a talkbench run measured, and the three ways it is printed.
//
// Every mode fills the same record, so a script reads one schema whatever the mode:
// a CSV header and row (--csv), one JSON object (--json), or a short table for a
// human. The field names are the contract with the bench scripts; the table is not.
//
// CPU is measured over the same span as the rate, from the first send to the last
// delivery: talkbench's own (getrusage) and, with --server-pid, the server's
// (utime + stime from /proc/PID/stat, in clock ticks, usually 10 ms). A figure is
// only the server's limit when the server's CPU is near 100 % and talkbench's is not.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "talk/bench/histogram.hpp"
#include "talk/bench/options.hpp"

namespace talk::bench {

struct report {
    // what was asked
    std::string mode;         // fanout, echo, idle
    std::string protocol;     // talk, redis
    std::uint64_t connections = 0;  // every connection opened, idle ones included
    std::uint64_t senders = 0, receivers = 0, idle = 0;
    std::uint64_t size = 0, window = 0;
    double rate = 0;
    std::uint64_t messages = 0;  // per sender (fanout), requests per connection (echo, idle)

    // what happened
    std::uint64_t expected = 0;    // deliveries that should arrive
    std::uint64_t deliveries = 0;  // distinct ones that did (responses, for echo and idle)
    double seconds = 0;            // first send to last delivery
    double setup_s = 0;            // connecting and handshakes, before the first send
    histogram latency;             // send to delivery, or round trip
    std::uint64_t lost = 0, out_of_order = 0, duplicates = 0, malformed = 0;
    std::uint64_t errors = 0;       // error lines or replies from the server
    std::uint64_t disconnects = 0;  // connections the server closed
    bool timed_out = false;

    // whose limit it was
    double gen_cpu_s = 0;
    std::optional<double> server_cpu_s;
    std::optional<long> server_rss_kb;

    bool ok() const {
        return !timed_out && lost == 0 && out_of_order == 0 && duplicates == 0 && malformed == 0 &&
               errors == 0 && disconnects == 0 && deliveries == expected;
    }
};

// The span a run measures: setup from begin() to start(), then the run from the
// first send to the last delivery, with the CPU both sides spent in it.
class run_span {
public:
    run_span(report& r, pid_t server) : rep_(r), server_(server) {}
    void begin(std::uint64_t now_ns) { begin_ = now_ns; }
    // Setup is over: the first send is now, and the CPU counters start.
    void start(std::uint64_t now_ns);
    bool started() const { return first_send_ != 0; }
    std::uint64_t first_send() const { return first_send_; }
    // Fills the timing, CPU and memory fields; `end` is the last delivery (or now).
    void finish(std::uint64_t now_ns, std::uint64_t end_ns) const;

private:
    report& rep_;
    pid_t server_;
    std::uint64_t begin_ = 0, first_send_ = 0;
    double cpu0_ = 0;
    std::optional<double> server_cpu0_;
};

void print_table(std::FILE* f, const report& r);
void print_csv(std::FILE* f, const report& r);
void print_json(std::FILE* f, const report& r);

// ---- CPU and memory ----

double self_cpu_seconds();                          // user + system, getrusage
std::optional<double> process_cpu_seconds(pid_t);   // /proc/PID/stat utime + stime
std::optional<long> process_rss_kb(pid_t);          // /proc/PID/status VmRSS

}  // namespace talk::bench
