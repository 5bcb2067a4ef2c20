# scripts/bench.gp: the plots of scripts/bench, which runs it as
#
#   gnuplot -e "dir='RESULTS-DIR'; data='DATA-DIR'; fanmodels='select poll epoll ...'; \
#               idlemodels='...'; ratelabel='20k'; subtitle='...'; do_fan=1; do_lat=1; do_idle=1; \
#               fan_ymin=...; fan_ymax=...; lat_ymin=...; lat_ymax=..." scripts/bench.gp
#
# Reads, in DATA-DIR:
#   fanout.dat   a header line (point, then one column per model of fanmodels), then a row per
#                (P,N): median deliveries/s, saturated; NaN where not measured
#   latency.dat  the same layout: median p99 latency in ms at the fixed rate
#   idle.dat     one block per model of idlemodels (blocks apart by two blank lines), rows:
#                K (idle descriptors), median RTT p50 in us, median server CPU us per request
# Writes fanout.png, latency.png and idle.png into RESULTS-DIR, each if its do_ variable is 1.

if (strstrt(GPVAL_TERMINALS, " pngcairo ") > 0) {
    set terminal pngcairo enhanced size 1100,650 font "sans,11"
} else {
    set terminal png size 1100,650
}

color(m) = m eq "select" ? "#e69f00" : m eq "poll" ? "#56b4e9" : m eq "epoll" ? "#009e73" : \
           m eq "threads" ? "#cc79a7" : m eq "redis" ? "#d55e00" : "#777777"

set datafile missing "NaN"
set key autotitle columnheader   # the .dat files start with a header line
set key outside right top vertical   # clear of the bars
set grid ytics mytics
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9

nfan = words(fanmodels)
set xlabel "senders x receivers (P x N)"

# ---- fan-out: deliveries/s per model, saturated ----
if (do_fan) {
    set output dir."/fanout.png"
    set title "Fan-out, saturated: deliveries/s (median, log scale; higher is better)\n{/*0.8 ".subtitle."}"
    set ylabel "deliveries/s"
    set logscale y
    set format y "%.0s%c"
    set yrange [fan_ymin:fan_ymax]
    plot for [i=1:nfan] data."/fanout.dat" using i+1:xtic(1) title word(fanmodels, i) lc rgb color(word(fanmodels, i))
}

# ---- latency at the fixed rate: p99 per model ----
if (do_lat) {
    set output dir."/latency.png"
    set title "Latency at ".ratelabel." deliveries/s: p99 in ms (median, log scale; lower is better)\n{/*0.8 ".subtitle."}"
    set ylabel "p99 latency (ms)"
    set format y "%g"
    set yrange [lat_ymin:lat_ymax]
    plot for [i=1:nfan] data."/latency.dat" using i+1:xtic(1) title word(fanmodels, i) lc rgb color(word(fanmodels, i))
}

# ---- idle scaling: one echo connection beside K idle ones ----
if (do_idle) {
    unset logscale y
    set key autotitle   # idle.dat has no header line
    set autoscale y
    set style data linespoints
    set output dir."/idle.png"
    set multiplot layout 1,2 title "Idle scaling: one echo connection beside K idle ones (medians)\n{/*0.8 ".subtitle."}"
    nidle = words(idlemodels)
    set key inside top left
    set xlabel "idle connections K"
    set format x "%g"
    set format y "%g"
    set title "echo round trip, p50 (us)"
    set ylabel "RTT p50 (us)"
    set yrange [0:*]
    plot for [i=1:nidle] data."/idle.dat" index (i-1) using 1:2 title word(idlemodels, i) \
         lw 2 pt 7 lc rgb color(word(idlemodels, i))
    set title "server CPU per request, the wake-up cost (us, log)"
    set ylabel "server CPU us per request"
    set logscale y
    set autoscale y
    plot for [i=1:nidle] data."/idle.dat" index (i-1) using 1:($3 > 0 ? $3 : NaN) title word(idlemodels, i) \
         lw 2 pt 7 lc rgb color(word(idlemodels, i))
    unset multiplot
}
