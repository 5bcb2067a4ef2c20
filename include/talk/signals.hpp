// Signals as events the loop can wait for (the self-pipe trick).
//
// A signal handler may run between any two instructions of the loop, so it does the
// least that is safe: it records which signal came and writes one byte to a pipe.
// The loop watches the pipe's read end like any socket and does the real work
// (a graceful shutdown) in its own time. SIGPIPE is ignored, so a write to a
// vanished peer is an EPIPE error and not a dead server; SIGTTIN and SIGTTOU are
// ignored, so a server put in the background is not stopped by its terminal.
//
// A second SIGINT or SIGTERM after the first ends the process at once, by the
// default action of that signal: the operator's way out of a shutdown that hangs.
#pragma once

#include <string>

namespace talk::signals {

// Installs the handlers. Returns false with `error` set if the pipe cannot be made.
bool install(std::string& error);

// The pipe's read end, for the loop to watch.
int wake_fd();

// The signal received since the last call (SIGINT or SIGTERM), or 0. Drains the pipe.
int take();

}  // namespace talk::signals
