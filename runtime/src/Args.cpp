// Command-line parsing for the example programs (see Args.h for the rules).
#include "kiln/rt/Args.h"

#include "kiln/rt/Error.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace kiln::rt {

static bool isOption(std::string_view text) { return text.size() > 2 && text.starts_with("--"); }

Args::Args(int argc, char** argv, std::string usage) : Usage(std::move(usage)) {
  Program = argc > 0 && argv[0] ? argv[0] : "program";
  if (size_t slash = Program.rfind('/'); slash != std::string::npos)
    Program.erase(0, slash + 1);

  bool afterDashDash = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view text = argv[i];
    if (!afterDashDash && text == "--") {
      afterDashDash = true;
      continue;
    }
    if (!afterDashDash && (text == "--help" || text == "-h")) {
      std::fputs(Usage.c_str(), stdout);
      if (Usage.empty() || Usage.back() != '\n')
        std::fputc('\n', stdout);
      std::fflush(stdout);
      std::exit(0);
    }
    Tokens.push_back({std::string(text), false, afterDashDash});
  }
}

bool Args::lookup(std::string_view name, bool takesValue, std::string& value, bool& hasValue) {
  bool found = false;
  for (size_t i = 0; i < Tokens.size(); ++i) {
    Token& tok = Tokens[i];
    // Used tokens still match, so asking for an option twice gives the same
    // answer; value tokens never look like options, so they cannot match.
    if (tok.AfterDashDash || !isOption(tok.Text))
      continue;
    std::string_view body = std::string_view(tok.Text).substr(2);
    if (!body.starts_with(name))
      continue;
    std::string_view rest = body.substr(name.size());
    if (!rest.empty() && rest[0] != '=')
      continue;

    tok.Used = true;
    found = true;
    if (!rest.empty()) {
      value = std::string(rest.substr(1));
      hasValue = true;
      continue;
    }
    hasValue = false;
    if (!takesValue)
      continue;
    bool nextIsValue = i + 1 < Tokens.size() && !Tokens[i + 1].AfterDashDash &&
                       !isOption(Tokens[i + 1].Text);
    if (!nextIsValue)
      fail("--%.*s: missing value", (int)name.size(), name.data());
    Tokens[i + 1].Used = true;
    value = Tokens[i + 1].Text;
    hasValue = true;
    ++i;
  }
  return found;
}

int64_t Args::getInt(std::string_view name, int64_t def) {
  std::string text;
  bool hasValue = false;
  if (!lookup(name, true, text, hasValue))
    return def;
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec == std::errc::result_out_of_range)
    fail("--%.*s: integer '%s' is out of range", (int)name.size(), name.data(), text.c_str());
  if (ec != std::errc() || ptr != end)
    fail("--%.*s: expected an integer, got '%s'", (int)name.size(), name.data(), text.c_str());
  return value;
}

double Args::getDouble(std::string_view name, double def) {
  std::string text;
  bool hasValue = false;
  if (!lookup(name, true, text, hasValue))
    return def;
  double value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || !std::isfinite(value))
    fail("--%.*s: expected a finite number, got '%s'", (int)name.size(), name.data(),
         text.c_str());
  return value;
}

std::string Args::getString(std::string_view name, std::string_view def) {
  std::string text;
  bool hasValue = false;
  if (!lookup(name, true, text, hasValue))
    return std::string(def);
  return text;
}

bool Args::flag(std::string_view name) {
  std::string text;
  bool hasValue = false;
  if (!lookup(name, false, text, hasValue))
    return false;
  if (!hasValue || text == "true" || text == "1")
    return true;
  if (text == "false" || text == "0")
    return false;
  fail("--%.*s: expected true or false, got '%s'", (int)name.size(), name.data(), text.c_str());
}

std::vector<std::string> Args::positional() {
  std::vector<std::string> out;
  for (Token& tok : Tokens) {
    if (tok.Used || (!tok.AfterDashDash && isOption(tok.Text)))
      continue;
    tok.Used = true;
    out.push_back(tok.Text);
  }
  return out;
}

void Args::finish() {
  std::string list;
  for (const Token& tok : Tokens) {
    if (tok.Used)
      continue;
    if (!list.empty())
      list += ", ";
    if (!tok.AfterDashDash && isOption(tok.Text))
      list += "unknown option " + tok.Text;
    else
      list += "unexpected argument '" + tok.Text + "'";
  }
  if (!list.empty())
    fail("%s (see --help)", list.c_str());
}

} // namespace kiln::rt
