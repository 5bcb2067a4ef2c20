// talkd's command line: parse_talkd_args() and parse_size().
#include "talk/options.hpp"

#include <catch2/catch.hpp>

#include <initializer_list>
#include <string>
#include <vector>

#include "talk/backend/backends.hpp"
#include "talk/version.hpp"

using namespace talk;

namespace {

struct parsed {
    parse_result result;
    server_options options;
};

// Runs parse_talkd_args on "talkd" followed by args, with a writable argv as main gets.
parsed parse(std::initializer_list<const char*> args) {
    std::vector<std::string> storage{"talkd"};
    for (const char* a : args) storage.emplace_back(a);
    std::vector<char*> argv;
    for (auto& s : storage) argv.push_back(s.data());
    argv.push_back(nullptr);
    parsed p{{}, {}};
    p.result = parse_talkd_args(static_cast<int>(storage.size()), argv.data(), p.options);
    return p;
}

// A usage error is one line on stderr: "talkd: ...\n".
void check_usage_error(const parse_result& r) {
    CAPTURE(r.text);
    REQUIRE(r.action == parse_result::usage_error);
    CHECK(r.text.rfind("talkd: ", 0) == 0);
    REQUIRE_FALSE(r.text.empty());
    CHECK(r.text.back() == '\n');
    CHECK(r.text.find('\n') == r.text.size() - 1);
}

bool contains(const std::string& s, std::string_view what) {
    return s.find(what) != std::string::npos;
}

}  // namespace

TEST_CASE("options: -p is required", "[options]") {
    auto p = parse({});
    check_usage_error(p.result);
    CHECK(contains(p.result.text, "-p"));

    p = parse({"-v", "--backend=poll"});
    check_usage_error(p.result);
    CHECK(contains(p.result.text, "-p"));
}

TEST_CASE("options: ports", "[options]") {
    SECTION("0 picks a free port") {
        auto p = parse({"-p", "0"});
        CHECK(p.result.action == parse_result::run);
        CHECK(p.options.port == 0);
    }
    SECTION("ordinary forms") {
        auto p = parse({"-p", "4000"});
        CHECK(p.result.action == parse_result::run);
        CHECK(p.options.port == 4000);
        CHECK(p.result.text.empty());
        p = parse({"-p65535"});
        CHECK(p.result.action == parse_result::run);
        CHECK(p.options.port == 65535);
        p = parse({"--port", "1"});
        CHECK(p.options.port == 1);
        p = parse({"--port=2"});
        CHECK(p.options.port == 2);
    }
    SECTION("out of range or not a number") {
        for (const char* bad : {"65536", "abc", "-1", "", "12abc", " 80", "99999999999"}) {
            CAPTURE(bad);
            auto p = parse({"-p", bad});
            check_usage_error(p.result);
            CHECK(contains(p.result.text, "port"));
        }
    }
    SECTION("-p without a value") {
        auto p = parse({"-p"});
        check_usage_error(p.result);
        CHECK(contains(p.result.text, "-p"));
        p = parse({"--port"});
        check_usage_error(p.result);
        CHECK(contains(p.result.text, "--port"));
    }
}

TEST_CASE("options: defaults", "[options]") {
    auto p = parse({"-p", "7000"});
    REQUIRE(p.result.action == parse_result::run);
    CHECK(p.options.backend == default_backend);
    CHECK(p.options.service == "chat");
    CHECK(p.options.bind.empty());
    CHECK(p.options.verbose == 0);
    CHECK(p.options.limits.max_line == limits{}.max_line);
    CHECK(p.options.limits.max_queue == limits{}.max_queue);
    CHECK(p.options.max_clients == 0);
}

TEST_CASE("options: --backend", "[options]") {
    SECTION("a backend this build has") {
        auto p = parse({"-p", "1", "--backend=poll"});
        CHECK(p.result.action == parse_result::run);
        CHECK(p.options.backend == "poll");
        p = parse({"--backend", "select", "-p", "1"});
        CHECK(p.result.action == parse_result::run);
        CHECK(p.options.backend == "select");
    }
    SECTION("an unknown one lists those available") {
        auto p = parse({"-p", "1", "--backend=bogus"});
        check_usage_error(p.result);
        CHECK(contains(p.result.text, "bogus"));
        CHECK(contains(p.result.text, available_backends()));
        CHECK(contains(p.result.text, "select"));
        CHECK(contains(p.result.text, "poll"));
    }
}

TEST_CASE("options: -h and -V", "[options]") {
    for (const char* flag : {"-h", "--help"}) {
        CAPTURE(flag);
        auto p = parse({flag});
        CHECK(p.result.action == parse_result::exit_ok);
        CHECK(p.result.text.rfind("usage:", 0) == 0);
        CHECK(contains(p.result.text, "-p"));
        CHECK(p.result.text.back() == '\n');
    }
    for (const char* flag : {"-V", "--version"}) {
        CAPTURE(flag);
        auto p = parse({flag});
        CHECK(p.result.action == parse_result::exit_ok);
        CHECK(p.result.text.rfind("talkd ", 0) == 0);
        CHECK(contains(p.result.text, version));
        CHECK(contains(p.result.text, available_backends()));
    }
    // Help wins over a missing port, and over what follows.
    auto p = parse({"-p", "1", "-h", "--bogus"});
    CHECK(p.result.action == parse_result::exit_ok);
}

TEST_CASE("options: unknown options and extra arguments", "[options]") {
    SECTION("unknown long option") {
        auto p = parse({"-p", "1", "--bogus"});
        check_usage_error(p.result);
        CHECK(contains(p.result.text, "--bogus"));
    }
    SECTION("unknown short option") {
        auto p = parse({"-p", "1", "-x"});
        check_usage_error(p.result);
        CHECK(contains(p.result.text, "-x"));
    }
    SECTION("extra argument") {
        auto p = parse({"-p", "1", "extra"});
        check_usage_error(p.result);
        CHECK(contains(p.result.text, "extra"));
        p = parse({"extra", "-p", "1"});
        check_usage_error(p.result);
        CHECK(contains(p.result.text, "extra"));
    }
    SECTION("a long option that takes no value given one") {
        auto p = parse({"-p", "1", "--verbose=2"});
        check_usage_error(p.result);
    }
}

TEST_CASE("options: -v counts", "[options]") {
    CHECK(parse({"-p", "1", "-vvv"}).options.verbose == 3);
    CHECK(parse({"-p", "1", "-v", "--verbose"}).options.verbose == 2);
    CHECK(parse({"-vp", "1"}).options.verbose == 1);
}

TEST_CASE("options: sizes, service, bind, max-clients", "[options]") {
    auto p = parse({"-p", "1", "--max-line", "8K", "--max-queue", "1M"});
    REQUIRE(p.result.action == parse_result::run);
    CHECK(p.options.limits.max_line == 8192);
    CHECK(p.options.limits.max_queue == 1048576);

    p = parse({"-p", "1", "--max-line=100"});
    CHECK(p.options.limits.max_line == 100);

    for (const char* bad : {"0", "abc", "4X", ""}) {
        CAPTURE(bad);
        p = parse({"-p", "1", "--max-line", bad});
        check_usage_error(p.result);
        CHECK(contains(p.result.text, "--max-line"));
        p = parse({"-p", "1", "--max-queue", bad});
        check_usage_error(p.result);
        CHECK(contains(p.result.text, "--max-queue"));
    }

    p = parse({"-p", "1", "--service", "echo"});
    CHECK(p.options.service == "echo");
    p = parse({"-p", "1", "--service=reverse"});
    CHECK(p.options.service == "reverse");
    p = parse({"-p", "1", "--service", "ftp"});
    check_usage_error(p.result);
    CHECK(contains(p.result.text, "ftp"));

    p = parse({"-p", "1", "-b", "::1"});
    CHECK(p.options.bind == "::1");
    p = parse({"-p", "1", "--bind=127.0.0.1"});
    CHECK(p.options.bind == "127.0.0.1");

    p = parse({"-p", "1", "--max-clients", "10"});
    CHECK(p.options.max_clients == 10);
    for (const char* bad : {"0", "-3", "ten"}) {
        CAPTURE(bad);
        p = parse({"-p", "1", "--max-clients", bad});
        check_usage_error(p.result);
    }
}

TEST_CASE("options: parsing twice in a row starts afresh", "[options]") {
    auto p = parse({"-p", "1", "--bogus"});
    check_usage_error(p.result);
    p = parse({"-p", "2", "-v"});
    CHECK(p.result.action == parse_result::run);
    CHECK(p.options.port == 2);
    CHECK(p.options.verbose == 1);
    p = parse({"-p", "3"});
    CHECK(p.result.action == parse_result::run);
    CHECK(p.options.verbose == 0);
}

TEST_CASE("parse_size", "[options]") {
    CHECK(parse_size("4096") == std::size_t{4096});
    CHECK(parse_size("1") == std::size_t{1});
    CHECK(parse_size("4K") == std::size_t{4096});
    CHECK(parse_size("4k") == std::size_t{4096});
    CHECK(parse_size("64K") == std::size_t{65536});
    CHECK(parse_size("1M") == std::size_t{1} << 20);
    CHECK(parse_size("2MiB") == std::size_t{2} << 20);
    CHECK(parse_size("1G") == std::size_t{1} << 30);
    CHECK(parse_size("3KB") == std::size_t{3072});

    for (const char* bad : {"0", "0K", "abc", "4X", "", "K", "-1", "4 K", " 4", "4KiBs", "4Ki",
                            "1.5M", "99999999999999999999", "18446744073709551615K"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_size(bad).has_value());
    }
}
