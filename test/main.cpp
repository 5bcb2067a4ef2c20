// The one Catch2 main for every test binary, compiled once.
//
// Besides Catch2's own report, it prints one machine-readable line at the end,
//     tally: <passed> <failed>
// counting test cases; test/run adds the tallies of every suite into the final
// "N passed, N failed" line.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

namespace {

std::size_t g_passed = 0, g_failed = 0;

struct tally_listener : Catch::TestEventListenerBase {
    using TestEventListenerBase::TestEventListenerBase;
    void testCaseEnded(const Catch::TestCaseStats& stats) override {
        if (stats.totals.assertions.failed > 0 || stats.totals.testCases.failed > 0)
            ++g_failed;
        else
            ++g_passed;
    }
};

}  // namespace

CATCH_REGISTER_LISTENER(tally_listener)

int main(int argc, char** argv) {
    int rc = Catch::Session().run(argc, argv);
    std::printf("tally: %zu %zu\n", g_passed, g_failed);
    return rc;
}
