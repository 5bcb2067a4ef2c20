# Fuzzing, included by the top-level Makefile (which defines CXX, CXXFLAGS, WARN,
# BUILD, CORE_SRCS, CORE_OBJS, LDLIBS and the `deps` target).
#
#   make fuzz                  build every target with clang's libFuzzer and run each for
#                              FUZZ_SECONDS (default 60); fails if any found a crash
#   make fuzz-short            the same for 10 s each (what CI runs)
#   make fuzz-run-chat         run one target (framer, command, sanitize, chat)
#   make fuzz-replays          build $(FUZZ_REPLAYS): the targets built with $(CXX) and
#                              CXXFLAGS (SANITIZE= honoured) around a plain main()
#   make fuzz-replay           run each of them over its seed corpus and regressions
#
# The targets live in test/fuzz/fuzz_<target>.cpp; their seeds in test/fuzz/corpus/<target>/
# (read only: new finds go to build/fuzz/corpus/<target>/), inputs that once crashed in
# test/fuzz/regressions/<target>/, crash artifacts in build/fuzz/artifacts/<target>/.
# libFuzzer can be run by hand as well:
#   build/fuzz/fuzz_chat -dict=test/fuzz/chat.dict build/fuzz/corpus/chat test/fuzz/corpus/chat
#   build/fuzz/fuzz_chat build/fuzz/artifacts/chat/crash-...      (reproduce one input)

FUZZ_TARGETS := framer command sanitize chat
FUZZ_CXX     ?= clang++
FUZZ_SECONDS ?= 60
FUZZ_DIR     := build/fuzz
FUZZ_SAN     := address,undefined
# A sanitizer error must end the run, or libFuzzer never sees it.
FUZZ_FLAGS   := -std=c++20 -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=all $(WARN) -Iinclude -MMD -MP
FUZZ_OPTIONS  = -max_total_time=$(FUZZ_SECONDS) -timeout=5 -rss_limit_mb=2048 -print_final_stats=1

FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_RUNS    := $(FUZZ_TARGETS:%=fuzz-run-%)
FUZZ_REPLAYS := $(FUZZ_TARGETS:%=$(BUILD)/test/fuzz-replay-%)

.PHONY: fuzz fuzz-short fuzz-build fuzz-deps fuzz-replays fuzz-replay $(FUZZ_RUNS)
# Objects made by pattern rules only: kept, not deleted as intermediates.
.SECONDARY: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/obj/fuzz_%.o) $(FUZZ_TARGETS:%=$(BUILD)/test/fuzz/fuzz_%.o) \
            $(BUILD)/test/fuzz/replay.o

fuzz-deps:
	@CXX=$(FUZZ_CXX) ./build-aux/deps build clang libclang-rt-14-dev

fuzz-build: $(FUZZ_BINS)

# ---- libFuzzer builds: coverage and sanitizers (checks excepted: FUZZ_CHECKER), in build/fuzz ----

# The core, instrumented for coverage but without libFuzzer's main; an archive, so
# each target links only what it uses. The server (the event loop over sockets) is
# the transport the fuzzers stand in for, and the longest to compile: left out.
FUZZ_CORE := $(filter-out server,$(CORE_SRCS))

$(FUZZ_DIR)/src/%.o: src/%.cpp | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -c $< -o $@

$(FUZZ_DIR)/obj/%.o: test/fuzz/%.cpp | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -c $< -o $@

$(FUZZ_DIR)/libtalk.a: $(FUZZ_CORE:%=$(FUZZ_DIR)/src/%.o)
	@rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/fuzz_%.o $(FUZZ_DIR)/libtalk.a
	$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer,$(FUZZ_SAN) $^ $(LDLIBS) -o $@

# ---- runs ----

# One target for FUZZ_SECONDS. A crash does not stop the other runs (make -j runs
# two at once); `make fuzz` looks at every outcome afterwards.
$(FUZZ_RUNS): fuzz-run-%: $(FUZZ_DIR)/fuzz_%
	@mkdir -p $(FUZZ_DIR)/corpus/$* $(FUZZ_DIR)/artifacts/$* $(FUZZ_DIR)/logs
	@touch $(FUZZ_DIR)/logs/$*.start
	@echo "fuzz: $* for $(FUZZ_SECONDS) s (log in $(FUZZ_DIR)/logs/$*.log)"
	@rc=0; UBSAN_OPTIONS=print_stacktrace=1 ./$< $(FUZZ_OPTIONS) \
	    $(if $(wildcard test/fuzz/$*.dict),-dict=test/fuzz/$*.dict) \
	    -artifact_prefix=$(FUZZ_DIR)/artifacts/$*/ \
	    $(FUZZ_DIR)/corpus/$* test/fuzz/corpus/$* $(wildcard test/fuzz/regressions/$*) \
	    >$(FUZZ_DIR)/logs/$*.log 2>&1 || rc=$$?; \
	echo $$rc >$(FUZZ_DIR)/logs/$*.rc; \
	if [ $$rc -ne 0 ]; then echo "fuzz: $* FAILED (status $$rc); the end of its log:"; \
	    tail -n 60 $(FUZZ_DIR)/logs/$*.log | sed 's/^/  | /'; fi; \
	awk -v t=$* '/^#[0-9]+[ \t]+DONE / { done = $$0 } \
	    /^stat::number_of_executed_units:/ { runs = $$2 } \
	    /^stat::average_exec_per_sec:/ { eps = $$2 } \
	    /^stat::peak_rss_mb:/ { rss = $$2 } \
	    END { if (done != "") { sub(/^#[0-9]+[ \t]+DONE +/, "", done); \
	                            printf "fuzz: %s: %s runs, %s exec/s, %s MB; %s\n", t, runs, eps, rss, done } }' \
	    $(FUZZ_DIR)/logs/$*.log

# Crash, leak, timeout and out-of-memory artifacts written by this round's runs.
fuzz: $(FUZZ_RUNS)
	@fail=0; \
	for t in $(FUZZ_TARGETS); do \
	    for f in $$(find $(FUZZ_DIR)/artifacts/$$t -type f \( -name 'crash-*' -o -name 'leak-*' \
	                -o -name 'timeout-*' -o -name 'oom-*' \) -newer $(FUZZ_DIR)/logs/$$t.start); do \
	        echo "fuzz: $$t: found $$f"; \
	        echo "      reproduce: $(FUZZ_DIR)/fuzz_$$t $$f"; \
	        echo "      keep it:   cp $$f test/fuzz/regressions/$$t/"; \
	        fail=1; \
	    done; \
	    rc=$$(cat $(FUZZ_DIR)/logs/$$t.rc 2>/dev/null || echo missing); \
	    [ "$$rc" = 0 ] || { echo "fuzz: $$t: exited with status $$rc (see $(FUZZ_DIR)/logs/$$t.log)"; fail=1; }; \
	done; \
	if [ $$fail -ne 0 ]; then echo "fuzz: FAILED: copy each input above into test/fuzz/regressions/<target>/"; exit 1; fi; \
	echo "fuzz: no crash in $(FUZZ_SECONDS) s of each of: $(FUZZ_TARGETS)"

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

# ---- replay drivers: the same targets with $(CXX), for `make test` ----

$(BUILD)/test/fuzz/%.o: test/fuzz/%.cpp | deps
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/test/fuzz-replay-%: $(BUILD)/test/fuzz/fuzz_%.o $(BUILD)/test/fuzz/replay.o $(CORE_OBJS)
	$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

fuzz-replays: $(FUZZ_REPLAYS)

fuzz-replay: $(FUZZ_REPLAYS)
	@for t in $(FUZZ_TARGETS); do \
	    echo "== fuzz-replay-$$t"; \
	    $(BUILD)/test/fuzz-replay-$$t test/fuzz/corpus/$$t test/fuzz/regressions/$$t || exit 1; \
	done
