#include "talk/signals.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

namespace talk::signals {

namespace {

volatile std::sig_atomic_t g_received = 0;
int g_pipe[2] = {-1, -1};

extern "C" void on_signal(int sig) {
    if (g_received != 0) {  // the second one: stop now, as if no handler were installed
        std::signal(sig, SIG_DFL);
        std::raise(sig);
        return;
    }
    int saved = errno;
    g_received = sig;
    char byte = 0;
    [[maybe_unused]] ssize_t n = ::write(g_pipe[1], &byte, 1);  // full pipe: already woken
    errno = saved;
}

}  // namespace

bool install(std::string& error) {
    if (::pipe2(g_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        error = std::string("pipe: ") + std::strerror(errno);
        return false;
    }
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    ::sigaction(SIGPIPE, &ign, nullptr);
    ::sigaction(SIGTTIN, &ign, nullptr);
    ::sigaction(SIGTTOU, &ign, nullptr);
    return true;
}

int wake_fd() { return g_pipe[0]; }

int take() {
    char buf[64];
    while (::read(g_pipe[0], buf, sizeof buf) > 0) {
    }
    return g_received;
}

}  // namespace talk::signals
