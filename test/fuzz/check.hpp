// What every fuzz target shares: check(), which reports a broken invariant and
// aborts, so that libFuzzer saves the input as a crash and the replay driver
// (replay.cpp) dies on it too.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

// Code that only checks: not instrumented for coverage, so that libFuzzer is
// guided by the code under test, and spends no time tracing the checks' loops.
#if defined(__clang__)
#define FUZZ_CHECKER __attribute__((no_sanitize("coverage")))
#else
#define FUZZ_CHECKER
#endif

namespace fuzz {

// Prints a few bytes of `detail` in C escapes, for the report of a failed check.
FUZZ_CHECKER inline void print_escaped(std::string_view detail) {
    constexpr std::size_t max_shown = 200;
    std::fputs("  detail: \"", stderr);
    for (std::size_t i = 0; i < detail.size() && i < max_shown; ++i) {
        unsigned char c = static_cast<unsigned char>(detail[i]);
        if (c == '\\' || c == '"')
            std::fprintf(stderr, "\\%c", c);
        else if (c >= 0x20 && c < 0x7F)
            std::fputc(c, stderr);
        else
            std::fprintf(stderr, "\\x%02X", c);
    }
    std::fprintf(stderr, "\"%s (%zu bytes)\n", detail.size() > max_shown ? "..." : "", detail.size());
}

FUZZ_CHECKER inline void check(bool ok, const char* what) {
    if (ok) [[likely]]
        return;
    std::fprintf(stderr, "fuzz check failed: %s\n", what);
    std::abort();
}

FUZZ_CHECKER inline void check(bool ok, const char* what, std::string_view detail) {
    if (ok) [[likely]]
        return;
    std::fprintf(stderr, "fuzz check failed: %s\n", what);
    print_escaped(detail);
    std::abort();
}

}  // namespace fuzz
