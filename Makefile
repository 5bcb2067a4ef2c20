# talk: talkd, a single-threaded non-blocking chat server, and talk, its blocking client.
#
#   make                 build ./talkd and ./talk (installs missing Debian packages as root)
#   make test            build and run every test; the last line is "N passed, N failed"
#   make test SANITIZE=address,undefined     the same, built with sanitizers
#   make install         PREFIX=/usr/local, DESTDIR honoured; never into /usr
#   make clean

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DESTDIR ?=

CXX      ?= g++
CXXFLAGS ?= -O2 -g
SANITIZE ?=
WERROR   ?=

comma := ,
WARN := -Wall -Wextra -Wpedantic -Wshadow -Wno-missing-field-initializers $(if $(WERROR),-Werror)
override CXXFLAGS += -std=c++20 $(WARN) -Iinclude -MMD -MP
override LDLIBS   += -lfmt -pthread

# Each configuration builds in its own directory. The plain build puts talkd and
# talk at the top; a sanitizer build keeps its binaries in its build directory.
ifeq ($(SANITIZE),)
BUILD := build
BIN   := .
else
BUILD := build/san-$(subst $(comma),-,$(SANITIZE))
BIN   := $(BUILD)
# GCC 12's -Wmaybe-uninitialized misfires under sanitizer instrumentation (in
# <regex> and <functional>), so it stays on for the plain build only.
override CXXFLAGS += -O1 -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all \
                     -Wno-maybe-uninitialized
override LDFLAGS  += -fsanitize=$(SANITIZE)
endif

CORE_SRCS := timer_queue text message out_queue hub command chat services net signals console \
             operator options server threads_server
CORE_OBJS := $(CORE_SRCS:%=$(BUILD)/src/%.o)

UNIT_TESTS := test_timer_queue test_line_framer test_text test_out_queue test_backends test_hub \
              test_options
# End-to-end suites: each test/NAME.cpp that exists is linked into build/test/e2e.
E2E_TESTS  := $(basename $(notdir $(wildcard test/test_e2e.cpp test/test_chat.cpp test/test_scenarios.cpp \
                                              test/test_bench.cpp)))
TEST_HELPERS := helpers

# talkbench, the load generator (issue: benchmarks), once its source exists.
BENCH := $(if $(wildcard src/talkbench.cpp),$(BIN)/talkbench)
BENCH_SRCS := $(basename $(notdir $(wildcard src/bench_*.cpp)))

.PHONY: all deps test-deps test test-tsan soak bench clean install uninstall
all: $(BIN)/talkd $(BIN)/talk $(BENCH)

deps:
	@./build-aux/deps build
test-deps: deps
	@./build-aux/deps test

$(BUILD)/%.o: %.cpp | deps
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BIN)/talkd: $(BUILD)/src/talkd.o $(CORE_OBJS)
	$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BIN)/talk: $(BUILD)/src/talk.o $(BUILD)/src/net.o
	$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BIN)/talkbench: $(BUILD)/src/talkbench.o $(BENCH_SRCS:%=$(BUILD)/src/%.o) $(BUILD)/src/net.o \
                  $(BUILD)/src/timer_queue.o
	$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

# ---- tests ----

# Fuzzing (make fuzz) lives in its own fragment; make test replays its corpora.
-include test/fuzz/fuzz.mk

$(BUILD)/test/%.o: test/%.cpp | test-deps
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/test/unit: $(BUILD)/test/main.o $(UNIT_TESTS:%=$(BUILD)/test/%.o) $(CORE_OBJS)
	$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/test/e2e: $(BUILD)/test/main.o $(E2E_TESTS:%=$(BUILD)/test/%.o) \
                   $(TEST_HELPERS:%=$(BUILD)/test/%.o) $(BUILD)/src/net.o
	$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

test: all $(BUILD)/test/unit $(BUILD)/test/e2e $(FUZZ_REPLAYS) | test-deps
	@TALKD=$(BIN)/talkd TALK=$(BIN)/talk TALKBENCH=$(BIN)/talkbench BUILD=$(BUILD) SANITIZE=$(SANITIZE) \
	  ./test/run

# ThreadSanitizer over what has threads: the talk client and the threads model.
# The test driver stays a plain build; the programs under test are built with TSan.
TSAN := build/san-thread
test-tsan: $(BUILD)/test/e2e | test-deps
	$(MAKE) SANITIZE=thread $(TSAN)/talkd $(TSAN)/talk
	@TALKD=$(TSAN)/talkd TALK=$(TSAN)/talk BUILD=$(BUILD) \
	  TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1" \
	  E2E_ONLY='[threads],*talk*' ./test/run

# The soak: SOAK_SECONDS (default 600) of churn, floods and slow readers against one
# talkd (SOAK_BACKEND, default epoll); flat RSS and descriptors at the end.
SOAK_SECONDS ?= 600
$(BUILD)/test/soak: $(BUILD)/test/main.o $(BUILD)/test/test_soak.o $(BUILD)/test/helpers.o $(BUILD)/src/net.o
	$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

soak: $(BIN)/talkd $(BUILD)/test/soak
	@TALKD=$(BIN)/talkd SOAK_SECONDS=$(SOAK_SECONDS) $(BUILD)/test/soak "[.soak]" -s --durations yes \
	  | tee $(BUILD)/soak.log | grep -v '^tally: '
	@awk '/^tally: /{print $$2 " passed, " $$3 " failed"; exit ($$3 != 0)}' $(BUILD)/soak.log

# The benchmark matrix: the models side by side, Redis pub/sub when installed.
# scripts/bench writes results/<date>/ (CSV, markdown table, plots); see README.
bench: all
	@./build-aux/deps gnuplot-nox
	./scripts/bench $(BENCH_ARGS)

# ---- install ----

install: all
	@case "$(PREFIX)" in /usr|/usr/) echo "refusing PREFIX=/usr: Debian's talk and talkd live there" >&2; exit 1;; esac
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7
	install -m 755 talkd talk talkbench $(DESTDIR)$(BINDIR)/
	install -m 644 man/talkd.1 man/talk.1 man/talkbench.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 man/talk.7 $(DESTDIR)$(MANDIR)/man7/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/talkd $(DESTDIR)$(BINDIR)/talk $(DESTDIR)$(BINDIR)/talkbench
	rm -f $(DESTDIR)$(MANDIR)/man1/talkd.1 $(DESTDIR)$(MANDIR)/man1/talk.1 \
	      $(DESTDIR)$(MANDIR)/man1/talkbench.1 $(DESTDIR)$(MANDIR)/man7/talk.7

clean:
	rm -rf build talkd talk talkbench

-include $(shell find build -name '*.d' 2>/dev/null)
