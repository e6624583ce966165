// Parsing .kir text back into a graph. Every error names FILE:LINE:COL and
// the offending token.
#include <cerrno>
#include <cstdlib>
#include <fmt/format.h>
#include <map>

#include "Shapes.h"
#include "Text.h"

namespace kiln::ir {
namespace {

enum class TokKind { Eof, Ident, Value, Global, Int, Float, String, Punct };

struct Token {
  TokKind kind = TokKind::Eof;
  std::string text;  // identifier/name without sigil, string contents, punct
  int line = 1, col = 1;
};

class Lexer {
public:
  Lexer(std::string_view src, std::string_view file) : src_(src), file_(file) {}

  [[noreturn]] void error(int line, int col, std::string_view msg) const {
    throw CompileError(fmt::format("{}:{}:{}: {}", file_, line, col, msg));
  }

  Token next() {
    skipSpace();
    Token t;
    t.line = line_;
    t.col = col_;
    if (pos_ >= src_.size()) return t;
    char c = src_[pos_];
    auto isIdStart = [](char ch) { return std::isalpha(static_cast<unsigned char>(ch)) || ch == '_'; };
    auto isIdChar = [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.';
    };
    if (c == '%' || c == '@') {
      advance();
      t.kind = c == '%' ? TokKind::Value : TokKind::Global;
      while (pos_ < src_.size() && isIdChar(src_[pos_])) t.text += advance();
      if (t.text.empty()) error(t.line, t.col, fmt::format("expected a name after '{}'", c));
      return t;
    }
    if (isIdStart(c)) {
      t.kind = TokKind::Ident;
      while (pos_ < src_.size() && isIdChar(src_[pos_])) t.text += advance();
      if (t.text == "nan" || t.text == "inf") t.kind = TokKind::Float;
      return t;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || ((c == '-' || c == '+') && pos_ + 1 < src_.size() &&
                                                        (std::isdigit(static_cast<unsigned char>(src_[pos_ + 1])) ||
                                                         src_[pos_ + 1] == 'i'))) {
      t.kind = TokKind::Int;
      t.text += advance();
      while (pos_ < src_.size()) {
        char d = src_[pos_];
        if (std::isdigit(static_cast<unsigned char>(d))) {
          t.text += advance();
        } else if (d == '.' || d == 'e' || d == 'E' || d == 'i' || d == 'n' || d == 'f' ||
                   ((d == '-' || d == '+') && (t.text.back() == 'e' || t.text.back() == 'E'))) {
          t.kind = TokKind::Float;
          t.text += advance();
        } else {
          break;
        }
      }
      return t;
    }
    if (c == '"') {
      advance();
      t.kind = TokKind::String;
      while (true) {
        if (pos_ >= src_.size() || src_[pos_] == '\n') error(t.line, t.col, "unterminated string");
        char ch = advance();
        if (ch == '"') break;
        if (ch == '\\') {
          if (pos_ >= src_.size() || src_[pos_] == '\n') error(t.line, t.col, "unterminated string");
          ch = advance();
        }
        t.text += ch;
      }
      return t;
    }
    if (c == '-' && pos_ + 1 < src_.size() && src_[pos_ + 1] == '>') {
      advance();
      advance();
      t.kind = TokKind::Punct;
      t.text = "->";
      return t;
    }
    if (std::string_view("=,:[](){}").find(c) != std::string_view::npos) {
      t.kind = TokKind::Punct;
      t.text = std::string(1, advance());
      return t;
    }
    error(t.line, t.col, fmt::format("unexpected character '{}'", c));
  }

private:
  char advance() {
    char c = src_[pos_++];
    if (c == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
    return c;
  }
  void skipSpace() {
    while (pos_ < src_.size()) {
      char c = src_[pos_];
      if (c == '#' || (c == '/' && pos_ + 1 < src_.size() && src_[pos_ + 1] == '/')) {
        while (pos_ < src_.size() && src_[pos_] != '\n') advance();
      } else if (std::isspace(static_cast<unsigned char>(c))) {
        advance();
      } else {
        break;
      }
    }
  }

  std::string_view src_;
  std::string_view file_;
  size_t pos_ = 0;
  int line_ = 1, col_ = 1;
};

std::string describe(const Token& t) {
  switch (t.kind) {
    case TokKind::Eof: return "end of input";
    case TokKind::Value: return fmt::format("'%{}'", t.text);
    case TokKind::Global: return fmt::format("'@{}'", t.text);
    case TokKind::String: return fmt::format("string \"{}\"", t.text);
    default: return fmt::format("'{}'", t.text);
  }
}

class Parser {
public:
  Parser(std::string_view src, std::string_view file) : lex_(src, file) { tok_ = lex_.next(); }

  Graph parse() {
    while (tok_.kind != TokKind::Eof) {
      if (tok_.kind == TokKind::Value) parseNode();
      else if (tok_.kind == TokKind::Ident && tok_.text == "func") parseFunction();
      else error(tok_, fmt::format("expected '%value = ...' or 'func', found {}", describe(tok_)));
    }
    return std::move(g_);
  }

private:
  [[noreturn]] void error(const Token& t, std::string_view msg) { lex_.error(t.line, t.col, msg); }

  Token take() {
    Token t = tok_;
    tok_ = lex_.next();
    return t;
  }
  bool isPunct(std::string_view p) const { return tok_.kind == TokKind::Punct && tok_.text == p; }
  bool accept(std::string_view p) {
    if (!isPunct(p)) return false;
    take();
    return true;
  }
  void expect(std::string_view p) {
    if (!accept(p)) error(tok_, fmt::format("expected '{}', found {}", p, describe(tok_)));
  }

  int64_t parseInt() {
    if (tok_.kind != TokKind::Int) error(tok_, fmt::format("expected an integer, found {}", describe(tok_)));
    Token t = take();
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(t.text.c_str(), &end, 10);
    if (errno == ERANGE || *end) error(t, fmt::format("bad integer '{}'", t.text));
    return v;
  }

  ValueId parseValueRef() {
    if (tok_.kind != TokKind::Value) error(tok_, fmt::format("expected a value like %3, found {}", describe(tok_)));
    Token t = take();
    auto it = names_.find(t.text);
    if (it == names_.end()) error(t, fmt::format("use of undefined value '%{}'", t.text));
    return it->second;
  }

  AttrValue parseAttrValue() {
    if (tok_.kind == TokKind::Int) return parseInt();
    if (tok_.kind == TokKind::Float) {
      Token t = take();
      char* end = nullptr;
      double d = std::strtod(t.text.c_str(), &end);
      if (*end) error(t, fmt::format("bad number '{}'", t.text));
      return d;
    }
    if (tok_.kind == TokKind::String) return take().text;
    if (accept("[")) {
      std::vector<int64_t> v;
      if (!accept("]")) {
        do v.push_back(parseInt());
        while (accept(","));
        expect("]");
      }
      return v;
    }
    error(tok_, fmt::format("expected an attribute value, found {}", describe(tok_)));
  }

  TensorType parseType() {
    if (tok_.kind != TokKind::Ident || (tok_.text != "f32" && tok_.text != "i32"))
      error(tok_, fmt::format("expected a type like f32[2,3], found {}", describe(tok_)));
    TensorType t;
    t.dtype = take().text == "f32" ? DType::F32 : DType::I32;
    expect("[");
    if (!accept("]")) {
      do {
        Token dt = tok_;
        int64_t d = parseInt();
        if (d <= 0) error(dt, fmt::format("dimension must be positive, found {}", d));
        t.shape.push_back(d);
      } while (accept(","));
      expect("]");
    }
    return t;
  }

  void parseNode() {
    Token def = take();
    if (names_.count(def.text)) error(def, fmt::format("value '%{}' is defined twice", def.text));
    expect("=");
    if (tok_.kind != TokKind::Ident) error(tok_, fmt::format("expected an op name, found {}", describe(tok_)));
    Token opTok = take();
    auto op = opFromName(opTok.text);
    if (!op) error(opTok, fmt::format("unknown op '{}'", opTok.text));
    Node n;
    n.op = *op;
    if (tok_.kind == TokKind::String) n.name = take().text;
    if (tok_.kind == TokKind::Value) {
      do n.operands.push_back(parseValueRef());
      while (accept(","));
    }
    if (!arityAccepts(n.op, n.operands.size()))
      error(opTok, fmt::format("'{}' takes {}, found {}", opTok.text, arityText(n.op), n.operands.size()));
    if (isSource(n.op) && n.name.empty()) error(opTok, fmt::format("'{}' needs a quoted name", opTok.text));
    if (accept("{")) {
      if (!accept("}")) {
        do {
          if (tok_.kind != TokKind::Ident) error(tok_, fmt::format("expected an attribute name, found {}", describe(tok_)));
          Token key = take();
          if (n.attrs.has(key.text)) error(key, fmt::format("attribute '{}' given twice", key.text));
          expect("=");
          n.attrs.set(key.text, parseAttrValue());
        } while (accept(","));
        expect("}");
      }
    }
    expect(":");
    Token typeTok = tok_;
    n.type = parseType();
    if (!checkedNumElements(n.type.shape))
      error(typeTok, fmt::format("type {} has too many elements", typeStr(n.type)));
    if (tok_.kind == TokKind::Ident && tok_.text == "loc") {
      take();
      expect("(");
      if (tok_.kind != TokKind::String) error(tok_, "expected a quoted location like \"model.cpp:12\"");
      Token l = take();
      auto colon = l.text.rfind(':');
      std::string digits = colon == std::string::npos ? "" : l.text.substr(colon + 1);
      bool okLine = !digits.empty() && digits.size() < 10 &&
                    digits.find_first_not_of("0123456789") == std::string::npos && std::stoi(digits) > 0;
      if (colon == 0 || !okLine) error(l, "location must look like \"file:line\"");
      n.loc.file = l.text.substr(0, colon);
      n.loc.line = std::stoi(digits);
      expect(")");
    }
    TypeResult r = inferType(g_, n);
    if (!r.type) error(opTok, r.error);
    if (*r.type != n.type)
      error(typeTok, fmt::format("{}: declared type {} but the operands give {}", opTok.text, typeStr(n.type),
                                 typeStr(*r.type)));
    names_[def.text] = g_.add(std::move(n));
  }

  void parseFunction() {
    take();  // func
    if (tok_.kind != TokKind::Global) error(tok_, fmt::format("expected a function name like @predict, found {}", describe(tok_)));
    Function f;
    f.name = take().text;
    expect("(");
    if (!accept(")")) {
      do f.inputs.push_back(parseValueRef());
      while (accept(","));
      expect(")");
    }
    expect("->");
    expect("(");
    if (!accept(")")) {
      do {
        if (tok_.kind != TokKind::Ident) error(tok_, fmt::format("expected an output name, found {}", describe(tok_)));
        Output o;
        o.name = take().text;
        expect("=");
        o.value = parseValueRef();
        f.outputs.push_back(o);
      } while (accept(","));
      expect(")");
    }
    if (tok_.kind == TokKind::Ident && tok_.text == "updates") {
      take();
      expect("(");
      do {
        Update u;
        u.target = parseValueRef();
        expect("=");
        u.value = parseValueRef();
        f.updates.push_back(u);
      } while (accept(","));
      expect(")");
    }
    g_.functions().push_back(std::move(f));
  }

  Lexer lex_;
  Token tok_;
  Graph g_;
  std::map<std::string, ValueId> names_;
};

}  // namespace

Graph parseGraph(std::string_view text, std::string_view fileName) {
  Graph g = Parser(text, fileName).parse();
  auto problems = verifyGraph(g);
  if (problems.empty()) return g;
  std::string msg;
  for (const std::string& p : problems) msg += fmt::format("{}{}: {}", msg.empty() ? "" : "\n", fileName, p);
  throw CompileError(msg);
  return g;
}

}  // namespace kiln::ir
