# dozen: build, run and test the whole system.
#
#   make up      install what is missing, build, start everything, wait until healthy
#   make test    install what is missing, build, run unit and system tests
#   make down    stop what `make up` started (data is kept under .run/)
#
# Everything the build and the tests need comes from Debian's packages; `make deps`
# installs what is missing and does nothing when all of it is there.

SHELL := /bin/bash
.DEFAULT_GOAL := all

CC      ?= cc
PKGS    := rdkafka libmicrohttpd jansson libpq libcurl
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
            python3-psycopg2 python3-confluent-kafka python3-yaml valgrind \
            maven openjdk-17-jre-headless docker-compose tzdata
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

.PHONY: all asan deps bench-deps up down logs test test-unit test-system test-system-kafka test-asan \
        valgrind bench clean kafka kafka-down print-programs bench-restock bench-retry bench-notify

all: $(PROGRAMS)

$(BUILD)/%.o: %.c $(wildcard libcommon/*.h) $(wildcard services/*/*.h) $(wildcard tools/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(LIBCOMMON): $(LIBCOMMON_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

# The objects of every .c file in a folder.
objs_of = $(addprefix $(BUILD)/,$(subst .c,.o,$(wildcard $(1)/*.c)))

# One program from the .c files of one folder and libcommon.
define program_rule
$(BIN)/$(1): $(call objs_of,$(2)) $(LIBCOMMON)
	@mkdir -p $(BIN)
	$$(CC) $$(EXTRA_LDFLAGS) -o $$@ $$(filter-out %.a,$$^) $$(LIBCOMMON) $$(PKG_LIBS) $$(LDLIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call program_rule,$(s),services/$(s))))
$(foreach t,$(TOOLS),$(eval $(call program_rule,$(lastword $(subst :, ,$(t))),tools/$(firstword $(subst :, ,$(t))))))

# The stand-ins' shared framework (tools/standin/standin.h), linked into each stand-in and
# into their unit tests (tests/unit/test_standin.c links it through the rule below).
STANDIN_OBJ := $(BUILD)/tools/standin/standin.o
STANDINS    := legacy-factory open-data sms-gateway
CFLAGS      += -Itools/standin
$(STANDINS:%=$(BIN)/%) $(filter $(STANDINS:%=$(BUILD)/tests/test_%_%),$(UNIT_TESTS)): $(STANDIN_OBJ)

# Unit tests link libcommon and, for tests/unit/test_<name>_*.c, the objects but main.o
# (the pure logic) of services/<name> or tools/<name>.
.SECONDEXPANSION:
unit_dir = $(wildcard services/$(firstword $(subst _, ,$(1))) tools/$(firstword $(subst _, ,$(1))))
logic_of = $(filter-out %/main.o,$(call objs_of,$(call unit_dir,$(1))))
$(BUILD)/tests/test_%: tests/unit/test_%.c $$(call logic_of,$$*) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(addprefix -I,$(call unit_dir,$*)) $(EXTRA_LDFLAGS) \
	    -o $@ $(filter-out %.a,$^) $(LIBCOMMON) $(PKG_LIBS) -lcmocka $(LDLIBS)

asan:
	$(MAKE) BUILD=build-asan BIN=bin-asan \
	    EXTRA_CFLAGS="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined" all $(if $(UNITS),$(UNITS))

# ---------------------------------------------------------------------------------------
# Packages

deps:
	@missing=$$(for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
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
	@echo "== system tests on the dev broker (bin/devbroker, librdkafka's mock cluster)"
	@$(MAKE) --no-print-directory test-system
	@$(MAKE) --no-print-directory test-system-kafka

test-unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; $$t; done

# One system test file alone: make test-system T=tests/system/test_01_orders.py
test-system: all
	DOZEN_BIN=$(abspath $(BIN)) $(PYTHON) -m pytest -q -p no:cacheprovider \
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

# The program names, for tests that check other files against the build.
print-programs:
	@echo $(notdir $(PROGRAMS))

clean:
	rm -rf build build-asan bin bin-asan
