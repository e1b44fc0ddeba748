#include "support/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace rdb::testing {

namespace {

// The parent's environment with `overrides` applied, built before fork (the child
// of a multi-threaded parent must not allocate).
std::vector<std::string> child_environment(const std::vector<std::string>& overrides) {
  std::vector<std::string> env;
  auto overridden = [&](const std::string& entry) {
    std::string name = entry.substr(0, entry.find('='));
    for (const auto& o : overrides) {
      if (o.substr(0, o.find('=')) == name) {
        return true;
      }
    }
    return false;
  };
  for (char** e = environ; *e != nullptr; ++e) {
    if (!overridden(*e)) {
      env.emplace_back(*e);
    }
  }
  env.insert(env.end(), overrides.begin(), overrides.end());
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) {
    out.push_back(s.data());
  }
  out.push_back(nullptr);
  return out;
}

}  // namespace

Subprocess::Subprocess(std::vector<std::string> argv, std::string log_prefix, const std::vector<std::string>& env)
    : out_path_(log_prefix + ".out"), err_path_(log_prefix + ".err") {
  std::vector<char*> args = c_strings(argv);
  std::vector<std::string> env_strings = child_environment(env);
  std::vector<char*> envp = c_strings(env_strings);
  int out_fd = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd < 0 || err_fd < 0) {
    throw std::runtime_error("cannot open child log files at " + log_prefix);
  }
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    // Die with the test runner, so a crashed test never leaves daemons behind.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  ::close(out_fd);
  ::close(err_fd);
  if (pid_ < 0) {
    throw std::runtime_error("fork failed");
  }
}

Subprocess::~Subprocess() {
  if (running()) {
    kill_now();
  }
}

bool Subprocess::running() {
  if (exit_code_ || pid_ <= 0) {
    return false;
  }
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

void Subprocess::signal(int sig) {
  if (running()) {
    ::kill(pid_, sig);
  }
}

bool Subprocess::pause() {
  signal(SIGSTOP);
  auto all_stopped = [this] {
    std::error_code ec;
    bool any = false;
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/task", ec)) {
      std::ifstream in(task.path() / "stat");
      std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      auto close = stat.rfind(')');
      if (close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] != 'T') {
        return false;
      }
      any = true;
    }
    return any;
  };
  return poll_until(all_stopped, std::chrono::seconds(10));
}

std::optional<int> Subprocess::wait_for_exit(std::chrono::milliseconds timeout) {
  poll_until([&] { return !running(); }, timeout);
  return exit_code_;
}

void Subprocess::kill_now() {
  if (!running()) {
    return;
  }
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  exit_code_ = 128 + SIGKILL;
}

std::string Subprocess::stdout_text() const {
  return read_file(out_path_);
}
std::string Subprocess::stderr_text() const {
  return read_file(err_path_);
}

namespace {

// The commands the current test ran (run_command), so that any failed assertion
// shows what they printed to stderr, whether or not the assertion streamed it.
std::mutex g_commands_mu;
std::vector<std::string> g_commands;

class PrintCommandsOnFailure final : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo&) override {
    std::lock_guard lock(g_commands_mu);
    g_commands.clear();
  }
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) {
      return;
    }
    std::lock_guard lock(g_commands_mu);
    std::size_t first = g_commands.size() > 3 ? g_commands.size() - 3 : 0;
    for (std::size_t i = first; i < g_commands.size(); ++i) {
      std::cout << g_commands[i];
    }
  }
};

[[maybe_unused]] const bool g_listener_registered = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new PrintCommandsOnFailure);
  return true;
}();

void remember(const std::vector<std::string>& argv, const CommandResult& r) {
  std::string line = "  command:";
  for (const auto& a : argv) {
    line += " " + a;
  }
  line += "\n  exit code " + std::to_string(r.exit_code) + ", stderr:\n" + r.err + "\n";
  std::lock_guard lock(g_commands_mu);
  g_commands.push_back(std::move(line));
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv, const std::string& scratch_dir,
                          std::chrono::milliseconds timeout) {
  static std::atomic<int> counter{0};
  std::string prefix = scratch_dir + "/cmd-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  Subprocess p(argv, prefix);
  CommandResult r;
  auto code = p.wait_for_exit(timeout);
  if (!code) {
    p.kill_now();
    r.exit_code = -1;
  } else {
    r.exit_code = *code;
  }
  r.out = p.stdout_text();
  r.err = p.stderr_text();
  remember(argv, r);
  return r;
}

bool poll_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    if (condition()) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(pause);  // back-off between polls, not a wait for an event
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string bin_dir() {
  const char* override_dir = std::getenv("RDB_BIN_DIR");
  return override_dir != nullptr && *override_dir != '\0' ? override_dir : RDB_BIN_DIR;
}

}  // namespace rdb::testing
