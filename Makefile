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

.PHONY: all deps test demo sandbox clean
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

clean:
	rm -rf $(BUILD)
