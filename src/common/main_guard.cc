#include "common/main_guard.h"

#include <fmt/format.h>

#include <exception>

namespace rdb {

int run_guarded(std::string_view program, int (*run)(int, char**), int argc, char** argv, int failure_code) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}: fatal: {}\n", program, e.what());
    return failure_code;
  }
}

}  // namespace rdb
