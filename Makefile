# ngx_http_rate_limit_module
#
#   make            build build/ngx_http_rate_limit_module.so
#   make test       install what is missing, build, run unit and Test::Nginx
#   make unit       the cmocka unit tests of the C++ core
#   make demo       a local Redis and NGINX on loopback, limiting for real
#   make memcheck   the Test::Nginx suites with nginx under valgrind
#   make bench      side by side with plain NGINX, limit_req, OpenResty
#   make bench-cluster  decisions per second per Redis core, 3 masters
#   make matrix     build and test in a Debian 13 root, Redis and Valkey
#   make install    into the distribution's modules dir (DESTDIR-aware)
#
# NGINX_SRC is an NGINX source tree to build against; the default is
# Debian nginx-dev's, so the module loads into /usr/sbin/nginx.  It is
# copied into build/ and configured there: nothing is written into it.

NGINX_SRC   ?= /usr/share/nginx/src
BUILD       ?= build
CORE_BUILD  ?= $(abspath $(BUILD))/core
MODULES_DIR ?= /usr/lib/nginx/modules
CXX         ?= g++
CC          ?= gcc

MODULE      := ngx_http_rate_limit_module
SO          := $(BUILD)/$(MODULE).so
NGX_BUILD   := $(BUILD)/nginx

CORE_SRCS   := $(wildcard src/core/*.cpp)
CORE_HDRS   := $(wildcard src/core/*.h src/core/*.hpp)
CORE_OBJS   := $(patsubst src/core/%.cpp,$(CORE_BUILD)/%.o,$(CORE_SRCS)) \
               $(CORE_BUILD)/rl_scripts.o
CORE_LIB    := $(CORE_BUILD)/librl_core.a
CORE_FLAGS  := -std=c++17 -O2 -g -fPIC -fvisibility=hidden \
               -Wall -Wextra -Werror -Isrc/core $(CORE_CXXFLAGS)

LUA_ALGS    := gcra token_bucket fixed_window sliding_window sliding_log \
               concurrency
LUA_SRCS    := $(wildcard lua/*.lua)

GLUE_SRCS   := config config.make $(wildcard src/*.c src/*.h)

UNIT_SRCS   := $(wildcard t/unit/test_*.c)
UNIT_BINS   := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))

.PHONY: all module core unit unit-bins test-module test demo memcheck bench \
        bench-cluster \
        matrix \
        install clean

all: module

module: $(SO)


# The C++ core: its own flags, a static archive the module links.

core: $(CORE_LIB)

$(CORE_LIB): $(CORE_OBJS)
	rm -f $@
	ar rcs $@ $^

$(CORE_BUILD)/%.o: src/core/%.cpp $(CORE_HDRS) | $(CORE_BUILD)
	$(CXX) $(CORE_FLAGS) -c -o $@ $<

$(CORE_BUILD)/rl_scripts.o: $(CORE_BUILD)/rl_scripts.cpp
	$(CXX) $(CORE_FLAGS) -c -o $@ $<

$(CORE_BUILD)/rl_scripts.cpp: $(LUA_SRCS) src/core/embed_scripts.sh \
                              | $(CORE_BUILD)
	sh src/core/embed_scripts.sh $@ $(LUA_ALGS)

$(CORE_BUILD) $(BUILD)/unit:
	mkdir -p $@


# The module: NGINX's own build of the glue, configured once.

$(NGX_BUILD)/objs/Makefile: config config.make
	rm -rf $(NGX_BUILD)
	mkdir -p $(BUILD)
	cp -a $(NGINX_SRC) $(NGX_BUILD)
	rm -rf $(NGX_BUILD)/objs
	RL_CORE_BUILD=$(CORE_BUILD) NGX_BUILD=$(NGX_BUILD) \
	    MODULE_DIR=$(CURDIR) sh ci/configure-nginx.sh

$(SO): $(NGX_BUILD)/objs/Makefile $(GLUE_SRCS) $(CORE_LIB)
	$(MAKE) -C $(NGX_BUILD) -f objs/Makefile modules
	@# a new file, not overwritten in place: a running nginx maps this one
	cp $(NGX_BUILD)/objs/$(MODULE).so $@.tmp
	mv $@.tmp $@


# Tests.

# A dynamic module with an access handler and no load order of its own,
# for t/061-module-order.t: built against the configured tree's headers,
# so its signature matches.
TEST_MODULE := $(BUILD)/ngx_http_rl_test_access_module.so
# recursive: the QUIC and HTTP/3 directories exist only in newer trees
# (NGINX 1.25+), and only once the tree is copied
NGX_INCS     = $(addprefix -I$(NGX_BUILD)/,src/core src/event \
               src/event/modules src/os/unix objs src/http src/http/modules \
               src/http/v2) \
               $(addprefix -I,$(wildcard $(NGX_BUILD)/src/event/quic \
                                         $(NGX_BUILD)/src/http/v3))

test-module: $(TEST_MODULE)

$(TEST_MODULE): t/module/ngx_http_rl_test_access_module.c \
                $(NGX_BUILD)/objs/Makefile
	$(CC) -shared -fPIC -g -O2 -Wall -Wextra -Wno-unused-parameter \
	    -Werror $(NGX_INCS) -o $@.tmp $<
	mv $@.tmp $@

$(BUILD)/unit/%: t/unit/%.c $(CORE_LIB) | $(BUILD)/unit
	$(CC) -std=c99 -g -Wall -Wextra -Werror -Isrc/core -o $@ $< \
	    $(CORE_LIB) -lcmocka -lhiredis -lcrypto -lstdc++ -lm

unit: $(UNIT_BINS)
	sh ci/run-unit.sh $(UNIT_BINS)

test:
	sh ci/install-deps.sh
	$(MAKE) module
	$(MAKE) unit-bins test-module
	sh ci/test.sh

unit-bins: $(UNIT_BINS)

demo:
	sh ci/install-deps.sh
	$(MAKE) module
	sh ci/demo.sh

memcheck:
	EXTRA_PACKAGES=valgrind sh ci/install-deps.sh
	$(MAKE) module
	$(MAKE) unit-bins test-module
	sh ci/memcheck.sh

bench:
	EXTRA_PACKAGES="wrk lua-resty-core" sh ci/install-deps.sh
	$(MAKE) module
	sh ci/bench.sh

bench-cluster:
	EXTRA_PACKAGES="wrk curl" sh ci/install-deps.sh
	$(MAKE) module
	sh ci/bench-cluster.sh

# The Debian 13 row: a debootstrapped trixie root (cached, MATRIX_ROOT),
# the build and the whole suite there against redis-server and
# valkey-server, and the module built from trixie's NGINX source tree.
matrix:
	sh ci/matrix.sh

install: $(SO)
	install -d $(DESTDIR)$(MODULES_DIR)
	install -m 0644 $(SO) $(DESTDIR)$(MODULES_DIR)/

clean:
	rm -rf $(BUILD)
