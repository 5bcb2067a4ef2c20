// The operator's console: talkd's stdin, stdout and stderr, used without blocking.
//
// The loop must never block, and the console is no exception: a terminal paused with
// Ctrl-S, a pipe nobody reads, or a stdin that waits for typing would otherwise stop
// every client. So the console's descriptors are made non-blocking, and that needs care:
//
// - On a terminal, stdin, stdout and stderr usually share one open file description
//   with the shell, and O_NONBLOCK is a property of that description. Setting it would
//   leave the shell non-blocking after talkd exits. A terminal is therefore opened
//   again by name, which gives talkd a description of its own to make non-blocking.
// - A pipe or socket gets O_NONBLOCK directly, and its old flags are put back at exit.
// - A regular file is never watched: it is always "ready" and epoll refuses it (EPERM).
//   Output to it cannot block anyway; as input it is not a person typing, so it is not
//   read. /dev/null is read once, meets EOF, and is dropped like any stdin at EOF.
// - A background job must not read the terminal (SIGTTIN would stop the whole server;
//   ignored, the read fails with EIO), so stdin is not read while talkd is not in the
//   terminal's foreground process group. The server looks again now and then, so
//   `fg` gives the operator the console back.
#pragma once

#include <string>

namespace talk {

struct console_fd {
    int fd = -1;             // the descriptor to read or write; -1: not in use
    bool watchable = false;  // can EAGAIN, so the loop must watch it (not a regular file)
    bool owned = false;      // opened here (a terminal reopened by name): close at the end
    int orig_fd = -1;        // the standard descriptor it stands for
    int restore_flags = -1;  // file status flags to put back at the end, or -1
};

// Whether stdin is worth reading as the operator's console: not when it is closed,
// a regular file, or a terminal this process is in the background of (`why_not`
// then says which).
bool console_input_wanted(std::string& why_not);

// stdin is a terminal whose foreground job is not this process's: wait for `fg`.
bool console_in_background();

// stdin, prepared for non-blocking reads; fd is -1 and `why_not` says why when there
// is nothing to read from.
console_fd open_console_input(std::string& why_not);

// stdout (1) or stderr (2), prepared for non-blocking writes.
console_fd open_console_output(int std_fd);

// Undoes what open_console_* did.
void release(console_fd& c);

// Makes sure descriptors 0, 1 and 2 are open (on /dev/null if need be), so that no
// socket is ever handed out as "stdin" and then read as the console.
void ensure_std_fds();

}  // namespace talk
