// talkd: the talk server. See talkd(1).
#include <sysexits.h>

#include <cstdio>

#include "talk/console.hpp"
#include "talk/options.hpp"
#include "talk/server.hpp"

int main(int argc, char** argv) {
    talk::ensure_std_fds();
    talk::server_options opt;
    talk::parse_result parsed = talk::parse_talkd_args(argc, argv, opt);
    switch (parsed.action) {
        case talk::parse_result::exit_ok:
            std::fputs(parsed.text.c_str(), stdout);
            return 0;
        case talk::parse_result::usage_error:
            std::fputs(parsed.text.c_str(), stderr);
            return EX_USAGE;
        case talk::parse_result::run:
            break;
    }
    return talk::run_server(opt);
}
