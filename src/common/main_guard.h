// run_guarded: the body of every rdb executable's main().
//
// Errors are values in rdb, but a library underneath (gRPC, protobuf, the
// standard library) may still throw. Instead of terminating with an unhelpful
// abort, the program prints "<program>: fatal: <what>" and exits with
// `failure_code`. Thread safety: call once, from main().
#pragma once

#include <string_view>

namespace rdb {

int run_guarded(std::string_view program, int (*run)(int, char**), int argc, char** argv, int failure_code);

}  // namespace rdb
