#include "talk/server.hpp"

#include <sysexits.h>

#include <csignal>
#include <cstdio>
#include <new>
#include <system_error>

#include "event_server.hpp"
#include "talk/backend/backends.hpp"

namespace talk {

const char* signal_name(int sig) {
    switch (sig) {
        case SIGINT: return "SIGINT";
        case SIGTERM: return "SIGTERM";
        default: return "signal";
    }
}

int run_server(const server_options& opt) {
    if (opt.backend == "threads") return run_threads_server(opt);
    int status = EX_USAGE;
    try {
        // The one place where a backend name becomes a type; every backend this
        // platform has is instantiated here, and only the chosen one runs.
        with_backend(opt.backend, [&](auto tag) {
            using B = typename decltype(tag)::type;
            auto srv = std::make_unique<event_server<B>>(opt);  // large: keep it off the stack
            status = srv->run();
        });
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "talkd: %s\n", e.what());
        status = EX_OSERR;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "talkd: out of memory\n");
        status = EX_OSERR;
    }
    return status;
}

}  // namespace talk
