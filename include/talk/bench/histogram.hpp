// A latency histogram with logarithmic buckets, for talkbench.
//
// Every power of two from 1024 ns (about 1 µs) to 2^34 ns (about 17 s) is cut into 64
// equal buckets, so a bucket is at most 1/64 (1.6 %) of its value wide and a
// percentile read back from the midpoint is off by at most 0.8 %. Below 1 µs there is
// one bucket, above 17 s another; the exact minimum and maximum are kept beside them,
// and a percentile is clamped to them, so p100 is the true maximum.
//
// add() is a count-leading-zeros, a shift and an increment: it is on the per-delivery
// path and must cost next to nothing. 1,538 counters of 8 bytes fit in L1/L2.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace talk::bench {

class histogram {
public:
    static constexpr int sub_bits = 6;   // 64 buckets per power of two
    static constexpr int min_exp = 10;   // 2^10 ns: below it, one bucket
    static constexpr int max_exp = 34;   // 2^34 ns: from it on, one bucket
    static constexpr std::size_t buckets = 2 + (std::size_t(max_exp - min_exp) << sub_bits);

    void add(std::uint64_t ns) noexcept {
        ++counts_[index(ns)];
        ++count_;
        if (ns > max_) max_ = ns;
        if (ns < min_) min_ = ns;
    }

    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t max() const noexcept { return count_ ? max_ : 0; }
    std::uint64_t min() const noexcept { return count_ ? min_ : 0; }

    // The value at percentile p (0 < p <= 100) in ns, 0 when empty: the midpoint of
    // the bucket that holds the ceil(p% * count)-th smallest value.
    std::uint64_t percentile(double p) const noexcept;

    static std::size_t index(std::uint64_t v) noexcept {
        if (v < (std::uint64_t{1} << min_exp)) return 0;
        int e = 63 - __builtin_clzll(v);
        if (e >= max_exp) return buckets - 1;
        std::size_t sub = (v >> (e - sub_bits)) & ((1u << sub_bits) - 1);
        return 1 + (std::size_t(e - min_exp) << sub_bits) + sub;
    }

    // Lowest value and width of bucket i (not the first or last).
    static std::uint64_t lower(std::size_t i) noexcept {
        std::size_t k = i - 1;
        int e = int(k >> sub_bits) + min_exp;
        std::uint64_t sub = k & ((1u << sub_bits) - 1);
        return (std::uint64_t{1} << e) + (sub << (e - sub_bits));
    }
    static std::uint64_t width(std::size_t i) noexcept {
        return std::uint64_t{1} << (int((i - 1) >> sub_bits) + min_exp - sub_bits);
    }

private:
    std::array<std::uint64_t, buckets> counts_{};
    std::uint64_t count_ = 0;
    std::uint64_t max_ = 0;
    std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
};

}  // namespace talk::bench
