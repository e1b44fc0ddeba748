// Child processes for integration tests: spawn, signal, wait, and always reap.
//
// A Subprocess owns one child. The child is SIGKILLed when the *thread* that
// started it exits (PR_SET_PDEATHSIG, so a crashed test never leaks daemons):
// start long-lived daemons from a thread that outlives them.
// A Subprocess owns one child. Its destructor SIGKILLs a still-running child and
// waits for it, so a failing test never leaks processes. stdout and stderr go to
// files (readable while the child runs) so a test can show them on failure.
// Thread safety: one owner thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace rdb::testing {

class Subprocess {
 public:
  // Starts argv[0] (a path) with the given arguments; output goes to
  // `log_prefix`.out / .err. The child inherits this process's environment with
  // `env` ("NAME=value" entries) replacing or adding variables.
  Subprocess(std::vector<std::string> argv, std::string log_prefix, const std::vector<std::string>& env = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // SIGSTOP, then waits until every thread is stopped: the signal is taken by one thread,
  // which stops the others, and under load the rest keep running (and answering) for
  // milliseconds after kill() returns. False when they did not all stop within 10 s.
  bool pause();
  // Waits up to `timeout` for exit; returns the exit code (128+signal if killed), or nullopt.
  std::optional<int> wait_for_exit(std::chrono::milliseconds timeout);
  // SIGKILL and reap.
  void kill_now();
  std::string stdout_text() const;
  std::string stderr_text() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string out_path_;
  std::string err_path_;
};

// Runs a command to completion (bounded by timeout; killed after) and captures its output.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult run_command(const std::vector<std::string>& argv, const std::string& scratch_dir,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Polls `condition` every few milliseconds until it is true or `timeout` passes.
bool poll_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

std::string read_file(const std::string& path);

// Directory holding the built executables: $RDB_BIN_DIR, else the build's (set by CMake).
std::string bin_dir();

}  // namespace rdb::testing
