# dozen: build, run and test the whole system.
#
#   make up      install what is missing, build, start everything, wait until healthy
#   make test    install what is missing, build, run unit tests, short fuzzer runs, system tests
#   make fuzz    run each libFuzzer target for FUZZ_SECONDS (60)
#   make down    stop what `make up` started (data is kept under .run/)
#
# Everything the build and the tests need comes from Debian's packages; `make deps`
# installs what is missing and does nothing when all of it is there.

SHELL := /bin/bash
.DEFAULT_GOAL := all

CC      ?= cc
PKGS    := rdkafka libmicrohttpd jansson libpq libcurl libxml-2.0 libcrypto
BUILD   ?= build
BIN     ?= bin
EXTRA_CFLAGS ?=
EXTRA_LDFLAGS ?=

CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g \
           -Ilibcommon $(EXTRA_CFLAGS)
LDLIBS  := -lpthread -lm

# pkg-config is asked only when something is compiled, so that `make deps` works on a
# machine where none of the -dev packages is installed yet.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# Debian packages for building, running and testing. `make deps` installs the missing ones.
DEB_PKGS := build-essential pkg-config librdkafka-dev libmicrohttpd-dev libjansson-dev \
            libpq-dev libcurl4-openssl-dev libcmocka-dev postgresql postgresql-client \
            kcat curl procps util-linux python3 python3-pytest python3-requests \
            python3-psycopg2 python3-confluent-kafka python3-yaml python3-prometheus-client valgrind \
            maven openjdk-17-jre-headless docker-compose tzdata
DEB_PKGS += prometheus   # promtool check metrics, and a real Prometheus server in test_28
DEB_PKGS += libxml2-dev   # the notifier reads the data portal's XML feed (libxml-2.0)
DEB_PKGS += clang libclang-rt-14-dev   # libFuzzer targets (make fuzz, tests/fuzz)
DEB_PKGS += libssl-dev   # libcrypto: the sign-up's code hashes and Twilio's webhook signature
DEB_PKGS += chromium   # the browser tests (tests/browser) drive a real headless browser
DEB_PKGS += nodejs npm   # Playwright (playwright-core) runs the browser tests
BENCH_PKGS := wrk

PYTHON := /usr/bin/python3

LIBCOMMON_SRC := $(wildcard libcommon/*.c)
LIBCOMMON_OBJ := $(LIBCOMMON_SRC:%.c=$(BUILD)/%.o)
LIBCOMMON     := $(BUILD)/libcommon.a

SERVICES := sales stock factory retry notifier
# tools/<dir> -> bin/<program>
TOOLS    := devbroker:devbroker dozenctl:dozenctl migrate:dozen-migrate \
            legacy-factory:legacy-factory open-data:open-data sms-gateway:sms-gateway

PROGRAMS := $(SERVICES:%=$(BIN)/%) $(foreach t,$(TOOLS),$(BIN)/$(lastword $(subst :, ,$(t))))

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_TESTS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all asan fuzz fuzz-build fuzz-short deps bench-deps up down logs test test-unit test-system test-system-kafka test-system-both test-asan \
        test-browser \
        valgrind bench clean kafka kafka-down print-programs bench-restock bench-retry bench-notify \
        bench-relay chaos chaos-short

all: $(PROGRAMS)

# Every object also writes its header dependencies (the compiler's -MMD -MP) next to it, as
# a .d file that is included below: a changed header rebuilds exactly the objects that
# include it.
DEPFLAGS := -MMD -MP

# An object with no .d file beside it (built before the compiler wrote them, or never) depends
# on every header, so that a build directory from an older checkout is brought up to date once.
ALL_HEADERS := $(wildcard libcommon/*.h services/*/*.h tools/*/*.h tests/unit/*.h tests/fuzz/*.h)
depfile_of = $(patsubst %.o,%.d,$(1))
.SECONDEXPANSION:
$(BUILD)/%.o: %.c $$(if $$(wildcard $$(call depfile_of,$$@)),,$(ALL_HEADERS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(LIBCOMMON): $(LIBCOMMON_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

# The objects of every .c file in a folder.
objs_of = $(addprefix $(BUILD)/,$(subst .c,.o,$(wildcard $(1)/*.c)))

# A program links the .c files of its own folder, libcommon, and the objects listed in
# <program>_objs: code it shares with other programs, as source paths with .o, e.g.
#   legacy-factory_objs := tools/standin/standin.o
# (one line per program; a program without one links its folder and libcommon only).

# The stand-ins' shared framework (tools/standin/standin.h), linked into each stand-in.
legacy-factory_objs := tools/standin/standin.o
open-data_objs      := tools/standin/standin.o
sms-gateway_objs    := tools/standin/standin.o
CFLAGS += -Itools/standin

# Pages built into a program (libcommon/asset.h): the object that embeds a file depends on it.
$(BUILD)/services/sales/page.o: services/sales/web/shop.html
$(BUILD)/services/notifier/signup_api.o: services/notifier/web/signup.html
$(BUILD)/tools/dozenctl/web.o: tools/dozenctl/web/console.html

define program_rule
$(BIN)/$(1): $(call objs_of,$(2)) $(addprefix $(BUILD)/,$($(1)_objs)) $(LIBCOMMON)
	@mkdir -p $(BIN)
	$$(CC) $$(EXTRA_LDFLAGS) -o $$@ $$(filter-out %.a,$$^) $$(LIBCOMMON) $$(PKG_LIBS) $$(LDLIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call program_rule,$(s),services/$(s))))
$(foreach t,$(TOOLS),$(eval $(call program_rule,$(lastword $(subst :, ,$(t))),tools/$(firstword $(subst :, ,$(t))))))

# A unit test, tests/unit/test_<name>.c, builds $(BUILD)/tests/test_<name> from that file,
# libcommon, and exactly the objects listed in test_<name>_objs below (source paths with
# .o; nothing is linked because of the test's name). Its #include "x.h" is also searched in
# the folders of those objects. A test without a line links libcommon alone; to link one
# more object to a test, add it to the test's line.
test_legacy-factory_state_objs := tools/legacy-factory/state.o tools/standin/standin.o
test_factory_callback_objs     := services/factory/callback.o services/factory/legacy.o
test_factory_order_state_objs  := services/factory/order_state.o
test_notifier_bulletin_objs    := services/notifier/bulletin.o services/notifier/feed.o \
                                  services/notifier/feed_datagokr.o services/notifier/store.o
test_notifier_feed_objs        := services/notifier/feed.o services/notifier/feed_datagokr.o
test_notifier_datagokr_objs    := services/notifier/feed.o services/notifier/feed_datagokr.o \
                                  tools/open-data/daily.o
test_notifier_sms_objs         := services/notifier/sms.o
test_notifier_signup_objs      := services/notifier/signup.o
test_open-data_daily_objs      := tools/open-data/daily.o
test_open-data_state_objs      := tools/open-data/state.o tools/open-data/daily.o \
                                  tools/standin/standin.o
test_retry_record_objs         := services/retry/record.o
test_sales_order_objs          := services/sales/order.o
test_sms-gateway_message_objs  := tools/sms-gateway/message.o
test_sms-gateway_state_objs    := tools/sms-gateway/state.o tools/sms-gateway/message.o \
                                  tools/standin/standin.o
test_standin_objs              := tools/standin/standin.o

define unit_rule
$(BUILD)/tests/unit/$(1).o: CFLAGS += $(addprefix -I,$(sort $(patsubst %/,%,$(dir $($(1)_objs)))))
$(BUILD)/tests/$(1): $(BUILD)/tests/unit/$(1).o $(addprefix $(BUILD)/,$($(1)_objs)) $(LIBCOMMON)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(EXTRA_LDFLAGS) -o $$@ $$(filter-out %.a,$$^) $(LIBCOMMON) $$(PKG_LIBS) -lcmocka \
	    $$(LDLIBS)
endef
$(foreach t,$(UNIT_SRC:tests/unit/%.c=%),$(eval $(call unit_rule,$(t))))

# A libFuzzer target, tests/fuzz/fuzz_<name>.c, builds $(BUILD)/fuzz/fuzz_<name> from that
# file, libcommon, and the objects on its fuzz_<name>_objs line, as unit tests do. Built only
# by `make fuzz-build` (clang, in $(FUZZ_BUILD)); tests/fuzz/README.md says how to add one.
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
fuzz_order_objs        := services/sales/order.o
fuzz_feed_objs         := services/notifier/feed.o services/notifier/feed_datagokr.o
fuzz_feed_datagokr_objs := services/notifier/feed.o services/notifier/feed_datagokr.o
fuzz_retry_record_objs := services/retry/record.o
fuzz_form_objs         := services/notifier/signup.o
fuzz_callback_objs     := services/factory/callback.o
fuzz_sms_date_objs     := services/notifier/sms.o

define fuzz_rule
$(BUILD)/tests/fuzz/fuzz_$(1).o: CFLAGS += -Itests/fuzz \
    $(addprefix -I,$(sort $(patsubst %/,%,$(dir $(fuzz_$(1)_objs)))))
$(BUILD)/fuzz/fuzz_$(1): $(BUILD)/tests/fuzz/fuzz_$(1).o $(addprefix $(BUILD)/,$(fuzz_$(1)_objs)) \
                         $(LIBCOMMON)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(EXTRA_LDFLAGS) -fsanitize=fuzzer -o $$@ $$(filter-out %.a,$$^) $(LIBCOMMON) \
	    $$(PKG_LIBS) $$(LDLIBS)
endef
$(foreach t,$(FUZZ_NAMES),$(eval $(call fuzz_rule,$(t))))

# The header dependencies of every object built so far (none before the first build).
-include $(wildcard $(patsubst %.c,$(BUILD)/%.d,$(LIBCOMMON_SRC) $(wildcard services/*/*.c) \
                                   $(wildcard tools/*/*.c) $(UNIT_SRC) $(FUZZ_SRC)))

asan:
	$(MAKE) BUILD=build-asan BIN=bin-asan \
	    EXTRA_CFLAGS="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined" all $(if $(UNITS),$(UNITS))

# The fuzz targets: clang with libFuzzer, ASan and UBSan (any UB aborts), in a build
# directory of their own so that the normal build is untouched. FUZZ=<names> picks some.
FUZZ_BUILD := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ ?= $(FUZZ_NAMES)
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined

fuzz-build:
	@$(MAKE) -s --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang \
	    EXTRA_CFLAGS="-O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
	    EXTRA_LDFLAGS="$(FUZZ_SAN)" $(FUZZ:%=$(FUZZ_BUILD)/fuzz/fuzz_%)

# Each target first replays its crashers (tests/fuzz/crashers/<name>/), then fuzzes for
# FUZZ_SECONDS over a copy of its seed corpus (the committed corpus is never written).
fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ)

# A few seconds each, for `make test`: enough to catch a crash a change brings back.
fuzz-short: deps
	@$(MAKE) --no-print-directory fuzz-build
	@tests/fuzz/run.sh $(FUZZ_BUILD) 3 $(FUZZ)

# ---------------------------------------------------------------------------------------
# Packages

deps:
	@missing=$$(for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || \
	    dpkg-query -W -f='$${Status} $${Provides}\n' 2>/dev/null | \
	      grep '^install ok installed' | grep -qw -- "$$p" || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing" $$missing; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

bench-deps: deps
	@missing=$$(for p in $(BENCH_PKGS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# ---------------------------------------------------------------------------------------
# Running

up: deps
	@$(MAKE) --no-print-directory all
	@tools/stack.sh up

down:
	@tools/stack.sh down

logs:
	@tools/stack.sh logs

# ---------------------------------------------------------------------------------------
# Tests

test: deps
	@$(MAKE) --no-print-directory all $(UNIT_TESTS)
	@$(MAKE) --no-print-directory test-unit
	@$(MAKE) --no-print-directory fuzz-short
	@$(MAKE) --no-print-directory test-system-both
	@echo "== the chaos suite, short: 75 s of workload and faults on the dev broker, one instance each"
	@$(MAKE) --no-print-directory chaos-short
	@echo "== the pages in a real browser (chromium, playwright-core)"
	@$(MAKE) --no-print-directory test-browser

test-unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; $$t; done

# The pages in a real browser: Debian's chromium driven by playwright-core (pinned in
# tests/browser/package.json, installed once into tests/browser/node_modules), against a
# stack of its own on free ports. Screenshots land in docs/screenshots/. Skipped, with the
# reason printed, only where chromium is installed but cannot start; a missing chromium,
# node, npm or playwright-core (or a failed npm install) fails. `deps` comes first so that
# Debian's chromium, nodejs and npm are there. One test alone: make test-browser BT=shop
BROWSER_DEPS := tests/browser/node_modules/playwright-core/package.json
$(BROWSER_DEPS): tests/browser/package.json | deps
	@command -v npm >/dev/null || { echo "test-browser: no npm (make deps installs Debian's npm)" >&2; exit 1; }
	@cd tests/browser && npm install --no-audit --no-fund --no-save --omit=dev --loglevel=error || \
	  { echo "test-browser: npm install playwright-core failed (see above)" >&2; exit 1; }
	@test -f $@ || { echo "test-browser: npm install left no $@" >&2; exit 1; }; touch $@

test-browser: all $(BROWSER_DEPS) | deps
	@tests/browser/run.sh $(BT); rc=$$?; [ $$rc = 77 ] && rc=0; exit $$rc

# One system test file alone: make test-system T=tests/system/test_01_orders.py
test-system: all
	DOZEN_BIN=$(abspath $(BIN)) $(PYTHON) -m pytest -q -p no:cacheprovider \
	    $(if $(T),$(T),tests/system)

# The system tests as `make test` runs them: the dev broker pass and the Apache Kafka pass
# side by side, each file where its subject lives (tests/system/both.sh).
test-system-both: all
	@DOZEN_BIN=$(abspath $(BIN)) PYTHON=$(PYTHON) tests/system/both.sh \
	    $(if $(T),$(T),tests/system)

# The system tests on a real Apache Kafka broker started for the run (tools/kafka).
test-system-kafka: all
	DOZEN_BIN=$(abspath $(BIN)) PYTHON=$(PYTHON) tests/system/on-apache-kafka.sh \
	    $(if $(T),$(T),tests/system)

# The same unit and system tests on the ASan+UBSan build.
test-asan: deps
	@$(MAKE) --no-print-directory asan UNITS="$(UNIT_TESTS:$(BUILD)/%=build-asan/%)"
	@set -e; for t in $(UNIT_TESTS:$(BUILD)/%=build-asan/%); do echo "== $$t"; $$t; done
	ASAN_OPTIONS=detect_leaks=1 DOZEN_BIN=$(abspath bin-asan) $(PYTHON) -m pytest -q \
	    -p no:cacheprovider $(if $(T),$(T),tests/system)

# Unit tests under valgrind's memcheck; a leak or an invalid access fails the run.
valgrind: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== valgrind $$t"; \
	  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	    $$t; done

# A real Apache Kafka broker on 127.0.0.1:19092 (jars from Maven Central, cached in
# ~/.cache/dozen; data under .run/kafka).
kafka: deps
	@tools/kafka/kafka.sh up

kafka-down:
	@tools/kafka/kafka.sh down

bench: bench-deps
	@$(MAKE) --no-print-directory all
	@tests/bench/bench.sh
	@tests/bench/relay.sh

# Commit-to-publish latency of the outbox relay, at 20 orders/s and under wrk, on the dev
# broker and on Apache Kafka.
bench-relay: bench-deps
	@$(MAKE) --no-print-directory all
	@tests/bench/relay.sh

# Restock latency: from the 409 to the stock being back, minus the factory's delay.
bench-restock: deps
	@$(MAKE) --no-print-directory all
	@tests/bench/restock.sh

# Retry service: lateness of 10,000 redeliveries, peak RSS with 1,000 and 100,000 pending.
bench-retry: deps
	@$(MAKE) --no-print-directory all
	@tests/bench/retry.sh

# One bulletin to 10,000 subscribers through the SMS stand-in: time and the notifier's peak RSS.
bench-notify: deps
	@$(MAKE) --no-print-directory all
	@tests/bench/notify.sh

# The chaos suite (tests/chaos): workload, nemesis and checker on a fresh stack of its own.
# `make chaos`: about CHAOS_DURATION (600 s) plus start-up and settling, two instances of
# every service on a three-node Kafka cluster; CHAOS_SEED repeats a run's schedule.
# `make chaos-short`: about 2 minutes, one instance each, on the dev broker.
chaos: deps
	@$(MAKE) --no-print-directory all
	CHAOS_DURATION=$${CHAOS_DURATION:-600} CHAOS_INSTANCES=$${CHAOS_INSTANCES:-2} \
	    CHAOS_KAFKA=$${CHAOS_KAFKA:-cluster} DOZEN_BIN=$(abspath $(BIN)) tests/chaos/run.sh

# In make test with a fixed seed (the same faults every run, so that a red CI means a
# regression, not a new draw); `make chaos-short CHAOS_SEED=N` or `make chaos` for others.
chaos-short: all
	CHAOS_SEED=$${CHAOS_SEED:-7} \
	CHAOS_DURATION=$${CHAOS_DURATION:-75} CHAOS_INSTANCES=1 CHAOS_KAFKA=$${CHAOS_KAFKA:-dev} \
	    DOZEN_BIN=$(abspath $(BIN)) tests/chaos/run.sh

# The program names, for tests that check other files against the build.
print-programs:
	@echo $(notdir $(PROGRAMS))

clean:
	rm -rf build build-asan build-fuzz bin bin-asan
