# Thin wrapper around CMake (as neovim's): `make`, `make deps`, `make demo`,
# `make test`, `make bench`, `make fuzz`, `make package`, `make clean`.
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

# Debian packages the build, the tests, the demo and the benchmark need.
DEPS = cmake make gcc pkg-config libcurl4-openssl-dev libevent-dev libhiredis-dev \
       libjansson-dev libcmocka-dev libssl-dev libsystemd-dev libinih-dev libnghttp2-dev \
       redis-server python3 python3-aiosmtpd python3-h2 python3-jsonschema python3-yaml curl openssl valgrind systemd \
       dpkg-dev lintian file binutils adduser chromium nginx-light
BENCH_DEPS = wrk nghttp2-client
FUZZ_DEPS = clang libclang-rt-14-dev
FUZZ_SECONDS ?= 60

.PHONY: all deps build build-asan demo test test-unit bench bench-export bench-latency bench-webhooks bench-smtp fuzz package clean

all: build

deps:
	@missing=""; for p in $(DEPS) $(EXTRA_DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build:
	@[ -f $(BUILD)/CMakeCache.txt ] || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)
	cmake --build $(BUILD) -j $(JOBS)

build-asan:
	@[ -f $(BUILD_ASAN)/CMakeCache.txt ] || cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DOMNI_SANITIZE=ON $(CMAKE_ARGS)
	cmake --build $(BUILD_ASAN) -j $(JOBS)

demo: deps build
	bash scripts/demo.sh $(BUILD)

# Every unit and integration test, in the normal build and again under
# AddressSanitizer + UndefinedBehaviorSanitizer, then valgrind on the unit
# tests. Each integration test starts (and stops, by PID) its own
# redis-server and mock providers on 127.0.0.1. test_package builds the .deb,
# runs lintian on it (no error allowed) and, as root in a container with no
# omnicast installed, installs, removes and purges it.
# libFuzzer targets, each for FUZZ_SECONDS, on a scratch copy of the
# committed seed corpus; a crash fails and leaves its input in build-fuzz/.
fuzz:
	@$(MAKE) --no-print-directory deps EXTRA_DEPS="$(FUZZ_DEPS)"
	@[ -f build-fuzz/CMakeCache.txt ] || CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DOMNI_FUZZ=ON -DOMNI_PLUGINS=OFF $(CMAKE_ARGS)
	cmake --build build-fuzz -j $(JOBS)
	bash tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

# The two ctest suites run side by side, TEST_JOBS tests at once in each,
# and valgrind beside them, niced (scripts/test-suites.sh; the tests mostly
# wait): docs/testing.md.
TEST_JOBS ?= 3
test: deps build build-asan
	bash scripts/test-suites.sh $(BUILD) $(BUILD_ASAN) $(TEST_JOBS)
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

bench: build
	@$(MAKE) --no-print-directory deps EXTRA_DEPS="$(BENCH_DEPS)"
	bash tests/bench/run.sh $(BUILD)
	bash tests/bench/export.sh $(BUILD)

# the recipients export of a 1,000,000-recipient campaign: memory, not time
# the send path against a provider 100 ms away (BENCH_DELAY_MS), HTTP/2
# (http2 = auto, the default) against HTTP/1.1 (http2 = false)
bench-latency: build
	@$(MAKE) --no-print-directory deps
	bash tests/bench/latency.sh $(BUILD)

bench-export: build
	bash tests/bench/export.sh $(BUILD)

package: build
	cd $(BUILD) && cpack -G DEB

bench-webhooks: build
	@$(MAKE) --no-print-directory deps EXTRA_DEPS="$(BENCH_DEPS)"
	bash tests/bench/webhooks.sh $(BUILD)

# smtp-sink comes with postfix; preseeded to "No configuration" and never
# allowed to remove another installed mail server (apt --no-remove)
bench-smtp: build
	@command -v smtp-sink >/dev/null || [ -x /usr/sbin/smtp-sink ] || { \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  echo "postfix postfix/main_mailer_type select No configuration" | $$SUDO debconf-set-selections && \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-remove postfix; }
	bash tests/bench/smtp.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) build-fuzz
