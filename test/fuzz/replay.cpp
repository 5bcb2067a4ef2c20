// Runs a fuzz target's LLVMFuzzerTestOneInput over saved inputs, without libFuzzer,
// so that the targets also build with g++ (and SANITIZE=...) and run in `make test`:
//
//     build/test/fuzz-replay-chat test/fuzz/corpus/chat test/fuzz/regressions/chat
//
// Each argument is a directory (every regular file in it whose name does not start
// with '.' is an input, in name order) or a file. A failed check aborts the process,
// as it does under libFuzzer. The last line is "tally: P F" like test/main.cpp's:
// P inputs run, F arguments that could not be read.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
// Set when the program is built with a sanitizer: called before it reports and exits.
extern "C" void __sanitizer_set_death_callback(void (*)(void)) __attribute__((weak));

namespace fs = std::filesystem;

namespace {

// The input being run, named if the process dies on it.
char current[4096];

void say_which() {
    const char before[] = "replay: died on ";
    ssize_t ignored = ::write(2, before, sizeof before - 1);
    ignored = ::write(2, current, std::strlen(current));
    ignored = ::write(2, "\n", 1);
    (void)ignored;
}

void on_fatal_signal(int sig) {
    say_which();
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}

bool read_file(const fs::path& path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
    // A failed check() aborts. A sanitizer reports the rest itself (its own SIGSEGV
    // handler stays), then calls back; without one, the fatal signals are caught here.
    std::signal(SIGABRT, on_fatal_signal);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(say_which);
    else
        for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL}) std::signal(sig, on_fatal_signal);
    std::size_t passed = 0, failed = 0;
    for (int i = 1; i < argc; ++i) {
        fs::path arg(argv[i]);
        std::error_code ec;
        std::vector<fs::path> inputs;
        if (fs::is_directory(arg, ec)) {
            for (const auto& entry : fs::directory_iterator(arg, ec))
                if (entry.is_regular_file() && entry.path().filename().string().front() != '.')
                    inputs.push_back(entry.path());
            std::sort(inputs.begin(), inputs.end());
        } else if (fs::is_regular_file(arg, ec)) {
            inputs.push_back(arg);
        }
        if (ec || (inputs.empty() && !fs::is_directory(arg, ec))) {
            std::fprintf(stderr, "replay: %s: cannot read\n", argv[i]);
            ++failed;
            continue;
        }
        std::string data;
        for (const fs::path& p : inputs) {
            if (!read_file(p, data)) {
                std::fprintf(stderr, "replay: %s: cannot read\n", p.c_str());
                ++failed;
                continue;
            }
            std::snprintf(current, sizeof current, "%s (%zu bytes)", p.c_str(), data.size());
            LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
            ++passed;
        }
    }
    std::printf("%zu inputs run\n", passed);
    std::printf("tally: %zu %zu\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
