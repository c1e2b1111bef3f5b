# mod_auth_jwks — build, test and demo.
#
#   make            build the module (build/mod_auth_jwks.so) and the jwks-tool
#   make check      install Debian build/test packages if missing, then run unit
#                   tests, the same unit tests under ASan+UBSan, each fuzz target
#                   for 10 s, and the integration tests against a real httpd,
#                   with the module built normally and then with ASan+UBSan
#   make demo       a real httpd protecting a CGI app with a locally issued JWKS
#   make bench      side-by-side throughput (vs mod_oauth2, mod_auth_openidc) and the goals table
#   make install    install the module with apxs (and conf.d files for a2enmod)

PY        := /usr/bin/python3
BUILD     ?= build
CC        ?= gcc
APXS      ?= apxs
PKGS      := apr-1 apr-util-1 openssl jansson libcurl zlib
# -isystem: warnings in dependency headers are not ours to fix.
PKG_CFLAGS = $(patsubst -I%,-isystem %,$(filter-out -I/usr/include/x86_64-linux-gnu,$(shell pkg-config --cflags $(PKGS) 2>/dev/null)))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
HTTPD_INC  = $(shell $(APXS) -q INCLUDEDIR 2>/dev/null)

WARN      := -Wall -Wextra -Werror -Wshadow -Wconversion -Wno-sign-conversion \
             -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wformat=2 \
             -Wundef -Wcast-align -Wvla
OPT       ?= -O2 -g
SAN       ?=
CFLAGS_ALL = -std=gnu11 $(OPT) $(SAN) -fPIC -fvisibility=default $(WARN) -D_GNU_SOURCE \
             -DLINUX -D_REENTRANT $(PKG_CFLAGS) -Ilib
LDLIBS_ALL = $(PKG_LIBS) -lpthread

LIB_SRC   := $(sort $(wildcard lib/*.c))
LIB_OBJ   := $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o)
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_COMMON := $(wildcard tests/unit/tu_*.c)
MODULE    := $(BUILD)/mod_auth_jwks.so
TOOL      := $(BUILD)/jwks-tool

.PHONY: all lib module tool unit unit-asan integration check check-run deps lint demo bench \
        install clean fuzz fuzz-smoke integration-asan \
        uninstall deb deb-deps check-deb

all: module tool

lib: $(BUILD)/libajw.a
module: $(MODULE)
tool: $(TOOL)

$(BUILD)/lib/%.o: lib/%.c $(wildcard lib/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libajw.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

MODULE_SRC := mod_auth_jwks.c mod_auth_jwks_config.c mod_auth_jwks_edge.c mod_auth_jwks_authz.c \
              mod_auth_jwks_export.c mod_auth_jwks_status.c mod_auth_jwks_metrics.c mod_auth_jwks_dpop.c \
              mod_auth_jwks_socache.c mod_auth_jwks_revoke.c mod_auth_jwks_fetch.c \
              mod_auth_jwks_request.c

$(MODULE): $(MODULE_SRC) mod_auth_jwks.h mod_auth_jwks_request.h $(BUILD)/libajw.a $(wildcard lib/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -I. -isystem $(HTTPD_INC) -shared -o $@ $(MODULE_SRC) \
	    $(BUILD)/libajw.a $(LDLIBS_ALL)

$(TOOL): tools/jwks_tool.c $(BUILD)/libajw.a
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libajw.a $(LDLIBS_ALL)

$(BUILD)/tests/%: tests/unit/%.c $(UNIT_COMMON) $(wildcard tests/unit/*.h) $(BUILD)/libajw.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit -o $@ $< $(UNIT_COMMON) $(BUILD)/libajw.a \
	    $(LDLIBS_ALL) -lcmocka

# Every unit test binary, from the project root (vectors are ../shared/vectors).
unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || fail=1; done; \
	 if [ $$fail -ne 0 ]; then echo "unit tests FAILED"; exit 1; fi

# The same unit tests built and run under AddressSanitizer + UBSan (leaks too).
unit-asan:
	$(MAKE) --no-print-directory BUILD=build/asan OPT="-O1 -g" \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" unit

integration: $(MODULE) $(TOOL)
	$(PY) -m pytest -q -p no:cacheprovider tests/integration

deps:
	@sh tests/deps.sh

# Source checks no compiler makes: conversions APR's formatter lacks; no
# call cycle between the glue files (each compiled alone, read with nm).
lint:
	$(PY) tests/lint/apr_formats.py .
	$(PY) tests/lint/glue_calls.py --cc "$(CC) $(CFLAGS_ALL) -O0 -I. -isystem $(HTTPD_INC)" .

# check = deps first, then a fresh make so pkg-config sees what was installed.
check: deps
	@$(MAKE) --no-print-directory check-run

check-run: lint all unit unit-asan fuzz-smoke integration integration-asan check-deb
	@echo "make check: all suites passed"

# The integration suite again, against an ASan+UBSan build of the module
# running inside the real httpd (sanitizer runtimes preloaded).
integration-asan:
	sh tests/integration/run_asan.sh

# Every fuzz target for a few seconds: a crash, leak or UB fails the check.
fuzz-smoke:
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-10} sh tests/fuzz/run.sh

demo: deps
	@$(MAKE) --no-print-directory module tool
	@sh demo/run.sh

# bench/deps.sh installs the peer modules (mod_oauth2, mod_auth_openidc) for
# the side-by-side comparison; it never fails: a missing peer is skipped.
bench: deps
	@sh bench/deps.sh
	@$(MAKE) --no-print-directory module tool
	$(PY) bench/bench.py

fuzz: deps
	@sh tests/fuzz/run.sh

# The module goes where `apxs -i` puts it (apxs -q LIBEXECDIR); installed
# directly, since apxs -i warns about a missing libtool dlname for a plain .so.
install: $(MODULE)
	@moddir=$$($(APXS) -q LIBEXECDIR) && install -d "$$moddir" \
	 && install -m 644 $(MODULE) "$$moddir/mod_auth_jwks.so" && echo "installed $$moddir/mod_auth_jwks.so"
	@if [ -d /etc/apache2/mods-available ]; then \
	   install -m 644 conf.d/auth_jwks.load conf.d/auth_jwks.conf /etc/apache2/mods-available/; \
	   echo "now: a2enmod auth_jwks"; fi

clean:
	rm -rf build

# ---------------------------------------------------------------- Debian package
# make deb        build libapache2-mod-auth-jwks_*.deb into $(BUILD)/deb/ from a
#                 copy of the work tree (nothing is written into the tree itself)
# make check-deb  build it, install it with dpkg, serve one protected request
#                 through the system apache2 on 127.0.0.1, purge it (root only)
# make uninstall  undo `make install` (a2dismod first when enabled)

DEB_OUT   = $(BUILD)/deb
DEB_SRC   = $(DEB_OUT)/src
DEB_BUILD_DEPS := dpkg-dev debhelper apache2-dev libapr1-dev libaprutil1-dev libssl-dev \
                  libjansson-dev libcurl4-openssl-dev pkg-config

deb-deps:
	@sh tests/deps.sh $(DEB_BUILD_DEPS)

# The copy holds what git tracks plus untracked files git does not ignore
# (a plain copy without build/ and .git when this is not a git checkout).
deb: deb-deps
	@rm -rf $(DEB_OUT) && mkdir -p $(DEB_SRC)
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	   git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -C $(DEB_SRC) -xf -; \
	 else \
	   tar --exclude=./.git --exclude=./build --exclude=./debian/build -cf - . | tar -C $(DEB_SRC) -xf -; \
	 fi
	cd $(DEB_SRC) && dpkg-buildpackage -us -uc -b > ../dpkg-buildpackage.log 2>&1 \
	    || { tail -40 ../dpkg-buildpackage.log; echo "make deb: dpkg-buildpackage failed, log: $(DEB_OUT)/dpkg-buildpackage.log" >&2; exit 1; }
	@rm -rf $(DEB_SRC)
	@ls -1 $(DEB_OUT)/*.deb

check-deb: deb
	AJW_DEB_DIR=$(DEB_OUT) $(PY) -m pytest -q -p no:cacheprovider tests/deb

uninstall:
	@moddir=$$($(APXS) -q LIBEXECDIR) || exit 1; \
	 so="$$moddir/mod_auth_jwks.so"; \
	 if owner=$$(dpkg-query -S "$$so" 2>/dev/null); then \
	   echo "make uninstall: $$so belongs to the Debian package $${owner%%:*}; remove that instead (apt remove $${owner%%:*})" >&2; \
	   exit 1; fi; \
	 if [ -e /etc/apache2/mods-enabled/auth_jwks.load ]; then a2dismod -q -f auth_jwks || exit 1; fi; \
	 for f in "$$so" /etc/apache2/mods-available/auth_jwks.load /etc/apache2/mods-available/auth_jwks.conf; do \
	   if [ -e "$$f" ]; then rm -f "$$f" && echo "removed $$f"; fi; done
