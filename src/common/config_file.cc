#include "common/config_file.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <iostream>
#include <sstream>

namespace rdb {
namespace {

constexpr const char* kConfigFlag = "--config";
constexpr const char* kPrintFlag = "--print-default-config";

bool shown_in_config(const CLI::Option* opt) {
  if (!opt->get_configurable() || opt->get_lnames().empty()) {
    return false;
  }
  const std::string& name = opt->get_lnames().front();
  return name != "help" && name != "config" && name != "print-default-config" && name.rfind("test-", 0) != 0;
}

// A TOML basic string: quotes, backslashes and control characters escaped.
std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Printed bare (an integer or decimal), not as a string: both read back the same (CLI11 gets
// text either way), the bare form is what a reader expects of a number.
bool looks_numeric(const std::string& value) {
  std::size_t digits = 0;
  std::size_t dots = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c >= '0' && c <= '9') {
      ++digits;
    } else if (c == '.' && digits > 0 && dots == 0) {
      ++dots;
    } else if (c != '-' || i != 0) {
      return false;
    }
  }
  return digits > 0 && value.back() != '.';
}

class TomlConfig final : public CLI::Config {
 public:
  TomlConfig(const CLI::App* app, std::string name) : app_(app), name_(std::move(name)) {}

  std::string to_config(const CLI::App* app, bool /*default_also*/, bool /*write_description*/,
                        std::string /*prefix*/) const override {
    std::ostringstream out;
    out << fmt::format("# {} configuration (TOML), printed by --print-default-config with every default.\n", name_);
    out << fmt::format("# Start with `{} --config FILE`. Every key is the flag of the same name; flags given\n", name_);
    out << "# on the command line override this file. Keys without a default are commented out.\n";
    for (const CLI::Option* opt : app->get_options()) {
      if (!shown_in_config(opt)) {
        continue;
      }
      const std::string& name = opt->get_lnames().front();
      out << "\n";
      std::istringstream description(opt->get_description());
      for (std::string line; std::getline(description, line);) {
        out << "# " << line << "\n";
      }
      const bool flag = opt->get_expected_min() == 0;
      const bool list = opt->get_expected_max() > 1;
      std::string value = opt->get_default_str();
      if (flag) {
        out << name << " = " << (value.empty() ? "false" : value) << "\n";
      } else if (value.empty() || list) {
        out << "# " << name << " = " << (list ? "[]" : "\"\"") << "  (no default)\n";
      } else if (looks_numeric(value)) {
        out << name << " = " << value << "\n";
      } else {
        out << name << " = " << toml_string(value) << "\n";
      }
    }
    return out.str();
  }

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    const std::string file = app_->get_config_ptr() != nullptr ? app_->get_config_ptr()->as<std::string>() : "";
    std::string text((std::istreambuf_iterator<char>(input)), std::istreambuf_iterator<char>());
    toml::table table;
    try {
      table = toml::parse(text, file);
    } catch (const toml::parse_error& e) {
      throw CLI::ConfigError(fmt::format("config file {}: line {}, column {}: {}", file, e.source().begin.line,
                                         e.source().begin.column, e.description()));
    }
    std::vector<CLI::ConfigItem> items;
    for (const auto& [key, node] : table) {
      const std::string name(key.str());
      const CLI::Option* opt = app_->get_option_no_throw("--" + name);
      // The test-only switches (builds with them) are keys too, though not printed.
      const bool is_test_switch = opt != nullptr && name.rfind("test-", 0) == 0;
      if (opt == nullptr || (!shown_in_config(opt) && !is_test_switch)) {
        throw CLI::ConfigError(
            fmt::format("config file {}: unknown key '{}' (line {}): {} has no flag --{}; "
                        "--print-default-config lists every key",
                        file, name, key.source().begin.line, name_, name));
      }
      CLI::ConfigItem item;
      item.name = name;
      if (const toml::array* array = node.as_array()) {
        for (const auto& element : *array) {
          item.inputs.push_back(scalar(name, element, file));
        }
      } else {
        item.inputs.push_back(scalar(name, node, file));
      }
      items.push_back(std::move(item));
    }
    return items;
  }

 private:
  static std::string scalar(const std::string& name, const toml::node& node, const std::string& file) {
    if (const auto* s = node.as_string()) {
      return s->get();
    }
    if (const auto* i = node.as_integer()) {
      return std::to_string(i->get());
    }
    if (const auto* b = node.as_boolean()) {
      return b->get() ? "true" : "false";
    }
    if (const auto* f = node.as_floating_point()) {
      return fmt::format("{}", f->get());
    }
    throw CLI::ConfigError(
        fmt::format("config file {}: key '{}' (line {}) must be a string, number, boolean or "
                    "an array of them",
                    file, name, node.source().begin.line));
  }

  const CLI::App* app_;
  std::string name_;
};

}  // namespace

void add_config_file_flags(CLI::App& app, const std::string& program) {
  app.config_formatter(std::make_shared<TomlConfig>(&app, program));
  app.set_config(kConfigFlag, "", "read flags from this TOML file (flags on the command line override it)");
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_flag_callback(
      kPrintFlag,
      [&app] {
        std::cout << app.config_to_str(true, true);
        throw CLI::Success();
      },
      "print a full config file with every key's default and description, and exit");
}

}  // namespace rdb
