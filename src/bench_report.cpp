#include "talk/bench/report.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace talk::bench {

namespace {

double us(std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

double per_second(const report& r) {
    return r.seconds > 0 ? static_cast<double>(r.deliveries) / r.seconds : 0;
}

std::optional<double> server_pct(const report& r) {
    if (!r.server_cpu_s || r.seconds <= 0) return std::nullopt;
    return *r.server_cpu_s / r.seconds * 100;
}

std::optional<double> server_us_per_delivery(const report& r) {
    if (!r.server_cpu_s || r.deliveries == 0) return std::nullopt;
    return *r.server_cpu_s * 1e6 / static_cast<double>(r.deliveries);
}

double gen_pct(const report& r) { return r.seconds > 0 ? r.gen_cpu_s / r.seconds * 100 : 0; }

// One field: its name and its value as CSV and JSON want it.
struct field {
    std::string_view name;
    std::string value;  // empty: no value (CSV: empty, JSON: null)
    bool text = false;  // a JSON string
};

template <class T>
std::string opt(const std::optional<T>& v, std::string_view spec) {
    return v ? fmt::format(fmt::runtime(spec), *v) : std::string();
}

// The schema, in order. Keep names stable: scripts parse them.
std::vector<field> fields(const report& r) {
    return {
        {"mode", r.mode, true},
        {"protocol", r.protocol, true},
        {"connections", fmt::format("{}", r.connections)},
        {"senders", fmt::format("{}", r.senders)},
        {"receivers", fmt::format("{}", r.receivers)},
        {"idle", fmt::format("{}", r.idle)},
        {"size", fmt::format("{}", r.size)},
        {"window", fmt::format("{}", r.window)},
        {"rate", fmt::format("{:g}", r.rate)},
        {"messages", fmt::format("{}", r.messages)},
        {"expected", fmt::format("{}", r.expected)},
        {"deliveries", fmt::format("{}", r.deliveries)},
        {"seconds", fmt::format("{:.6f}", r.seconds)},
        {"deliveries_per_s", fmt::format("{:.0f}", per_second(r))},
        {"p50_us", fmt::format("{:.1f}", us(r.latency.percentile(50)))},
        {"p90_us", fmt::format("{:.1f}", us(r.latency.percentile(90)))},
        {"p99_us", fmt::format("{:.1f}", us(r.latency.percentile(99)))},
        {"max_us", fmt::format("{:.1f}", us(r.latency.max()))},
        {"lost", fmt::format("{}", r.lost)},
        {"out_of_order", fmt::format("{}", r.out_of_order)},
        {"duplicates", fmt::format("{}", r.duplicates)},
        {"malformed", fmt::format("{}", r.malformed)},
        {"errors", fmt::format("{}", r.errors)},
        {"disconnects", fmt::format("{}", r.disconnects)},
        {"timed_out", r.timed_out ? "1" : "0"},
        {"setup_s", fmt::format("{:.3f}", r.setup_s)},
        {"gen_cpu_s", fmt::format("{:.3f}", r.gen_cpu_s)},
        {"gen_cpu_pct", fmt::format("{:.1f}", gen_pct(r))},
        {"server_cpu_s", opt(r.server_cpu_s, "{:.2f}")},
        {"server_cpu_pct", opt(server_pct(r), "{:.1f}")},
        {"server_cpu_us_per_delivery", opt(server_us_per_delivery(r), "{:.3f}")},
        {"server_rss_kb", opt(r.server_rss_kb, "{}")},
        {"ok", r.ok() ? "1" : "0"},
    };
}

// 812 ns, 12.3 us, 4.56 ms, 1.23 s
std::string duration(std::uint64_t ns) {
    if (ns < 1000) return fmt::format("{} ns", ns);
    if (ns < 1'000'000) return fmt::format("{:.1f} us", us(ns));
    if (ns < 1'000'000'000) return fmt::format("{:.2f} ms", static_cast<double>(ns) / 1e6);
    return fmt::format("{:.2f} s", static_cast<double>(ns) / 1e9);
}

std::string plural(std::uint64_t n, std::string_view one, std::string_view many) {
    return fmt::format("{} {}", n, n == 1 ? one : many);
}

}  // namespace

void print_table(std::FILE* f, const report& r) {
    if (r.mode == "fanout") {
        std::string pacing = r.rate > 0 ? fmt::format("rate {:g}/s per sender", r.rate)
                             : r.window ? fmt::format("window {}", r.window)
                                        : std::string("no window");
        fmt::print(f, "fanout {}: {} x {}, {} idle; {} x {} B each; {}\n", r.protocol,
                   plural(r.senders, "sender", "senders"), plural(r.receivers, "receiver", "receivers"),
                   r.idle, plural(r.messages, "message", "messages"), r.size, pacing);
    } else {
        fmt::print(f, "{} {}: {}, {} idle; {} x {} B each, one at a time\n", r.mode, r.protocol,
                   plural(r.senders, "connection", "connections"), r.idle,
                   plural(r.messages, "request", "requests"), r.size);
    }
    fmt::print(f, "  {:<11} {} of {} in {:.3f} s: {:.0f}/s (setup {:.2f} s){}\n",
               r.mode == "fanout" ? "deliveries" : "responses", r.deliveries, r.expected, r.seconds,
               per_second(r), r.setup_s, r.timed_out ? "  TIMED OUT" : "");
    fmt::print(f, "  {:<11} p50 {}  p90 {}  p99 {}  max {}\n", r.mode == "fanout" ? "latency" : "rtt",
               duration(r.latency.percentile(50)), duration(r.latency.percentile(90)),
               duration(r.latency.percentile(99)), duration(r.latency.max()));
    fmt::print(f, "  {:<11} lost {}, out of order {}, duplicates {}, malformed {}, errors {}, "
                  "disconnects {}: {}\n",
               "checks", r.lost, r.out_of_order, r.duplicates, r.malformed, r.errors, r.disconnects,
               r.ok() ? "ok" : "FAILED");
    fmt::print(f, "  {:<11} cpu {:.2f} s, {:.0f}% of a core\n", "talkbench", r.gen_cpu_s, gen_pct(r));
    if (r.server_cpu_s) {
        fmt::print(f, "  {:<11} cpu {:.2f} s, {:.0f}% of a core, {:.3f} us per {}; rss {} kB\n", "server",
                   *r.server_cpu_s, server_pct(r).value_or(0), server_us_per_delivery(r).value_or(0),
                   r.mode == "fanout" ? "delivery" : "request",
                   r.server_rss_kb ? fmt::format("{}", *r.server_rss_kb) : std::string("?"));
    }
    std::fflush(f);
}

void print_csv(std::FILE* f, const report& r) {
    auto fs = fields(r);
    std::string head, row;
    for (const auto& x : fs) {
        if (!head.empty()) {
            head += ',';
            row += ',';
        }
        head += x.name;
        row += x.value;
    }
    fmt::print(f, "{}\n{}\n", head, row);
    std::fflush(f);
}

void print_json(std::FILE* f, const report& r) {
    std::string out = "{";
    for (const auto& x : fields(r)) {
        if (out.size() > 1) out += ", ";
        // Values are numbers and fixed words: nothing needs escaping.
        std::string v = x.value.empty() ? "null" : x.text ? "\"" + x.value + "\"" : x.value;
        out += fmt::format("\"{}\": {}", x.name, v);
    }
    fmt::print(f, "{}}}\n", out);
    std::fflush(f);
}

double self_cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto secs = [](const timeval& tv) {
        return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
    };
    return secs(ru.ru_utime) + secs(ru.ru_stime);
}

std::optional<double> process_cpu_seconds(pid_t pid) {
    std::ifstream in(fmt::format("/proc/{}/stat", pid));
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // The command name, field 2, is in parentheses and may hold blanks: count the
    // fields from the last ')'.
    auto close = all.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream rest(all.substr(close + 1));
    std::string word;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; rest >> word; ++i) {  // fields 14 and 15: utime, stime
        if (i == 14) utime = std::strtoull(word.c_str(), nullptr, 10);
        if (i == 15) {
            stime = std::strtoull(word.c_str(), nullptr, 10);
            static const long ticks = ::sysconf(_SC_CLK_TCK);
            return static_cast<double>(utime + stime) / static_cast<double>(ticks > 0 ? ticks : 100);
        }
    }
    return std::nullopt;
}

std::optional<long> process_rss_kb(pid_t pid) {
    std::ifstream in(fmt::format("/proc/{}/status", pid));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return std::nullopt;
}

void run_span::start(std::uint64_t now_ns) {
    first_send_ = now_ns;
    rep_.setup_s = static_cast<double>(first_send_ - begin_) / 1e9;
    cpu0_ = self_cpu_seconds();
    if (server_) server_cpu0_ = process_cpu_seconds(server_);
}

void run_span::finish(std::uint64_t now_ns, std::uint64_t end_ns) const {
    if (!started()) {  // never got past setup
        rep_.setup_s = static_cast<double>(now_ns - begin_) / 1e9;
        return;
    }
    rep_.seconds = static_cast<double>(end_ns - first_send_) / 1e9;
    rep_.gen_cpu_s = self_cpu_seconds() - cpu0_;
    if (server_) {
        auto cpu = process_cpu_seconds(server_);
        if (cpu && server_cpu0_) rep_.server_cpu_s = *cpu - *server_cpu0_;
        rep_.server_rss_kb = process_rss_kb(server_);
    }
}

}  // namespace talk::bench
