# rdb: the two commands a new user needs are `make playground` and `make test`.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2
CTEST_JOBS ?= 2

.PHONY: all deps configure build test package-check playground verify asan-test format tidy bench clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@if [ ! -f $(BUILD_DIR)/build.ninja ]; then \
	  cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE); \
	fi

build: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

# Every test CI runs: unit, integration (real processes) and the end-to-end script,
# first in the normal build, then again under AddressSanitizer + UBSan.
test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(CTEST_JOBS) --timeout 600
	$(MAKE) package-check
	$(MAKE) asan-test

# A Release build of what rdb installs, installed into a clean prefix, examples/ built against
# it as a separate project and run, Debian packages built and inspected (scripts/package-check.sh).
package-check: deps
	JOBS=$(JOBS) scripts/package-check.sh build-release

# UBSan findings abort the process (so a daemon's error fails its test), as ASan's do.
SAN_ENV = UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1

# PD + store(s) on this machine, data under ./playground-data, until Ctrl-C.
playground: build
	scripts/playground.sh $(if $(TLS),--tls) $(PLAYGROUND_ARGS)

verify: build
	scripts/verify-core.sh $(BUILD_DIR)/bin

asan-test: deps
	@if [ ! -f build-asan/build.ninja ]; then \
	  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRDB_SANITIZE=ON; \
	fi
	cmake --build build-asan -j$(JOBS)
	$(SAN_ENV) ctest --test-dir build-asan --output-on-failure -j$(CTEST_JOBS) --timeout 900

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

tidy: build
	git ls-files 'src/*.cc' 'tools/*.cc' | xargs clang-tidy -p $(BUILD_DIR) --quiet

clean:
	rm -rf $(BUILD_DIR) build-asan build-release
