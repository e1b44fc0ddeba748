#include "common/config_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

namespace rdb {
namespace {

// A small daemon's flags, parsed from a command line and a config file.
struct Flags {
  std::string addr = "127.0.0.1:1";
  std::uint64_t tick_ms = 100;
  bool lease = false;
  std::string optional;
  std::vector<std::string> names;
};

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rdb-config-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& text) {
    std::string path = dir_ + "/c" + std::to_string(files_++) + ".toml";
    std::ofstream(path) << text;
    return path;
  }

  void add_flags(CLI::App& app, Flags& f) {
    app.add_option("--addr", f.addr, "listen address")->capture_default_str();
    app.add_option("--tick-ms", f.tick_ms, "tick\nin ms")->capture_default_str()->check(CLI::Range(1, 1000));
    app.add_flag("--lease", f.lease, "lease reads");
    app.add_option("--optional", f.optional, "no default");
    app.add_option("--names", f.names, "several");
    add_config_file_flags(app, "rdb-test");
  }

  // Parses `args` (after the program name); returns CLI11's exit code (0: parsed).
  int parse(Flags& f, std::vector<std::string> args, std::string* error = nullptr) {
    CLI::App app{"test"};
    add_flags(app, f);
    args.insert(args.begin(), "rdb-test");
    std::vector<const char*> argv;
    for (const auto& a : args) {
      argv.push_back(a.c_str());
    }
    try {
      app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      if (error != nullptr) {
        *error = e.what();
      }
      return e.get_exit_code();
    }
    return 0;
  }

  std::string dir_;
  int files_ = 0;
};

TEST_F(ConfigFileTest, KeysSetFlagsAndTheCommandLineOverridesThem) {
  std::string path = write(
      "addr = \"10.0.0.1:5\"\n"
      "tick-ms = 250\n"
      "lease = true\n"
      "names = [\"a\", \"b\"]\n");
  Flags f;
  ASSERT_EQ(parse(f, {"--config", path}), 0);
  EXPECT_EQ(f.addr, "10.0.0.1:5");
  EXPECT_EQ(f.tick_ms, 250u);
  EXPECT_TRUE(f.lease);
  EXPECT_EQ(f.names, (std::vector<std::string>{"a", "b"}));

  Flags g;
  ASSERT_EQ(parse(g, {"--config", path, "--tick-ms", "7", "--addr", "h:9"}), 0);
  EXPECT_EQ(g.tick_ms, 7u);
  EXPECT_EQ(g.addr, "h:9");
  EXPECT_TRUE(g.lease);  // from the file: not given on the command line
}

TEST_F(ConfigFileTest, BadFilesAreRefusedNamingWhatIsWrong) {
  std::string error;
  Flags f;
  EXPECT_NE(parse(f, {"--config", write("tick-ms = 5\nbogus-key = 1\n")}, &error), 0);
  EXPECT_NE(error.find("unknown key 'bogus-key' (line 2)"), std::string::npos) << error;

  EXPECT_NE(parse(f, {"--config", write("[raft]\ntick-ms = 5\n")}, &error), 0);
  EXPECT_NE(error.find("unknown key 'raft'"), std::string::npos) << error;

  EXPECT_NE(parse(f, {"--config", write("addr = \n")}, &error), 0);
  EXPECT_NE(error.find("line 1"), std::string::npos) << error;

  EXPECT_NE(parse(f, {"--config", write("tick-ms = 5000\n")}, &error), 0);
  EXPECT_NE(error.find("--tick-ms"), std::string::npos) << error;

  EXPECT_NE(parse(f, {"--config", write("tick-ms = \"many\"\n")}, &error), 0);
  EXPECT_NE(error.find("--tick-ms"), std::string::npos) << error;

  EXPECT_NE(parse(f, {"--config", write("addr = 1979-05-27\n")}, &error), 0);
  EXPECT_NE(error.find("key 'addr' (line 1) must be"), std::string::npos) << error;

  EXPECT_NE(parse(f, {"--config", write("help = true\n")}, &error), 0);
  EXPECT_NE(error.find("unknown key 'help'"), std::string::npos) << error;

  EXPECT_NE(parse(f, {"--config", dir_ + "/missing.toml"}, &error), 0);
  EXPECT_NE(error.find("missing.toml"), std::string::npos) << error;
}

TEST_F(ConfigFileTest, ThePrintedDefaultConfigReadsBackToTheDefaults) {
  CLI::App app{"test"};
  Flags f;
  add_flags(app, f);
  std::string printed = app.config_to_str(true, true);
  EXPECT_NE(printed.find("# listen address\naddr = \"127.0.0.1:1\"\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("# tick\n# in ms\ntick-ms = 100\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("lease = false\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("# optional = \"\"  (no default)"), std::string::npos) << printed;
  EXPECT_EQ(printed.find("print-default-config ="), std::string::npos) << printed;
  EXPECT_EQ(printed.find("\nconfig ="), std::string::npos) << printed;

  Flags g;
  g.addr = "changed";
  g.tick_ms = 1;
  ASSERT_EQ(parse(g, {"--config", write(printed)}), 0);
  EXPECT_EQ(g.addr, "127.0.0.1:1");
  EXPECT_EQ(g.tick_ms, 100u);
  EXPECT_FALSE(g.lease);
}

TEST_F(ConfigFileTest, PrintDefaultConfigExitsWithSuccess) {
  Flags f;
  testing::internal::CaptureStdout();
  int code = parse(f, {"--print-default-config"});
  std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(code, 0);  // CLI::Success
  EXPECT_NE(out.find("# rdb-test configuration (TOML)"), std::string::npos) << out;
  EXPECT_NE(out.find("tick-ms = 100"), std::string::npos) << out;
}

}  // namespace
}  // namespace rdb
