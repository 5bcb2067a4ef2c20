// The three things talkbench measures. Each opens its own connections, runs its own
// event loop, and fills a report.
//
// Returns 0 when the report holds a result (complete, or cut short by the timeout
// or a disconnect: report::ok() tells), or an exit status when the run could not
// start (the reason already written to stderr).
#pragma once

#include "talk/bench/options.hpp"
#include "talk/bench/pool.hpp"
#include "talk/bench/report.hpp"

namespace talk::bench {

int run_fanout(const options& opt, const target& where, report& out);
int run_echo(const options& opt, const target& where, report& out);  // echo and idle

}  // namespace talk::bench
