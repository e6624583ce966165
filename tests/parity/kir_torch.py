"""kir -> torch: parses kiln's textual IR (.kir) and evaluates a function of it
with PyTorch ops, so torch autograd can differentiate the same graph.

The semantics follow compiler/interp/Interpreter.cpp (the oracle). Each op
is one entry of OPS, keyed by its text name in compiler/ir/Ops.def:

    OPS["relu"] = lambda node, x: torch.relu(x)

A rule gets the parsed Node (for .attrs and .type) and the operand tensors,
and returns the result tensor. Sources (input, param, state) are bound by
name by the caller. A graph using an op with no rule fails before anything
is evaluated, naming every such op and its line.

Used as a library by check.py; `python3 kir_torch.py FILE.kir` parses a file
and prints a summary (a quick way to see that a dump is readable).
"""

import re
import sys
from dataclasses import dataclass, field

import torch


class KirError(Exception):
    """A .kir file that cannot be parsed or evaluated; the message names FILE:LINE."""


# ---------------------------------------------------------------------------
# Parsing

@dataclass
class TensorType:
    dtype: str  # "f32" or "i32"
    shape: tuple

    def __str__(self):
        return f"{self.dtype}[{','.join(str(d) for d in self.shape)}]"


@dataclass
class Node:
    id: str  # the value name without '%' (kiln prints numbers)
    op: str
    name: str  # sources only
    operands: list
    attrs: dict
    type: TensorType
    line: int  # line in the .kir file
    loc: str  # the model's source location, or ""

    def where(self, file):
        loc = f" (built at {self.loc})" if self.loc else ""
        return f"{file}:{self.line}: %{self.id} = {self.op}{loc}"


@dataclass
class Function:
    name: str
    inputs: list
    outputs: list  # [(name, value id)]
    updates: list  # [(target id, value id)]
    line: int


@dataclass
class Graph:
    file: str
    nodes: dict = field(default_factory=dict)  # id -> Node, in definition order
    functions: list = field(default_factory=list)

    def function(self, name=None):
        if name is None:
            if not self.functions:
                raise KirError(f"{self.file}: no func line")
            return self.functions[0]
        for f in self.functions:
            if f.name == name:
                return f
        known = ", ".join("@" + f.name for f in self.functions)
        raise KirError(f"{self.file}: no function @{name} (the file has {known or 'none'})")

    def sources(self):
        return [n for n in self.nodes.values() if n.op in SOURCE_OPS]

    def source(self, name):
        for n in self.sources():
            if n.name == name:
                return n
        raise KirError(f"{self.file}: no input, param or state named \"{name}\"")


SOURCE_OPS = ("input", "param", "state")

_TOKEN = re.compile(r"""
    (?P<space>\s+|\#[^\n]*|//[^\n]*)
  | (?P<value>%[A-Za-z0-9_.]+)
  | (?P<glob>@[A-Za-z0-9_.]+)
  | (?P<num>[-+]?(?:(?:inf|nan)(?![A-Za-z0-9_.])|[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<punct>->|[=,:\[\](){}])
""", re.VERBOSE)


def _tokenize(text, file):
    toks = []
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise KirError(f"{file}:{line}: unexpected character {text[pos]!r}")
        kind = m.lastgroup
        s = m.group()
        if kind != "space":
            if kind == "str":
                s = re.sub(r"\\(.)", r"\1", s[1:-1])
            elif kind in ("value", "glob"):
                s = s[1:]
            elif kind == "ident" and s in ("inf", "nan"):
                kind = "num"
            toks.append((kind, s, line))
        line += m.group().count("\n")
        pos = m.end()
    toks.append(("eof", "", line))
    return toks


class _Parser:
    def __init__(self, text, file):
        self.file = file
        self.toks = _tokenize(text, file)
        self.i = 0

    def peek(self):
        return self.toks[self.i]

    def take(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def error(self, msg, tok=None):
        tok = tok or self.peek()
        raise KirError(f"{self.file}:{tok[2]}: {msg}")

    def accept(self, p):
        if self.peek()[0] == "punct" and self.peek()[1] == p:
            self.i += 1
            return True
        return False

    def expect(self, p):
        if not self.accept(p):
            self.error(f"expected '{p}', found '{self.peek()[1]}'")

    def expect_kind(self, kind, what):
        if self.peek()[0] != kind:
            self.error(f"expected {what}, found '{self.peek()[1]}'")
        return self.take()

    def number(self):
        kind, s, _ = self.expect_kind("num", "a number")
        try:
            return int(s)
        except ValueError:
            return float(s)

    def attr_value(self):
        kind, s, _ = self.peek()
        if kind == "num":
            return self.number()
        if kind == "str":
            return self.take()[1]
        if self.accept("["):
            vals = []
            if not self.accept("]"):
                vals.append(self.number())
                while self.accept(","):
                    vals.append(self.number())
                self.expect("]")
            return vals
        self.error(f"expected an attribute value, found '{s}'")

    def type_(self):
        kind, s, _ = self.expect_kind("ident", "a type like f32[2,3]")
        if s not in ("f32", "i32"):
            self.error(f"unknown dtype '{s}'")
        self.expect("[")
        shape = []
        if not self.accept("]"):
            shape.append(self.number())
            while self.accept(","):
                shape.append(self.number())
            self.expect("]")
        return TensorType(s, tuple(shape))

    def value_ref(self, g):
        tok = self.expect_kind("value", "a value like %3")
        if tok[1] not in g.nodes:
            self.error(f"use of undefined value '%{tok[1]}'", tok)
        return tok[1]

    def node(self, g):
        _, vid, line = self.take()
        if vid in g.nodes:
            self.error(f"value '%{vid}' is defined twice")
        self.expect("=")
        op = self.expect_kind("ident", "an op name")[1]
        name = self.take()[1] if self.peek()[0] == "str" else ""
        operands = []
        if self.peek()[0] == "value":
            operands.append(self.value_ref(g))
            while self.accept(","):
                operands.append(self.value_ref(g))
        attrs = {}
        if self.accept("{"):
            if not self.accept("}"):
                while True:
                    key = self.expect_kind("ident", "an attribute name")[1]
                    self.expect("=")
                    attrs[key] = self.attr_value()
                    if not self.accept(","):
                        break
                self.expect("}")
        self.expect(":")
        ty = self.type_()
        loc = ""
        if self.peek()[:2] == ("ident", "loc"):
            self.take()
            self.expect("(")
            loc = self.expect_kind("str", "a quoted location")[1]
            self.expect(")")
        g.nodes[vid] = Node(vid, op, name, operands, attrs, ty, line, loc)

    def function(self, g):
        line = self.take()[2]
        fname = self.expect_kind("glob", "a function name like @f")[1]
        self.expect("(")
        inputs = []
        if not self.accept(")"):
            inputs.append(self.value_ref(g))
            while self.accept(","):
                inputs.append(self.value_ref(g))
            self.expect(")")
        self.expect("->")
        self.expect("(")
        outputs = []
        if not self.accept(")"):
            while True:
                oname = self.expect_kind("ident", "an output name")[1]
                self.expect("=")
                outputs.append((oname, self.value_ref(g)))
                if not self.accept(","):
                    break
            self.expect(")")
        updates = []
        if self.peek()[:2] == ("ident", "updates"):
            self.take()
            self.expect("(")
            while True:
                target = self.value_ref(g)
                self.expect("=")
                updates.append((target, self.value_ref(g)))
                if not self.accept(","):
                    break
            self.expect(")")
        g.functions.append(Function(fname, inputs, outputs, updates, line))

    def parse(self):
        g = Graph(self.file)
        while self.peek()[0] != "eof":
            kind, s, _ = self.peek()
            if kind == "value":
                self.node(g)
            elif kind == "ident" and s == "func":
                self.function(g)
            else:
                self.error(f"expected '%value = ...' or 'func', found '{s}'")
        return g


def parse(text, file="<kir>"):
    return _Parser(text, file).parse()


def parse_file(path):
    with open(path) as f:
        return parse(f.read(), path)


# ---------------------------------------------------------------------------
# The op table: one torch rule per kiln op, keyed by the text name.

def _float_dtype(x):
    return x.dtype if x.is_floating_point() else torch.float32


def _reduce(fn):
    # kiln: `axes` lists the reduced axes (sorted); an empty list reduces
    # nothing. torch.sum(x, dim=[]) would reduce everything, so it is special.
    def rule(n, x):
        axes = n.attrs["axes"]
        if not axes:
            return x.clone()
        return fn(x, dim=list(axes), keepdim=bool(n.attrs.get("keep", 0)))
    return rule


def _matmul(n, a, b):
    if n.attrs.get("ta", 0):
        a = a.t()
    if n.attrs.get("tb", 0):
        b = b.t()
    return a @ b


def _const(n, float_dtype):
    v = n.attrs["value"]
    if n.type.dtype == "i32":
        return torch.full(n.type.shape, int(v), dtype=torch.int32)  # C++ cast truncates too
    return torch.full(n.type.shape, float(v), dtype=float_dtype)


def _onehot(n, idx, float_dtype):
    # An index outside [0, depth) gives a row of zeros (no error), as in kiln.
    depth = n.attrs["depth"]
    return (idx.long().unsqueeze(-1) == torch.arange(depth)).to(float_dtype)


OPS = {
    # Sources are bound by name, consts filled; see evaluate().
    "add": lambda n, a, b: a + b,
    "sub": lambda n, a, b: a - b,
    "mul": lambda n, a, b: a * b,
    "div": lambda n, a, b: a / b,
    # Gradient at a tie: kiln sends dy to the second operand, torch splits it.
    "maximum": lambda n, a, b: torch.maximum(a, b),
    "neg": lambda n, x: -x,
    "exp": lambda n, x: torch.exp(x),
    "log": lambda n, x: torch.log(x),
    "sqrt": lambda n, x: torch.sqrt(x),
    "relu": lambda n, x: torch.relu(x),  # gradient 0 at x == 0 in both
    "tanh": lambda n, x: torch.tanh(x),
    "sigmoid": lambda n, x: torch.sigmoid(x),
    "step": lambda n, x: (x > 0).to(x.dtype),  # no gradient, as kiln's noGrad
    "sum": _reduce(torch.sum),
    "reduce_max": _reduce(torch.amax),
    # Ties: both return the first maximum. NaN: torch picks it, kiln skips it.
    "argmax": lambda n, x: torch.argmax(x, dim=n.attrs["axis"]).to(torch.int32),
    "reshape": lambda n, x: x.reshape(n.type.shape),
    "transpose": lambda n, x: x.permute(*n.attrs["perm"]),
    "broadcast": lambda n, x: x.expand(*n.type.shape),  # numpy-style, leading dims added
    "matmul": _matmul,
    "logsoftmax": lambda n, x: torch.log_softmax(x, dim=n.attrs["axis"]),
}

# Rules that need the evaluation's float dtype (float32 or float64).
OPS_WITH_DTYPE = {
    "const": _const,
    "onehot": _onehot,
}


def has_rule(op):
    return op in OPS or op in OPS_WITH_DTYPE or op in SOURCE_OPS


# ---------------------------------------------------------------------------
# Evaluation

def needed(g, roots):
    """Ids of the ancestors of `roots` (inclusive), in definition order."""
    live = set()
    stack = list(roots)
    while stack:
        v = stack.pop()
        if v in live:
            continue
        live.add(v)
        stack.extend(g.nodes[v].operands)
    return [v for v in g.nodes if v in live]


def check_rules(g, ids):
    missing = [g.nodes[v] for v in ids if not has_rule(g.nodes[v].op)]
    if missing:
        lines = "\n".join(f"  {n.where(g.file)}" for n in missing)
        ops = sorted({n.op for n in missing})
        raise KirError(f"{g.file}: no torch rule for op(s) {', '.join(ops)} "
                       f"(add one line to OPS in tests/parity/kir_torch.py):\n{lines}")


def evaluate(g, function, sources, float_dtype=torch.float32):
    """Evaluates `function` of graph g. `sources` maps source names to
    tensors (f32 sources should already be of float_dtype; they may require
    grad). Returns (outputs, updates): dicts name -> tensor, updates keyed by
    the target source's name."""
    f = g.function(function)
    roots = [v for _, v in f.outputs] + [v for _, v in f.updates]
    ids = needed(g, roots)
    check_rules(g, ids)
    env = {}
    for v in ids:
        n = g.nodes[v]
        if n.op in SOURCE_OPS:
            if n.name not in sources:
                raise KirError(f"{n.where(g.file)}: no value given for {n.op} \"{n.name}\"")
            val = sources[n.name]
        elif n.op in OPS_WITH_DTYPE:
            val = OPS_WITH_DTYPE[n.op](n, *[env[o] for o in n.operands], float_dtype)
        else:
            try:
                val = OPS[n.op](n, *[env[o] for o in n.operands])
            except KirError:
                raise
            except Exception as e:  # a torch error: say which node
                raise KirError(f"{n.where(g.file)}: torch failed: {e}") from e
        _check_type(g, n, val, float_dtype)
        env[v] = val
    outputs = {name: env[v] for name, v in f.outputs}
    updates = {g.nodes[t].name: env[v] for t, v in f.updates}
    return outputs, updates


def _check_type(g, n, val, float_dtype):
    want_float = n.type.dtype == "f32"
    if tuple(val.shape) != n.type.shape or val.is_floating_point() != want_float:
        raise KirError(f"{n.where(g.file)}: torch rule gave {val.dtype}{list(val.shape)}, "
                       f"the graph declares {n.type}")
    if want_float and val.dtype != float_dtype:
        raise KirError(f"{n.where(g.file)}: torch rule gave {val.dtype}, expected {float_dtype}")


def main(argv):
    if len(argv) != 2:
        print("usage: kir_torch.py FILE.kir", file=sys.stderr)
        return 2
    g = parse_file(argv[1])
    ops = sorted({n.op for n in g.nodes.values()})
    print(f"{argv[1]}: {len(g.nodes)} nodes, ops: {' '.join(ops)}")
    for f in g.functions:
        print(f"  @{f.name}: {len(f.inputs)} inputs, {len(f.outputs)} outputs, {len(f.updates)} updates")
    missing = [op for op in ops if not has_rule(op)]
    if missing:
        print(f"  no torch rule for: {' '.join(missing)}")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except KirError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
