// talkd's server: sockets, the console and signals around one event loop.
//
// The server is the transport: it moves bytes between descriptors and the hub, and
// decides nothing about what the bytes mean (that is the service's job, in the hub).
// One pass of the loop:
//
//   wait (backend)  ->  dispatch each ready descriptor:
//                         listener: accept a few   client: read once, feed the hub
//                         stdin: operator lines    signal pipe: begin shutdown
//                       timers (linger, shutdown grace)
//                   ->  after the pass:
//                         settle close requests (the service forgets those clients)
//                         write every client that has new output, once
//                         close and free the connections that are done
//                         write the console
//
// A connection is never freed during dispatch: it is marked, forgotten by the loop
// at once, and closed after the pass (see event_loop.hpp for why that is safe).
#pragma once

#include <memory>

#include "talk/options.hpp"

namespace talk {

// Runs talkd as configured; returns the process exit status.
int run_server(const server_options& opt);

// --backend=threads: one blocking thread per client (threads_server.cpp).
int run_threads_server(const server_options& opt);

// "SIGINT", "SIGTERM" (or "signal"), for the console's shutdown line.
const char* signal_name(int sig);

}  // namespace talk
