#include "talk/options.hpp"

#include <getopt.h>

#include <charconv>
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
        "  -p, --port PORT        TCP port to listen on (required; 0 picks a free one)\n"
        "  -b, --bind ADDR        address to listen on (default: all, IPv6 and IPv4)\n"
        "      --backend NAME     event loop backend: {} (default {})\n"
        "      --service NAME     chat, echo or reverse (default chat)\n"
        "  -v, --verbose          log connections to stderr; -vv waits and I/O, -vvv buffers\n"
        "      --max-line BYTES   longest line accepted (default 4096)\n"
        "      --max-queue BYTES  output queued for one client before it is dropped (default 1M)\n"
        "      --max-clients N    connections served at once (default: descriptor limit)\n"
        "  -h, --help             show this help\n"
        "  -V, --version          show the version and the backends built in\n"
        "\n"
        "Lines typed on stdin go to every client. SIGINT or SIGTERM shuts down gracefully.\n"
        "See talkd(1) and talk(7).\n",
        available_backends(), default_backend);
}

std::string version_text() {
    return fmt::format("talkd {}\nbackends: {}\n", version, available_backends());
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

enum long_only { opt_backend = 1000, opt_service, opt_max_line, opt_max_queue, opt_max_clients };

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
        {"max-queue", required_argument, nullptr, opt_max_queue},
        {"max-clients", required_argument, nullptr, opt_max_clients},
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
                if (!with_backend(arg, [](auto) {}))
                    return usage(fmt::format("unknown backend '{}' (available: {})", arg,
                                             available_backends()));
                out.backend = arg;
                break;
            case opt_service:
                if (arg != "chat" && arg != "echo" && arg != "reverse")
                    return usage(fmt::format("unknown service '{}' (chat, echo, reverse)", arg));
                out.service = arg;
                break;
            case 'v': ++out.verbose; break;
            case opt_max_line:
            case opt_max_queue: {
                auto n = parse_size(arg);
                const char* name = ch == opt_max_line ? "--max-line" : "--max-queue";
                if (!n) return usage(fmt::format("{} needs a byte count like 4096 or 1M, not '{}'", name, arg));
                (ch == opt_max_line ? out.limits.max_line : out.limits.max_queue) = *n;
                break;
            }
            case opt_max_clients: {
                auto n = parse_number<std::size_t>(arg);
                if (!n || *n == 0) return usage(fmt::format("--max-clients needs a positive number, not '{}'", arg));
                out.max_clients = *n;
                break;
            }
            case 'h': return {parse_result::exit_ok, help_text()};
            case 'V': return {parse_result::exit_ok, version_text()};
            case ':': return usage(fmt::format("option '{}' needs a value", argv[optind - 1]));
            default: return usage(fmt::format("unknown option '{}'", argv[optind - 1]));
        }
    }
    if (optind < argc) return usage(fmt::format("unexpected argument '{}'", argv[optind]));
    if (!have_port) return usage("missing -p PORT");
    return {parse_result::run, {}};
}

}  // namespace talk
