// talkbench: the load generator for talkd (and, for comparison, redis-server).
// See talkbench(1).
//
//   talkbench fanout -p PORT -N RECEIVERS -P SENDERS -m MESSAGES -s SIZE [--window W | --rate R]
//   talkbench echo   -p PORT -C CONNECTIONS -n REQUESTS
//   talkbench idle   -p PORT -K IDLE -n REQUESTS
//
// One thread and one event loop, like the server it measures, and built to stay out
// of the way: reads of 64 KiB parsed with memchr, no allocation per message, one
// clock reading per read(). It reports its own CPU time beside the server's, so a
// reader can tell whose limit a figure is.
//
// This file is the command line; the modes are in bench_fanout.cpp and
// bench_echo.cpp.
#include <getopt.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "talk/bench/modes.hpp"
#include "talk/version.hpp"

namespace {

using namespace talk::bench;

constexpr const char* help_text =
    "usage: talkbench fanout -p PORT [-N RECEIVERS] [-P SENDERS] [-K IDLE] [-m MESSAGES] [-s SIZE]\n"
    "                        [-w WINDOW | -r RATE] [common options]\n"
    "       talkbench echo   -p PORT [-C CONNECTIONS] [-n REQUESTS] [-s SIZE] [common options]\n"
    "       talkbench idle   -p PORT [-K IDLE] [-n REQUESTS] [-s SIZE] [common options]\n"
    "Load generator for talkd: fan-out, round trips, and idle-connection scaling.\n"
    "\n"
    "fanout: every sender's messages must reach every receiver, complete and in order\n"
    "  -N, --receivers N       receiving connections (1)\n"
    "  -P, --senders N         sending connections (1)\n"
    "  -K, --idle N            connections that only stay connected (0)\n"
    "  -m, --messages N        messages per sender (1000)\n"
    "  -w, --window N          messages per sender sent but not yet at receiver 0 (256; 0: none)\n"
    "  -r, --rate N            messages a second per sender, instead of a window\n"
    "echo: connections each doing request, response, request...\n"
    "  -C, --connections N     connections (1)\n"
    "  -n, --requests N        requests per connection (1000)\n"
    "idle: one echo connection beside -K idle ones (-K, -n as above)\n"
    "\n"
    "common:\n"
    "  -p, --port PORT         the server's port (required)\n"
    "  -i, --host ADDR         the server's address, loopback only (127.0.0.1)\n"
    "  -s, --size BYTES        payload bytes per message or request (64)\n"
    "      --protocol NAME     talk (talkd) or redis (redis-server: PUBLISH/SUBSCRIBE, ECHO) (talk)\n"
    "      --server-pid PID    also report the server's CPU time and memory\n"
    "  -t, --timeout SECONDS   give up after this long, setup included (60)\n"
    "      --csv               print a CSV header and row (the table goes to stderr)\n"
    "      --json              print one JSON object (the table goes to stderr)\n"
    "  -q, --quiet             with --csv or --json: no table\n"
    "  -h, --help              show this help\n"
    "  -V, --version           show the version\n"
    "\n"
    "Start talkd with --flood-rate=0 and large --max-queue, --soft-queue and --max-total-queue,\n"
    "or its limits are measured instead of its speed. Exits 1 when a check fails or the run\n"
    "times out, after the report. See talkbench(1).\n";

constexpr const char* usage_hint = "try 'talkbench --help'";

enum opt_id {
    opt_protocol = 256,
    opt_server_pid,
    opt_csv,
    opt_json,
};

// Which modes an option means something to.
constexpr unsigned in_fanout = 1, in_echo = 2, in_idle = 4, in_all = 7;

unsigned mode_bit(mode m) { return m == mode::fanout ? in_fanout : m == mode::echo ? in_echo : in_idle; }

struct usage_error {
    std::string what;
};

template <class T>
T whole(std::string_view name, const char* arg, T lo, T hi) {
    long long v = 0;
    auto [ptr, ec] = std::from_chars(arg, arg + std::strlen(arg), v);
    if (ec != std::errc() || *ptr != '\0' || v < static_cast<long long>(lo) || v > static_cast<long long>(hi))
        throw usage_error{
            fmt::format("{} must be a whole number from {} to {}, not '{}'", name, lo, hi, arg)};
    return static_cast<T>(v);
}

double real(std::string_view name, const char* arg, double lo, double hi) {
    char* end = nullptr;
    double v = std::strtod(arg, &end);
    if (end == arg || *end != '\0' || !(v >= lo && v <= hi))
        throw usage_error{fmt::format("{} must be a number from {:g} to {:g}, not '{}'", name, lo, hi, arg)};
    return v;
}

enum class parsed { run, help, version };

parsed parse(int argc, char** argv, options& o) {
    if (argc < 2) throw usage_error{"no mode given: fanout, echo or idle"};
    std::string_view first = argv[1];
    if (first == "-h" || first == "--help") return parsed::help;
    if (first == "-V" || first == "--version") return parsed::version;
    if (first == "fanout")
        o.mode = mode::fanout;
    else if (first == "echo")
        o.mode = mode::echo;
    else if (first == "idle")
        o.mode = mode::idle;
    else
        throw usage_error{fmt::format("unknown mode '{}': fanout, echo or idle", first)};

    static const option longs[] = {
        {"port", required_argument, nullptr, 'p'},
        {"host", required_argument, nullptr, 'i'},
        {"receivers", required_argument, nullptr, 'N'},
        {"senders", required_argument, nullptr, 'P'},
        {"idle", required_argument, nullptr, 'K'},
        {"messages", required_argument, nullptr, 'm'},
        {"size", required_argument, nullptr, 's'},
        {"window", required_argument, nullptr, 'w'},
        {"rate", required_argument, nullptr, 'r'},
        {"connections", required_argument, nullptr, 'C'},
        {"requests", required_argument, nullptr, 'n'},
        {"protocol", required_argument, nullptr, opt_protocol},
        {"server-pid", required_argument, nullptr, opt_server_pid},
        {"timeout", required_argument, nullptr, 't'},
        {"csv", no_argument, nullptr, opt_csv},
        {"json", no_argument, nullptr, opt_json},
        {"quiet", no_argument, nullptr, 'q'},
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'V'},
        {nullptr, 0, nullptr, 0},
    };
    // getopt_long from argv[1], the mode, as if it were the program name.
    int sub_argc = argc - 1;
    char** sub_argv = argv + 1;
    optind = 1;
    opterr = 0;
    bool window_given = false, rate_given = false, port_given = false;
    unsigned here = mode_bit(o.mode);
    auto only = [&](unsigned modes, std::string_view name) {
        if (!(modes & here)) throw usage_error{fmt::format("{} has no meaning in {} mode", name, first)};
    };
    for (;;) {
        int prev = optind;
        int c = ::getopt_long(sub_argc, sub_argv, ":p:i:N:P:K:m:s:w:r:C:n:t:qhV", longs, nullptr);
        if (c == -1) break;
        std::string name = prev < sub_argc ? std::string(sub_argv[prev]) : std::string();
        if (auto eq = name.find('='); eq != std::string::npos) name.resize(eq);
        switch (c) {
            case 'p':
                o.port = std::to_string(whole<int>("the port", optarg, 1, 65535));
                port_given = true;
                break;
            case 'i': o.host = optarg; break;
            case 'N':
                only(in_fanout, name);
                o.receivers = whole<std::uint32_t>("-N", optarg, 1, 100000);
                break;
            case 'P':
                only(in_fanout, name);
                o.senders = whole<std::uint32_t>("-P", optarg, 1, 10000);
                break;
            case 'K':
                only(in_fanout | in_idle, name);
                o.idle = whole<std::uint32_t>("-K", optarg, 0, 100000);
                break;
            case 'm':
                only(in_fanout, name);
                o.messages = whole<std::uint32_t>("-m", optarg, 1, 100000000);
                break;
            case 's': o.size = whole<std::size_t>("--size", optarg, 1, 1u << 20); break;
            case 'w':
                only(in_fanout, name);
                o.window = whole<std::uint32_t>("--window", optarg, 0, 100000000);
                window_given = true;
                break;
            case 'r':
                only(in_fanout, name);
                o.rate = real("--rate", optarg, 0.001, 1e9);
                rate_given = true;
                break;
            case 'C':
                only(in_echo, name);
                o.connections = whole<std::uint32_t>("-C", optarg, 1, 100000);
                break;
            case 'n':
                only(in_echo | in_idle, name);
                o.requests = whole<std::uint32_t>("-n", optarg, 1, 100000000);
                break;
            case 't': o.timeout_s = real("--timeout", optarg, 0.001, 86400); break;
            case opt_protocol:
                if (std::string_view(optarg) == "talk")
                    o.proto = protocol::talk;
                else if (std::string_view(optarg) == "redis")
                    o.proto = protocol::redis;
                else
                    throw usage_error{fmt::format("unknown protocol '{}': talk or redis", optarg)};
                break;
            case opt_server_pid:
                o.server_pid = whole<pid_t>("--server-pid", optarg, 1, std::numeric_limits<pid_t>::max());
                break;
            case opt_csv: o.out = output::csv; break;
            case opt_json: o.out = output::json; break;
            case 'q': o.quiet = true; break;
            case 'h': return parsed::help;
            case 'V': return parsed::version;
            case ':': throw usage_error{fmt::format("{} needs a value", name)};
            default: throw usage_error{fmt::format("unknown option '{}'", name)};
        }
    }
    if (optind < sub_argc) throw usage_error{fmt::format("unexpected argument '{}'", sub_argv[optind])};
    if (!port_given) throw usage_error{"the server's port is required: -p PORT"};
    if (window_given && rate_given) throw usage_error{"--window and --rate are alternatives: give one"};

    // The payload carries its fields; it must have room for the largest of them.
    std::size_t need = (o.mode == mode::fanout ? layout::for_counts(o.senders - 1, o.messages - 1)
                        : o.mode == mode::echo ? layout::for_counts(o.connections - 1, o.requests - 1)
                                               : layout::for_counts(0, o.requests - 1))
                           .header();
    if (o.size < need)
        throw usage_error{fmt::format("--size must be at least {} bytes to hold the message's fields", need)};
    if (o.server_pid) {
        struct stat st{};
        if (::stat(fmt::format("/proc/{}/stat", o.server_pid).c_str(), &st) != 0)
            throw usage_error{fmt::format("--server-pid {}: no such process", o.server_pid)};
    }
    return parsed::run;
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    try {
        switch (parse(argc, argv, opt)) {
            case parsed::help: std::fputs(help_text, stdout); return 0;
            case parsed::version: fmt::print("talkbench {}\n", talk::version); return 0;
            case parsed::run: break;
        }
    } catch (const usage_error& e) {
        fmt::print(stderr, "talkbench: {}; {}\n", e.what, usage_hint);
        return EX_USAGE;
    }

    std::signal(SIGPIPE, SIG_IGN);  // sends use MSG_NOSIGNAL; this is for anything else
    std::string error;
    target where;
    if (!resolve_loopback(opt.host, opt.port, where, error)) {
        fmt::print(stderr, "talkbench: {}\n", error);
        return EX_USAGE;
    }
    std::size_t conns = opt.mode == mode::fanout ? std::size_t(opt.receivers) + opt.senders + opt.idle
                        : opt.mode == mode::echo ? opt.connections
                                                 : std::size_t(opt.idle) + 1;
    if (!ensure_descriptors(conns + 16, error)) {
        fmt::print(stderr, "talkbench: {}\n", error);
        return EX_OSERR;
    }

    report rep;
    int rc = opt.mode == mode::fanout ? run_fanout(opt, where, rep) : run_echo(opt, where, rep);
    if (rc != 0) return rc;
    if (opt.out == output::table) {
        print_table(stdout, rep);
    } else {
        if (!opt.quiet) print_table(stderr, rep);
        (opt.out == output::csv ? print_csv : print_json)(stdout, rep);
    }
    return rep.ok() ? 0 : 1;
}
