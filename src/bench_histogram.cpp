#include "talk/bench/histogram.hpp"

#include <algorithm>
#include <cmath>

namespace talk::bench {

std::uint64_t histogram::percentile(double p) const noexcept {
    if (count_ == 0) return 0;
    if (p >= 100) return max_;
    auto rank = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets; ++i) {
        seen += counts_[i];
        if (seen < rank) continue;
        // The first and last buckets have no width worth naming: the exact extremes
        // are the best answer there.
        if (i == 0) return min_;
        if (i == buckets - 1) return max_;
        return std::clamp(lower(i) + width(i) / 2, min_, max_);
    }
    return max_;
}

}  // namespace talk::bench
