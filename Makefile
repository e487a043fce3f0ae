# glidefs build. `make` builds the three programs; `make test` and
# `make demo` (and `make bench`) first install whatever this machine lacks
# (ci/deps.sh).

CC ?= cc
BUILD ?= build
PKGS := liburing libsystemd libprotobuf-c libcurl zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wno-unused-parameter -fno-strict-aliasing \
	-D_GNU_SOURCE -I. -Icommon -I$(BUILD)/proto $(PKG_CFLAGS) -MMD -MP
LDLIBS += $(PKG_LIBS) -lpthread

# SAN=1 builds everything under AddressSanitizer and UBSan into build-san/.
ifeq ($(SAN),1)
BUILD := build-san
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

# TSAN=1 builds everything under ThreadSanitizer into build-tsan/, for the
# tests that race the cache's threads against each other.
ifeq ($(TSAN),1)
BUILD := build-tsan
CFLAGS += -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS += -fsanitize=thread
endif

PROTOS := control worker
PROTO_C := $(PROTOS:%=$(BUILD)/proto/%.pb-c.c)
PROTO_H := $(PROTOS:%=$(BUILD)/proto/%.pb-c.h)

COMMON_SRC := $(wildcard common/*.c common/*/*.c)
SUPERVISOR_SRC := $(wildcard supervisor/*.c)
WORKER_SRC := $(wildcard worker/*.c worker/*/*.c)
GLIDECTL_SRC := $(wildcard glidectl/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
COMMON_OBJ := $(call obj,$(COMMON_SRC)) $(PROTO_C:.c=.o)

# The programs take from it only the objects they use, and (--as-needed)
# only the libraries those need: glidectl, run in loops by scripts, then
# loads no curl, TLS or Kerberos at each start.
COMMON_LIB := $(BUILD)/libcommon.a
PROG_LDFLAGS := -Wl,--as-needed

PROGRAMS := $(BUILD)/glidefsd $(BUILD)/glidefs-worker $(BUILD)/glidectl

.PHONY: all deps test unit-tests store-test test-tools fuzz fuzz-seeds demo bench soak clean \
	install uninstall
.DEFAULT_GOAL := all

all: $(PROGRAMS)

$(BUILD)/proto/%.pb-c.c $(BUILD)/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(@D)
	protoc-c --proto_path=proto --c_out=$(BUILD)/proto $<

# Generated headers must exist before any object that may include them.
$(BUILD)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/proto/%.pb-c.o: $(BUILD)/proto/%.pb-c.c $(PROTO_H)
	$(CC) $(CFLAGS) -Wno-missing-prototypes -c -o $@ $<

$(COMMON_LIB): $(COMMON_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/glidefsd: $(call obj,$(SUPERVISOR_SRC)) $(COMMON_LIB)
	$(CC) $(LDFLAGS) $(PROG_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/glidefs-worker: $(call obj,$(WORKER_SRC)) $(COMMON_LIB)
	$(CC) $(LDFLAGS) $(PROG_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/glidectl: $(call obj,$(GLIDECTL_SRC)) $(COMMON_LIB)
	$(CC) $(LDFLAGS) $(PROG_LDFLAGS) -o $@ $^ $(LDLIBS)

# Host unit tests (cmocka), one binary per tests/unit/test_*.c.
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

# They link the common code and the worker's modules (all but its main).
UNIT_LIB_OBJ := $(COMMON_OBJ) $(filter-out %/worker/main.o,$(call obj,$(WORKER_SRC)))

$(BUILD)/tests/%: tests/unit/%.c $(UNIT_LIB_OBJ) | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iworker $(LDFLAGS) -o $@ $< $(UNIT_LIB_OBJ) $(LDLIBS) -lcmocka

unit-tests: $(UNIT_BIN)

# The store's contract tests: one binary run by tests/store/run.sh against
# each backend (a file:// directory, then S3 on a local Swift).
STORE_TEST_BIN := $(BUILD)/tests/store/test_store

$(STORE_TEST_BIN): tests/store/test_store.c $(COMMON_OBJ) | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(COMMON_OBJ) $(LDLIBS) -lcmocka

# The S3 fault tests, run by tests/store/run.sh through tests/s3/faultproxy.py;
# they drive the cache engine too, so they link the worker's modules.
FAULT_TEST_BIN := $(BUILD)/tests/store/test_faults

$(FAULT_TEST_BIN): tests/store/test_faults.c $(UNIT_LIB_OBJ) | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iworker $(LDFLAGS) -o $@ $< $(UNIT_LIB_OBJ) $(LDLIBS) -lcmocka

store-test: $(STORE_TEST_BIN) $(FAULT_TEST_BIN)

# Tools the VM suites run next to the device (tests/tools/*.c, standalone).
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRC))

$(BUILD)/tools/%: tests/tools/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<

test-tools: $(TOOL_BIN)

# Fuzz targets (libFuzzer, so clang), one per tests/fuzz/fuzz_*.c, built
# with the common code under ASan and UBSan into build-fuzz/. Each has a
# committed seed corpus in tests/fuzz/corpus/NAME/, written by
# tests/fuzz/seeds.c (`make fuzz-seeds`).
FUZZ_CC ?= clang
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
FUZZ_CFLAGS := $(filter-out -O2 -MMD -MP,$(CFLAGS)) -O1 \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(COMMON_SRC) $(PROTO_C) $(PROTO_H)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Isupervisor -Wno-missing-prototypes -o $@ $< $(COMMON_SRC) \
		$(FUZZ_EXTRA) $(PROTO_C) $(LDLIBS)

# The export records are the supervisor's, read from its state directory.
build-fuzz/fuzz_config: FUZZ_EXTRA := supervisor/record.c
build-fuzz/fuzz_config: supervisor/record.c

fuzz: $(FUZZ_BIN)

fuzz-seeds: $(BUILD)/tools/seeds
	@mkdir -p tests/fuzz/corpus
	$(BUILD)/tools/seeds tests/fuzz/corpus

$(BUILD)/tools/seeds: tests/fuzz/seeds.c $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(COMMON_OBJ) $(LDLIBS)

deps:
	@ci/deps.sh

test: deps
	@tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@ci/demo.sh

# Not part of `make test` (a smoke run of it is): about half an hour.
bench: deps
	@bench/run.sh

# Verifying writers on DEVICES exports for DURATION seconds, with worker
# kills and upgrades, flushes and eviction all the while, in a sid VM
# (tests/vm/soak.sh); `make test` runs a short one.
DURATION ?= 600
DEVICES ?= 2

soak: deps
	@$(MAKE) --no-print-directory all test-tools
	@GLIDEFS_SOAK_DURATION=$(DURATION) GLIDEFS_SOAK_DEVICES=$(DEVICES) \
		GLIDEFS_EXPECT_TRANSPORT=zero-copy \
		ci/vm/run.sh sid --timeout $$(($(DURATION) + 900)) -- tests/vm/soak.sh

# `make install` (PREFIX, DESTDIR as usual). Both daemons go into one
# directory: glidefsd runs the glidefs-worker that sits beside it. glidectl
# goes there too, as losetup and dmsetup do: most of what it does needs
# root or admin_group. The configuration stays in /etc whatever the
# PREFIX, where glidefsd looks for it; an operator's file is never
# replaced, and a new one is 0640 (it may come to hold s3_secret_key).
# The service unit's ExecStart names the installed glidefsd.
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
UNITDIR ?= $(PREFIX)/lib/systemd/system
MANDIR ?= $(PREFIX)/share/man
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
CONFDIR := /etc/glidefs
INSTALL ?= install

install: $(PROGRAMS)
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(COMPLETIONDIR) $(DESTDIR)$(CONFDIR)
	$(INSTALL) -m 755 $(PROGRAMS) $(DESTDIR)$(SBINDIR)/
	sed 's|^ExecStart=/usr/local/sbin/glidefsd|ExecStart=$(SBINDIR)/glidefsd|' \
		units/glidefs.service >$(DESTDIR)$(UNITDIR)/glidefs.service
	chmod 644 $(DESTDIR)$(UNITDIR)/glidefs.service
	$(INSTALL) -m 644 units/glidefs.socket $(DESTDIR)$(UNITDIR)/
	$(INSTALL) -m 644 man/glidefsd.8 man/glidectl.8 $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 644 man/glidefs.conf.5 $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 644 completion/glidectl.bash $(DESTDIR)$(COMPLETIONDIR)/glidectl
	test -e $(DESTDIR)$(CONFDIR)/glidefs.conf || \
		$(INSTALL) -m 640 etc/glidefs.conf $(DESTDIR)$(CONFDIR)/glidefs.conf

# What install put, but the configuration: that is the operator's now.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/glidefsd $(DESTDIR)$(SBINDIR)/glidefs-worker \
		$(DESTDIR)$(SBINDIR)/glidectl $(DESTDIR)$(UNITDIR)/glidefs.service \
		$(DESTDIR)$(UNITDIR)/glidefs.socket $(DESTDIR)$(MANDIR)/man8/glidefsd.8 \
		$(DESTDIR)$(MANDIR)/man8/glidectl.8 $(DESTDIR)$(MANDIR)/man5/glidefs.conf.5 \
		$(DESTDIR)$(COMPLETIONDIR)/glidectl

clean:
	rm -rf build build-san build-tsan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
