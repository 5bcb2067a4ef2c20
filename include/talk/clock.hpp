// The one clock of talk: monotonic, for timers, deadlines and rates.
#pragma once

#include <chrono>

namespace talk {
using clock = std::chrono::steady_clock;
}
