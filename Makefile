# lua-sigmamind: build the C core, run the specs, the demo and the sandbox.
LUA_VERSION ?= 5.4
LUA         ?= lua$(LUA_VERSION)
LUA_INCDIR  ?= /usr/include/lua$(LUA_VERSION)
CURL_CFLAGS ?= $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS   ?= $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
CRYPTO_LIBS ?= $(shell pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto)
CC          ?= cc
OPT         ?= -O2 -g
WARN = -Wall -Wextra -pedantic -Wshadow -Wcast-qual -Wwrite-strings -Wmissing-prototypes \
       -Wstrict-prototypes -Wpointer-arith -Wundef -Wdeclaration-after-statement
ifeq ($(CI),true)
WARN += -Werror
endif
CFLAGS  ?= $(OPT)
ALL_CFLAGS = -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden $(WARN) \
             -I$(LUA_INCDIR) $(CURL_CFLAGS) $(CFLAGS)
LDFLAGS ?=
BUILD   = build
CORE    = $(BUILD)/sigmamind/core.so
SRCS    = $(wildcard src/*.c)
OBJS    = $(SRCS:src/%.c=$(BUILD)/obj/%.o)
HDRS    = $(wildcard src/*.h)

export LUA_PATH  := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;
export LUA_CPATH := $(CURDIR)/$(BUILD)/?.so;;
BUSTED = $(LUA) /usr/bin/busted

.PHONY: all deps test demo sandbox bench clean
all: $(CORE)

deps:
	@sh tools/deps.sh

$(BUILD)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(CORE): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS) -o $@ $(OBJS) $(CURL_LIBS) $(CRYPTO_LIBS)

# SPEC=spec/foo_spec.lua runs one file
SPEC ?= spec
test: deps
	@$(MAKE) --no-print-directory all
	$(BUSTED) --lpath='' $(BUSTED_FLAGS) $(SPEC)

demo: deps
	@$(MAKE) --no-print-directory all
	@sh tools/demo.sh

sandbox: deps
	bin/sigmamind-sandbox $(SANDBOX_ARGS)

# BENCH_SCALE=0.05 for a smoke run
bench: deps
	@sh tools/deps.sh wrk valgrind python3-requests openssl lua5.2 lua-http lua-cqueues lua-curl lua-sec
	@$(MAKE) --no-print-directory all
	@sh bench/run.sh

clean:
	rm -rf $(BUILD)

# ---- reliability: valgrind, sanitizers, fuzzing, static analysis ---------------------------------
# make check-mem   the suite under valgrind (the lua5.4 process only; the sandbox and other children
#                  run natively)
# make asan        the suite against an ASan+UBSan build of the module (build/asan/)
# make fuzz        each libFuzzer harness in fuzz/ for FUZZ_SECONDS (clang; build/fuzz/); findings
#                  in fuzz/out/
# make lint        cppcheck and clang-tidy on src/, luacheck on all Lua
VALGRIND       ?= valgrind
VALGRIND_FLAGS ?= --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 --trace-children=no \
                  --num-callers=30 --suppressions=$(CURDIR)/tools/valgrind.supp

ASAN_BUILD = $(BUILD)/asan
ASAN_CORE  = $(ASAN_BUILD)/sigmamind/core.so
ASAN_OBJS  = $(SRCS:src/%.c=$(ASAN_BUILD)/obj/%.o)
SAN_FLAGS  = -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# lua5.4 is not instrumented: the ASan runtime goes into it through a wrapper first on PATH that
# runs it with `ld.so --preload` (the specs' own lua5.4 children, the CLI, get it too). Not
# LD_PRELOAD: every process the specs start (nginx, sh, mktemp, cc) would inherit it and
# LeakSanitizer would report their leaks.
# verify_asan_link_order=0: the one uninstrumented program that loads the module itself
# (spec/host_spec.lua's C host) gets the runtime late, through core.so, so it has no heap checks.
# include/ and lib/ next to the wrapper: luarocks (spec/rockspec_spec.lua) looks for Lua's headers.
ASAN_WRAP  = $(ASAN_BUILD)/bin/$(LUA)
ASAN_ENV   = PATH="$(CURDIR)/$(ASAN_BUILD)/bin:$$PATH" \
             ASAN_OPTIONS=detect_leaks=1:exitcode=23:detect_odr_violation=0:verify_asan_link_order=0 \
             LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp:print_suppressions=0 \
             UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD    = $(BUILD)/fuzz
FUZZ_NAMES    = $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_BINS     = $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_OBJS     = $(SRCS:src/%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_CFLAGS   = -std=c99 -D_POSIX_C_SOURCE=200809L -g -O1 $(SAN_FLAGS) -Isrc -I$(LUA_INCDIR) $(CURL_CFLAGS) \
                -DSM_LUA_DIR='"$(CURDIR)/lua"'
LUA_LIB      ?= -llua$(LUA_VERSION)

LUACHECK   ?= luacheck
CLANG_TIDY ?= clang-tidy
CPPCHECK   ?= cppcheck
LUA_LINT    = lua bin/sigmamind spec sandbox/lua $(wildcard bench)
# variableScope: the house style declares at the top of a block (-Wdeclaration-after-statement);
# toomanyconfigs: cppcheck's notice that it sampled the #ifdef combinations of the system headers
CPPCHECK_FLAGS = --enable=warning,style,performance,portability --error-exitcode=1 --inline-suppr --std=c99 \
                 --quiet --suppress=missingIncludeSystem --suppress=variableScope --suppress=toomanyconfigs

.PHONY: check-mem asan fuzz fuzz-build lint
check-mem: deps
	@sh tools/deps.sh valgrind
	@$(MAKE) --no-print-directory all
	SIGMAMIND_SLOW=1 $(VALGRIND) $(VALGRIND_FLAGS) $(BUSTED) --lpath='' $(BUSTED_FLAGS) $(SPEC)

$(ASAN_BUILD)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O1 -g $(SAN_FLAGS) -c $< -o $@

$(ASAN_CORE): $(ASAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared $(SAN_FLAGS) $(LDFLAGS) -o $@ $(ASAN_OBJS) $(CURL_LIBS) $(CRYPTO_LIBS)

$(ASAN_WRAP):
	@sh tools/asan-wrap.sh $@ $(LUA) $(CC)

asan: deps
	@sh tools/deps.sh binutils
	@$(MAKE) --no-print-directory $(ASAN_CORE) $(ASAN_WRAP)
	LUA_CPATH='$(CURDIR)/$(ASAN_BUILD)/?.so;;' SIGMAMIND_SLOW=1 $(ASAN_ENV) \
	  $(ASAN_WRAP) /usr/bin/busted --lpath='' $(BUSTED_FLAGS) $(SPEC)

$(FUZZ_BUILD)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h $(FUZZ_OBJS) $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(LUA_LIB) $(CURL_LIBS) $(CRYPTO_LIBS) -lm

fuzz-build:
	@sh tools/deps.sh clang libclang-rt-14-dev
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

.SECONDARY: $(FUZZ_OBJS) $(ASAN_OBJS)

fuzz: fuzz-build
	@sh tools/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_NAMES)

lint: deps
	@sh tools/deps.sh cppcheck clang-tidy lua-check
	$(CPPCHECK) $(CPPCHECK_FLAGS) -Isrc -I$(LUA_INCDIR) src
	$(CLANG_TIDY) --quiet $(SRCS) -- -std=c99 -D_POSIX_C_SOURCE=200809L -include tools/lint-noreturn.h -Isrc \
	  -I$(LUA_INCDIR) $(CURL_CFLAGS)
	$(LUACHECK) --no-color --formatter plain $(LUA_LINT)

# ---- LuaJIT / OpenResty: the same sources against LuaJIT 2.1's headers (src/compat.h) -----------
# make LUA=luajit   (or make luajit) builds build/luajit/sigmamind/core.so for nginx's Lua module;
# it links libcurl like the 5.4 build, but inside nginx only the cosocket transport
# (lua/sigmamind/ngx.lua) is used.
LUAJIT_INCDIR ?= /usr/include/luajit-2.1
LUAJIT_BUILD   = $(BUILD)/luajit
LUAJIT_CORE    = $(LUAJIT_BUILD)/sigmamind/core.so
LUAJIT_OBJS    = $(SRCS:src/%.c=$(LUAJIT_BUILD)/obj/%.o)
LUAJIT_CFLAGS  = $(subst -I$(LUA_INCDIR),-I$(LUAJIT_INCDIR),$(ALL_CFLAGS))

.PHONY: luajit
luajit: $(LUAJIT_CORE)

$(LUAJIT_BUILD)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(LUAJIT_CFLAGS) -c $< -o $@

$(LUAJIT_CORE): $(LUAJIT_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS) -o $@ $(LUAJIT_OBJS) $(CURL_LIBS) $(CRYPTO_LIBS)

ifeq ($(LUA),luajit)
all: $(LUAJIT_CORE)
endif
# the OpenResty specs load it into a real nginx
test: $(LUAJIT_CORE)

# examples/host: the C host-loop example (spec/host_spec.lua builds and runs it)
.PHONY: host
host: all
	$(MAKE) -C examples/host

# ---- API reference: LDoc from the doc comments of lua/sigmamind/ (config.ld) ---------------------
# make docs   writes doc/api/index.html; fails when LDoc prints anything but its two progress lines,
#             since each other line is a warning (a broken @{reference}, a doc comment it cannot
#             attach to anything)
LDOC ?= lua5.1 /usr/bin/ldoc
.PHONY: docs
docs: deps
	@sh tools/deps.sh lua-ldoc lua-markdown
	@rm -rf doc/api
	@out=$$($(LDOC) . 2>&1); rc=$$?; printf '%s\n' "$$out"; \
	if [ $$rc -ne 0 ] || printf '%s\n' "$$out" | grep -v -e '^reading configuration from ' -e '^output written to ' | grep -q .; \
	then echo "docs: LDoc failed or warned (above)" >&2; exit 1; fi
	@test -s doc/api/index.html && echo "docs: doc/api/index.html"

# ---- fault soak: tools/soak.lua against a sandbox in chaos mode (10 % of requests faulted) -------
# make soak   SOAK_OPS operations (default 100000; CI: SOAK_OPS=5000) over every endpoint through
#             tasks, then the checks (no crash, typed errors only, no unsafe POST /v1/calls retry,
#             RSS growth < 5 %). Also SOAK_CONCURRENCY, SOAK_RATE, SOAK_SEED, SOAK_SPEED,
#             SOAK_VERBOSE=1.
.PHONY: soak
soak: deps
	@$(MAKE) --no-print-directory all
	$(LUA) tools/soak.lua
