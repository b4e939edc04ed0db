#!/usr/bin/env bash
# The host library's concurrency tests under ThreadSanitizer: libqtx-host's
# I/O thread against callers on other threads, the Manager, the C API, and
# the fault-injection shim. Builds just those tests with clang into
# build-tsan/ (about two minutes on 2 cores; scripts/test.sh runs this as
# its last stage). The agent they talk to is the plain one from build/
# (brought up to date first, and named to the TSan tree as QTX_TEST_AGENT,
# so that tree builds no agent): the races looked for are the library's, and
# two hundred instrumented agents would only be slow.
#
#   scripts/tsan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
TESTS="host_agent_test host_link_test host_manager_test host_callbacks_test host_metrics_test c_api_test fault_injection_test"

[ -f build/CMakeCache.txt ] || cmake --preset dev >/dev/null
cmake --build build -j "$JOBS" --target qtx-agent

# Preset tsan: clang-14, -fsanitize=thread, QTX_TEST_AGENT=build/bin/qtx-agent.
cmake --preset tsan >/dev/null
# shellcheck disable=SC2086
cmake --build --preset tsan -j "$JOBS" --target $TESTS
# halt_on_error: the first race fails the test instead of scrolling past.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
for t in $TESTS; do
  echo "=== $t"
  build-tsan/bin/$t --gtest_brief=1
done
echo "=== no data race reported"
