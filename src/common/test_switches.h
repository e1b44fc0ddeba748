// Whether this build carries the test-only switches that break a rule on purpose
// (--test-unsafe-local-reads, --test-ack-before-commit, the Raft core's TestBugs),
// so tests can show that their checkers catch the bug. CMake option
// RDB_TEST_SWITCHES: ON for development and CI builds, OFF for anything installed;
// with it OFF the switches are neither parsed nor compiled in (dead code).
#pragma once

#ifndef RDB_TEST_SWITCHES
#define RDB_TEST_SWITCHES 0
#endif

namespace rdb {
inline constexpr bool kTestSwitches = RDB_TEST_SWITCHES != 0;
}  // namespace rdb
