// A tiny command-line parser for the example programs:
//   --name value, --name=value, flags as --name, --help.
// Options are looked up lazily by the get* calls; finish() then rejects any
// argument nobody asked for, so typos do not pass silently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::rt {

class Args {
public:
  /// Prints `usage` to stdout and exits 0 if --help or -h is given.
  Args(int argc, char** argv, std::string usage);

  /// The option's value, or `def` if absent. If an option is given more than
  /// once, the last one wins. Throw Error naming the option and the text for a
  /// missing or malformed value.
  int64_t getInt(std::string_view name, int64_t def);
  double getDouble(std::string_view name, double def);
  std::string getString(std::string_view name, std::string_view def);

  /// True if --name (or --name=true/1) is given; --name=false/0 gives false.
  bool flag(std::string_view name);

  /// Arguments that are neither options nor option values (and everything
  /// after "--"). Call it after the get* calls: until an option is asked for,
  /// its space-separated value looks positional.
  std::vector<std::string> positional();

  /// Throws Error listing every argument no call above consumed, e.g.
  /// "unknown option --lrr, unexpected argument '0.1' (see --help)".
  void finish();

  const std::string& program() const { return Program; }
  const std::string& usage() const { return Usage; }

private:
  struct Token {
    std::string Text;
    bool Used = false;
    bool AfterDashDash = false;
  };

  /// Finds the last --name / --name=v; returns false if absent. Marks the
  /// tokens used; `value` gets the text or, with !takesValue, the "=v" part.
  bool lookup(std::string_view name, bool takesValue, std::string& value, bool& hasValue);

  std::string Program;
  std::string Usage;
  std::vector<Token> Tokens;
};

} // namespace kiln::rt
