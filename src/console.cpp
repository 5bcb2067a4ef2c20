#include "talk/console.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace talk {

namespace {

// A terminal opened again by name: a file description of our own, non-blocking.
int reopen_terminal(int fd, int access) {
    const char* name = ::ttyname(fd);
    if (!name) return -1;
    return ::open(name, access | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
}

console_fd prepare(int std_fd, int access) {
    console_fd c;
    c.orig_fd = std_fd;
    struct stat st {};
    if (::fstat(std_fd, &st) < 0) return c;
    if (S_ISREG(st.st_mode)) {  // never blocks, never watchable
        c.fd = std_fd;
        return c;
    }
    c.watchable = true;
    if (::isatty(std_fd)) {
        int fd = reopen_terminal(std_fd, access);
        if (fd >= 0) {
            c.fd = fd;
            c.owned = true;
            return c;
        }
    }
    int fl = ::fcntl(std_fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK) && ::fcntl(std_fd, F_SETFL, fl | O_NONBLOCK) == 0)
        c.restore_flags = fl;
    c.fd = std_fd;
    return c;
}

}  // namespace

bool console_input_wanted(std::string& why_not) {
    struct stat st {};
    if (::fstat(0, &st) < 0) {
        why_not = "stdin is closed";
        return false;
    }
    if (S_ISREG(st.st_mode)) {
        why_not = "stdin is a regular file";
        return false;
    }
    if (console_in_background()) {
        why_not = "in the background (until fg)";
        return false;
    }
    return true;
}

bool console_in_background() { return ::isatty(0) && ::tcgetpgrp(0) != ::getpgrp(); }

console_fd open_console_input(std::string& why_not) {
    if (!console_input_wanted(why_not)) return {};
    return prepare(0, O_RDONLY);
}

console_fd open_console_output(int std_fd) { return prepare(std_fd, O_WRONLY); }

void release(console_fd& c) {
    if (c.owned && c.fd >= 0) ::close(c.fd);
    if (c.restore_flags >= 0) ::fcntl(c.orig_fd, F_SETFL, c.restore_flags);
    c = console_fd{};
}

void ensure_std_fds() {
    for (int fd = 0; fd <= 2; ++fd) {
        if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
        int null = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (null >= 0 && null != fd) {
            ::dup2(null, fd);
            ::close(null);
        }
    }
}

}  // namespace talk
