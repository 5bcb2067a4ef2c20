#include "talk/options.hpp"

#include <getopt.h>

#include <algorithm>
#include <charconv>
#include <iterator>
#include <cstdlib>

#include <fmt/format.h>

#include "talk/backend/backends.hpp"
#include "talk/version.hpp"

namespace talk {

namespace {

constexpr const char* usage_hint = "try 'talkd --help'";

std::string help_text() {
    return fmt::format(
        "usage: talkd -p PORT [options]\n"
        "A multi-client talk server: one thread, non-blocking sockets, one event loop.\n"
        "\n"
        "  -p, --port PORT           TCP port to listen on (required; 0 picks a free one)\n"
        "  -b, --bind ADDR           address to listen on (default: all, IPv6 and IPv4)\n"
        "      --backend NAME        event loop backend: {}, or threads (default {})\n"
        "      --service NAME        chat, echo or reverse (default chat)\n"
        "  -v, --verbose             log connections to stderr; -vv waits and I/O, -vvv buffers\n"
        "  -h, --help                show this help\n"
        "  -V, --version             show the version and the backends built in\n"
        "\n"
        "Limits (BYTES: 4096, 64K, 1M; SECONDS 0 turns a timeout off):\n"
        "      --max-line BYTES      longest line accepted (4096)\n"
        "      --max-input BYTES     input read from one client per wakeup (16K)\n"
        "      --max-queue BYTES     output queued for one client: disconnected past it (1M)\n"
        "      --soft-queue BYTES    ... or past this for --soft-queue-time (256K)\n"
        "      --soft-queue-time SECONDS                                    (10)\n"
        "      --max-total-queue BYTES  all queued output; the longest queue goes first (64M)\n"
        "      --max-clients N       connections served at once (10000, or fewer descriptors)\n"
        "      --max-accepts N       connections accepted per loop pass (16)\n"
        "      --max-write BYTES     output written to one client per wakeup (64K)\n"
        "      --line-timeout SECONDS  an unfinished line, from its first byte (60)\n"
        "      --idle-timeout SECONDS  a client that sends nothing (0: off)\n"
        "      --flood-rate LINES    lines a second per client before it is slowed (200; 0: off)\n"
        "      --flood-burst LINES   lines at once before the rate applies (1000)\n"
        "      --flood-disconnect    disconnect a flooding client instead of slowing it\n"
        "\n"
        "Lines typed on stdin go to every client; /help there lists console commands.\n"
        "SIGINT or SIGTERM shuts down gracefully. See talkd(1) and talk(7).\n",
        available_backends(), default_backend);
}

std::string version_text() {
    return fmt::format("talkd {}\nbackends: {}, threads\n", version, available_backends());
}

parse_result usage(std::string msg) {
    return {parse_result::usage_error, fmt::format("talkd: {}; {}\n", msg, usage_hint)};
}

template <class T>
std::optional<T> parse_number(std::string_view s) {
    T v{};
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

enum long_only {
    opt_backend = 1000,
    opt_service,
    opt_max_line,
    opt_max_input,
    opt_max_queue,
    opt_soft_queue,
    opt_soft_queue_time,
    opt_max_total_queue,
    opt_max_clients,
    opt_max_accepts,
    opt_max_write,
    opt_line_timeout,
    opt_idle_timeout,
    opt_flood_rate,
    opt_flood_burst,
    opt_flood_disconnect,
};

// Where each numeric option goes, and what kind of number it takes.
struct numeric_option {
    int id;
    const char* name;
    enum { bytes, count, seconds, rate } kind;
    void (*store)(server_options&, double);
};

const numeric_option numeric_options[] = {
    {opt_max_line, "--max-line", numeric_option::bytes,
     [](server_options& o, double v) { o.limits.max_line = static_cast<std::size_t>(v); }},
    {opt_max_input, "--max-input", numeric_option::bytes,
     [](server_options& o, double v) { o.max_input = static_cast<std::size_t>(v); }},
    {opt_max_queue, "--max-queue", numeric_option::bytes,
     [](server_options& o, double v) { o.limits.max_queue = static_cast<std::size_t>(v); }},
    {opt_soft_queue, "--soft-queue", numeric_option::bytes,
     [](server_options& o, double v) { o.limits.soft_queue = static_cast<std::size_t>(v); }},
    {opt_soft_queue_time, "--soft-queue-time", numeric_option::seconds,
     [](server_options& o, double v) { o.limits.soft_queue_time = std::chrono::seconds(static_cast<long>(v)); }},
    {opt_max_total_queue, "--max-total-queue", numeric_option::bytes,
     [](server_options& o, double v) { o.limits.max_total_queue = static_cast<std::size_t>(v); }},
    {opt_max_clients, "--max-clients", numeric_option::count,
     [](server_options& o, double v) { o.max_clients = static_cast<std::size_t>(v); }},
    {opt_max_accepts, "--max-accepts", numeric_option::count,
     [](server_options& o, double v) { o.max_accepts = static_cast<int>(v); }},
    {opt_max_write, "--max-write", numeric_option::bytes,
     [](server_options& o, double v) { o.max_write = static_cast<std::size_t>(v); }},
    {opt_line_timeout, "--line-timeout", numeric_option::seconds,
     [](server_options& o, double v) { o.limits.line_timeout = std::chrono::seconds(static_cast<long>(v)); }},
    {opt_idle_timeout, "--idle-timeout", numeric_option::seconds,
     [](server_options& o, double v) { o.limits.idle_timeout = std::chrono::seconds(static_cast<long>(v)); }},
    {opt_flood_rate, "--flood-rate", numeric_option::rate,
     [](server_options& o, double v) { o.limits.flood_rate = v; }},
    {opt_flood_burst, "--flood-burst", numeric_option::count,
     [](server_options& o, double v) { o.limits.flood_burst = v; }},
};

// The value of a numeric option, or an error message.
std::optional<double> numeric_value(const numeric_option& o, std::string_view arg, std::string& error) {
    switch (o.kind) {
        case numeric_option::bytes:
            if (auto n = parse_size(arg)) return static_cast<double>(*n);
            error = fmt::format("{} needs a byte count like 4096, 64K or 1M, not '{}'", o.name, arg);
            return std::nullopt;
        case numeric_option::count:
            if (auto n = parse_number<unsigned long>(arg); n && *n > 0 && *n <= 100000000)
                return static_cast<double>(*n);
            error = fmt::format("{} needs a positive whole number, not '{}'", o.name, arg);
            return std::nullopt;
        case numeric_option::seconds:
            if (auto n = parse_number<unsigned long>(arg); n && *n <= 365ul * 24 * 3600)
                return static_cast<double>(*n);
            error = fmt::format("{} needs a number of seconds (0 turns it off), not '{}'", o.name, arg);
            return std::nullopt;
        case numeric_option::rate:
            if (auto n = parse_number<unsigned long>(arg); n && *n <= 100000000)
                return static_cast<double>(*n);
            error = fmt::format("{} needs lines per second (0 turns it off), not '{}'", o.name, arg);
            return std::nullopt;
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::size_t> parse_size(std::string_view s) {
    std::size_t digits = 0;
    while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
    auto n = parse_number<std::size_t>(s.substr(0, digits));
    if (!n || *n == 0) return std::nullopt;
    std::string_view unit = s.substr(digits);
    std::size_t mult = 1;
    if (!unit.empty()) {
        switch (unit[0]) {
            case 'k': case 'K': mult = std::size_t{1} << 10; break;
            case 'm': case 'M': mult = std::size_t{1} << 20; break;
            case 'g': case 'G': mult = std::size_t{1} << 30; break;
            case 'b': case 'B': break;
            default: return std::nullopt;
        }
        unit.remove_prefix(1);
        if (unit == "iB" || unit == "B" || unit.empty()) {
        } else {
            return std::nullopt;
        }
    }
    if (*n > SIZE_MAX / mult) return std::nullopt;
    return *n * mult;
}

parse_result parse_talkd_args(int argc, char** argv, server_options& out) {
    static const option longopts[] = {
        {"port", required_argument, nullptr, 'p'},
        {"bind", required_argument, nullptr, 'b'},
        {"backend", required_argument, nullptr, opt_backend},
        {"service", required_argument, nullptr, opt_service},
        {"verbose", no_argument, nullptr, 'v'},
        {"max-line", required_argument, nullptr, opt_max_line},
        {"max-input", required_argument, nullptr, opt_max_input},
        {"max-queue", required_argument, nullptr, opt_max_queue},
        {"soft-queue", required_argument, nullptr, opt_soft_queue},
        {"soft-queue-time", required_argument, nullptr, opt_soft_queue_time},
        {"max-total-queue", required_argument, nullptr, opt_max_total_queue},
        {"max-clients", required_argument, nullptr, opt_max_clients},
        {"max-accepts", required_argument, nullptr, opt_max_accepts},
        {"max-write", required_argument, nullptr, opt_max_write},
        {"line-timeout", required_argument, nullptr, opt_line_timeout},
        {"idle-timeout", required_argument, nullptr, opt_idle_timeout},
        {"flood-rate", required_argument, nullptr, opt_flood_rate},
        {"flood-burst", required_argument, nullptr, opt_flood_burst},
        {"flood-disconnect", no_argument, nullptr, opt_flood_disconnect},
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'V'},
        {nullptr, 0, nullptr, 0},
    };
    out.backend = std::string(default_backend);
    bool have_port = false;
    optind = 0;  // reset getopt, so this can be called more than once (tests)
    opterr = 0;  // errors are reported here, in one line
    int ch;
    while ((ch = ::getopt_long(argc, argv, ":p:b:vhV", longopts, nullptr)) != -1) {
        std::string_view arg = optarg ? optarg : "";
        if (auto* n = std::find_if(std::begin(numeric_options), std::end(numeric_options),
                                   [&](const numeric_option& o) { return o.id == ch; });
            n != std::end(numeric_options)) {
            std::string error;
            auto v = numeric_value(*n, arg, error);
            if (!v) return usage(error);
            n->store(out, *v);
            continue;
        }
        switch (ch) {
            case 'p': {
                auto p = parse_number<unsigned>(arg);
                if (!p || *p > 65535) return usage(fmt::format("bad port '{}' (0-65535)", arg));
                out.port = static_cast<std::uint16_t>(*p);
                have_port = true;
                break;
            }
            case 'b': out.bind = arg; break;
            case opt_backend:
                if (arg != "threads" && !with_backend(arg, [](auto) {}))
                    return usage(fmt::format("unknown backend '{}' (available: {}, threads)", arg,
                                             available_backends()));
                out.backend = arg;
                break;
            case opt_service:
                if (arg != "chat" && arg != "echo" && arg != "reverse")
                    return usage(fmt::format("unknown service '{}' (chat, echo, reverse)", arg));
                out.service = arg;
                break;
            case opt_flood_disconnect: out.limits.flood_disconnect = true; break;
            case 'v': ++out.verbose; break;
            case 'h': return {parse_result::exit_ok, help_text()};
            case 'V': return {parse_result::exit_ok, version_text()};
            case ':': return usage(fmt::format("option '{}' needs a value", argv[optind - 1]));
            default:
                if (optopt) return usage(fmt::format("unknown option '-{}'", static_cast<char>(optopt)));
                return usage(fmt::format("unknown option '{}'", argv[optind - 1]));
        }
    }
    if (optind < argc) return usage(fmt::format("unexpected argument '{}'", argv[optind]));
    if (!have_port) return usage("missing -p PORT");
    if (out.limits.soft_queue > out.limits.max_queue) out.limits.soft_queue = out.limits.max_queue;
    if (out.max_input < 256) return usage("--max-input must be at least 256 bytes");
    // A command's reply (/who, /help) is capped well below this, so the requester is
    // never dropped for the answer it asked for.
    if (out.limits.max_queue < 16 * 1024) return usage("--max-queue must be at least 16K");
    if (out.max_write < 256) return usage("--max-write must be at least 256 bytes");
    return {parse_result::run, {}};
}

}  // namespace talk
