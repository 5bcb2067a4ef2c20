// End-to-end tests of talkbench against a real talkd on every backend: correctness
// at a small scale, not speed. Each run's --csv line is read back by field name, as
// the bench scripts read it.
//
// TALKBENCH names the binary under test (default ./talkbench), as TALKD names talkd.
#include "helpers.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace talk::testing;

namespace {

std::string talkbench_path() {
    const char* p = std::getenv("TALKBENCH");
    return p && *p ? p : "./talkbench";
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string item;
    std::istringstream in(s);
    while (std::getline(in, item, sep)) out.push_back(item);
    if (!s.empty() && s.back() == sep) out.emplace_back();
    return out;
}

// The CSV header and row talkbench printed, as name -> value.
std::map<std::string, std::string> csv_fields(const std::string& out) {
    auto lines = split(out, '\n');
    std::map<std::string, std::string> fields;
    if (lines.size() < 2) return fields;
    auto names = split(lines[0], ','), values = split(lines[1], ',');
    for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) fields[names[i]] = values[i];
    return fields;
}

// The limits that would otherwise be measured instead of the generator's checks.
std::vector<std::string> bench_limits(const std::string& backend, std::vector<std::string> more = {}) {
    std::vector<std::string> args = on(backend, {"--flood-rate=0", "--max-queue=64M", "--soft-queue=64M",
                                                 "--max-total-queue=1G"});
    args.insert(args.end(), more.begin(), more.end());
    return args;
}

run_result bench(std::vector<std::string> args) {
    args.insert(args.begin(), talkbench_path());
    args.insert(args.end(), {"--csv", "-q", "--timeout", "20"});
    return run_program(args, "", 25000ms);
}

}  // namespace

BACKEND_TEST(bench_fanout, "talkbench fanout: 2 senders x 5 receivers x 200 messages, all in order") {
    talk_server srv(bench_limits(backend), stdin_kind::dev_null);
    auto r = bench({"fanout", "-p", std::to_string(srv.port()), "-N", "5", "-P", "2", "-m", "200", "-s", "64",
                    "--server-pid", std::to_string(srv.pid())});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 0);
    auto f = csv_fields(r.out);
    CHECK(f["mode"] == "fanout");
    CHECK(f["deliveries"] == "2000");
    CHECK(f["expected"] == "2000");
    CHECK(f["lost"] == "0");
    CHECK(f["out_of_order"] == "0");
    CHECK(f["duplicates"] == "0");
    CHECK(f["malformed"] == "0");
    CHECK(f["ok"] == "1");
    CHECK(!f["server_rss_kb"].empty());
}

BACKEND_TEST(bench_fanout_rate_idle, "talkbench fanout: a paced rate beside idle connections") {
    talk_server srv(bench_limits(backend), stdin_kind::dev_null);
    auto r = bench({"fanout", "-p", std::to_string(srv.port()), "-N", "3", "-P", "2", "-K", "10", "-m", "50",
                    "--rate", "500"});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 0);
    auto f = csv_fields(r.out);
    CHECK(f["deliveries"] == "300");
    CHECK(f["lost"] == "0");
    CHECK(f["out_of_order"] == "0");
    CHECK(f["idle"] == "10");
}

BACKEND_TEST(bench_echo, "talkbench echo: 2 connections x 100 requests") {
    talk_server srv(bench_limits(backend, {"--service=echo"}), stdin_kind::dev_null);
    auto r = bench({"echo", "-p", std::to_string(srv.port()), "-C", "2", "-n", "100"});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 0);
    auto f = csv_fields(r.out);
    CHECK(f["mode"] == "echo");
    CHECK(f["deliveries"] == "200");
    CHECK(f["lost"] == "0");
}

BACKEND_TEST(bench_idle, "talkbench idle: 50 idle connections beside one echo connection") {
    talk_server srv(bench_limits(backend, {"--service=echo"}), stdin_kind::dev_null);
    auto r = bench({"idle", "-p", std::to_string(srv.port()), "-K", "50", "-n", "100"});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 0);
    auto f = csv_fields(r.out);
    CHECK(f["mode"] == "idle");
    CHECK(f["idle"] == "50");
    CHECK(f["deliveries"] == "100");
}

BACKEND_TEST(bench_detects_loss, "talkbench fails, after its report, when deliveries are missing") {
    // The default flood limit (200 lines a second after a burst of 1000) slows the
    // sender far below what the timeout allows: the run must time out and say so.
    talk_server srv(on(backend), stdin_kind::dev_null);
    auto r = run_program({talkbench_path(), "fanout", "-p", std::to_string(srv.port()), "-N", "2", "-m",
                          "3000", "-w", "0", "--csv", "-q", "--timeout", "1"},
                         "", 10000ms);
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 1);
    auto f = csv_fields(r.out);
    CHECK(f["timed_out"] == "1");
    CHECK(f["ok"] == "0");
    CHECK(f["lost"] != "0");
}

TEST_CASE("talkbench refuses a host that is not loopback", "[any]") {
    auto r = run_program({talkbench_path(), "fanout", "-p", "9", "-i", "192.0.2.1"}, "");
    CHECK(r.status == 64);
    CHECK(r.err.find("loopback") != std::string::npos);
}
