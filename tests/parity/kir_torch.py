"""kir -> torch: parses kiln's textual IR (.kir) and evaluates a function of it
with PyTorch ops, so torch autograd can differentiate the same graph.

The semantics follow kiln's interpreter (compiler/interp/Kernels.cpp, the
oracle), not torch's defaults where they differ: out-of-range indices read 0
and write nothing, comparisons give f32 masks, casts saturate, `random`
reproduces kiln's counter-based generator bit for bit. Each op is one entry
of OPS (or OPS_WITH_DTYPE), keyed by its text name in compiler/ir/Ops.def:

    OPS["relu"] = lambda node, x: torch.relu(x)

A rule gets the parsed Node (for .attrs and .type) and the operand tensors,
and returns the result tensor. Sources (input, param, state) are bound by
name by the caller. A graph using an op with no rule fails before anything
is evaluated, naming every such op and its line.

Used as a library by check.py; `python3 kir_torch.py FILE.kir` parses a file
and prints a summary (a quick way to see that a dump is readable).
"""

import math
import re
import sys
from dataclasses import dataclass, field

import numpy as np
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


def _no_grad(fn):
    # Ops kiln differentiates as constants (Ops.def: noGrad): sign, step,
    # comparisons. The rule sees detached operands, so no gradient flows.
    return lambda n, *xs: fn(n, *[x.detach() for x in xs])


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
    # Rank 2, or a batch of equal leading dims; ta/tb transpose the last two.
    if n.attrs.get("ta", 0):
        a = a.transpose(-1, -2)
    if n.attrs.get("tb", 0):
        b = b.transpose(-1, -2)
    return torch.matmul(a, b)


def _const(n, float_dtype):
    v = n.attrs["value"]
    if n.type.dtype == "i32":
        return torch.full(n.type.shape, int(v), dtype=torch.int32)  # C++ cast truncates too
    return torch.full(n.type.shape, float(v), dtype=float_dtype)


def _onehot(n, idx, float_dtype):
    # An index outside [0, depth) gives a row of zeros (no error), as in kiln.
    depth = n.attrs["depth"]
    return (idx.long().unsqueeze(-1) == torch.arange(depth)).to(float_dtype)


def _compare(fn):
    # Comparisons of f32 or i32 operands give an f32 mask of 0 and 1.
    return lambda n, a, b, float_dtype: fn(a.detach(), b.detach()).to(float_dtype)


def _sign(n, x):
    # -1 below 0, 1 above, x itself otherwise: sign(-0) = -0, sign(NaN) = NaN.
    one = torch.ones_like(x)
    return torch.where(x > 0, one, torch.where(x < 0, -one, x))


def _cast(n, x, float_dtype):
    if n.type.dtype == "f32":
        return x.to(float_dtype)  # i32 -> f32 rounds to nearest, as static_cast<float>
    if not x.is_floating_point():
        return x.clone()
    # f32 -> i32: truncate toward 0, saturate at the i32 range, NaN gives 0.
    # (torch's .to(int32) of an out-of-range float is undefined.)
    d = x.detach().double()
    d = torch.where(torch.isnan(d), torch.zeros_like(d), torch.trunc(d))
    return d.clamp(-2147483648.0, 2147483647.0).to(torch.int32)


def _elu(n, x):
    alpha = n.attrs["alpha"]
    # expm1 of the clamped value: the x > 0 branch is masked out anyway, and
    # expm1(large x) = inf would turn its zero gradient into NaN.
    return torch.where(x > 0, x, alpha * torch.expm1(x.clamp(max=0)))


def _concat(n, *xs):
    return torch.cat(xs, dim=n.attrs["axis"])


def _slice(n, x):
    idx = tuple(slice(b, e, s) for b, e, s in zip(n.attrs["begin"], n.attrs["end"], n.attrs["stride"]))
    return x[idx]


def _pad(n, x):
    # lo zeros before, hi after, `interior` zeros between neighbours, per dim.
    out = x.new_zeros(n.type.shape)
    idx = tuple(slice(lo, lo + (d - 1) * (k + 1) + 1, k + 1)
                for lo, k, d in zip(n.attrs["lo"], n.attrs["interior"], x.shape))
    out[idx] = x
    return out


def _in_range(idx, size):
    return (idx >= 0) & (idx < size)


def _gather(n, table, idx):
    # Rows of table picked by idx; an index outside [0, V) reads a zero row.
    ok = _in_range(idx, table.shape[0])
    rows = table[torch.where(ok, idx, torch.zeros_like(idx)).long()]
    ok = ok.reshape(ok.shape + (1,) * (table.dim() - 1))
    return torch.where(ok, rows, torch.zeros_like(rows))


def _scatter_add(n, src, idx):
    # Rows of src added into a zero [V, ...] at idx (duplicates accumulate);
    # an index outside [0, V) writes nothing: it goes to a spare row V.
    v = n.type.shape[0]
    rest = tuple(n.type.shape[1:])
    ok = _in_range(idx, v)
    target = torch.where(ok, idx, torch.full_like(idx, v)).long().reshape(-1)
    out = src.new_zeros((v + 1,) + rest)
    out = torch.index_add(out, 0, target, src.reshape((-1,) + rest))
    return out[:v]


def _take_along(n, x, idx):
    axis = n.attrs["axis"]
    ok = _in_range(idx, x.shape[axis])
    vals = torch.gather(x, axis, torch.where(ok, idx, torch.zeros_like(idx)).long())
    return torch.where(ok, vals, torch.zeros_like(vals))


def _scatter_along(n, src, idx):
    # As _scatter_add, along one axis: out-of-range indices go to a spare slot.
    axis = n.attrs["axis"]
    size = n.type.shape[axis]
    shape = list(n.type.shape)
    shape[axis] = size + 1
    ok = _in_range(idx, size)
    target = torch.where(ok, idx, torch.full_like(idx, size)).long()
    out = torch.scatter_add(src.new_zeros(shape), axis, target, src)
    return out.narrow(axis, 0, size)


def _conv_args(n):
    a = n.attrs
    return dict(stride=tuple(a.get("stride", [1, 1])), padding=tuple(a.get("pad", [0, 0])),
                dilation=tuple(a.get("dilation", [1, 1])), groups=a.get("groups", 1))


def _vjp(f, primal_shape, cot):
    """The gradient of sum(f(p) * cot) wrt p, for f linear in p (so p's value,
    zeros here, does not matter); differentiable wrt cot (create_graph)."""
    p = cot.new_zeros(primal_shape, requires_grad=True)
    with torch.enable_grad():
        (gp,) = torch.autograd.grad(f(p), p, cot, create_graph=True)
    return gp


def _conv2d(n, x, w):
    return torch.nn.functional.conv2d(x, w, **_conv_args(n))


def _conv2d_bwd_input(n, dy, w):
    return _vjp(lambda x: torch.nn.functional.conv2d(x, w, **_conv_args(n)), n.type.shape, dy)


def _conv2d_bwd_filter(n, x, dy):
    return _vjp(lambda w: torch.nn.functional.conv2d(x, w, **_conv_args(n)), n.type.shape, dy)


def _pool_args(n):
    a = n.attrs
    return tuple(a["kernel"]), tuple(a["stride"]), tuple(a["pad"])


def _maxpool2d(n, x):
    # torch pads with -inf, so padding never wins, as in kiln.
    k, s, p = _pool_args(n)
    return torch.nn.functional.max_pool2d(x, k, s, p)


def _maxpool2d_grad(n, x, dy):
    # dy goes to each window's first maximum in row-major order: the index
    # torch's max_pool2d returns (it keeps the first of equal values).
    k, s, p = _pool_args(n)
    _, at = torch.nn.functional.max_pool2d(x.detach(), k, s, p, return_indices=True)
    nn_, c, h, w = x.shape
    dx = dy.new_zeros((nn_, c, h * w))
    dx = torch.scatter_add(dx, 2, at.reshape(nn_, c, -1), dy.reshape(nn_, c, -1))
    return dx.reshape(x.shape)


def _avgpool2d(n, x):
    k, s, p = _pool_args(n)
    return torch.nn.functional.avg_pool2d(x, k, s, p, count_include_pad=True)


def _avgpool2d_grad(n, dy):
    return _vjp(lambda x: _avgpool2d(n, x), n.type.shape, dy)


# ---- kiln's random numbers (runtime/src/Random.cpp), reproduced bit for bit.
# torch's generator cannot give kiln's values, so this is SplitMix64 in
# numpy uint64 arithmetic (which wraps modulo 2^64 like C++'s uint64_t).

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_STREAM_MUL = _U64(0xD1B54A32D192ED03)


def _mix64(x):
    x = x ^ (x >> _U64(30))
    x = x * _U64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> _U64(27))
    x = x * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def random64(seed, stream, counters):
    """kiln::rt::random64 for a uint64 array of counters."""
    with np.errstate(over="ignore"):
        key = _mix64(_mix64(_U64(seed) ^ _GOLDEN) + _U64(stream) * _STREAM_MUL + _GOLDEN)
        return _mix64(key + (counters.astype(np.uint64) + _U64(1)) * _GOLDEN)


def uniform01(seed, stream, counters):
    # the top 24 bits times 2^-24: exact in float32
    return (random64(seed, stream, counters) >> _U64(40)).astype(np.float32) * np.float32(2.0 ** -24)


def normal01(seed, stream, counters):
    # Box-Muller in double with libm's log and cos (math.*, as std::log and
    # std::cos), rounded to float once at the end, as normal01.
    out = np.empty(len(counters), dtype=np.float32)
    for k, r in enumerate(random64(seed, stream, counters).tolist()):
        u1 = float((r >> 32) + 1) * 2.0 ** -32
        u2 = float(r & 0xFFFFFFFF) * 2.0 ** -32
        out[k] = np.float32(math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2))
    return out


def _random(n, key, float_dtype):
    lo, hi = (int(v) & 0xFFFFFFFF for v in key.tolist())
    seed = lo | (hi << 32)  # randomSeedOf: the key's two halves as one uint64
    counters = np.arange(math.prod(n.type.shape), dtype=np.uint64)
    fn = normal01 if n.attrs["dist"] == "normal" else uniform01
    vals = fn(seed, n.attrs["stream"], counters)
    return torch.from_numpy(vals.reshape(n.type.shape)).to(float_dtype)


OPS = {
    # Sources are bound by name, consts filled; see evaluate().
    # elementwise unary
    "neg": lambda n, x: -x,  # i32 wraps in both
    "exp": lambda n, x: torch.exp(x),
    "log": lambda n, x: torch.log(x),
    "log1p": lambda n, x: torch.log1p(x),
    "sqrt": lambda n, x: torch.sqrt(x),
    "rsqrt": lambda n, x: torch.rsqrt(x),
    "abs": lambda n, x: torch.abs(x),  # gradient sign(x), 0 at 0, in both
    "sign": _no_grad(_sign),
    "relu": lambda n, x: torch.relu(x),  # gradient 0 at x == 0 in both
    "leaky_relu": lambda n, x: torch.where(x > 0, x, n.attrs["alpha"] * x),
    "elu": _elu,
    "tanh": lambda n, x: torch.tanh(x),
    "sigmoid": lambda n, x: torch.sigmoid(x),
    # kiln: x above 20 is returned as is, as torch's default threshold
    "softplus": lambda n, x: torch.nn.functional.softplus(x, beta=1, threshold=20),
    "erf": lambda n, x: torch.erf(x),
    "sin": lambda n, x: torch.sin(x),
    "cos": lambda n, x: torch.cos(x),
    "step": _no_grad(lambda n, x: (x > 0).to(x.dtype)),
    # elementwise binary (operands already broadcast by the graph)
    "add": lambda n, a, b: a + b,
    "sub": lambda n, a, b: a - b,
    "mul": lambda n, a, b: a * b,
    "div": lambda n, a, b: a / b,
    # NaN propagates; at a tie both split the gradient equally (torch >= 1.7)
    "maximum": lambda n, a, b: torch.maximum(a, b),
    "minimum": lambda n, a, b: torch.minimum(a, b),
    "pow": lambda n, a, b: torch.pow(a, b),
    "select": lambda n, c, a, b: torch.where(c != 0, a, b),
    # reductions
    "sum": _reduce(torch.sum),
    # amax/amin share the gradient equally among ties, as kiln
    "reduce_max": _reduce(torch.amax),
    "reduce_min": _reduce(torch.amin),
    # Ties: both return the first extremum. NaN: torch picks it, kiln skips it.
    "argmax": _no_grad(lambda n, x: torch.argmax(x, dim=n.attrs["axis"]).to(torch.int32)),
    "argmin": _no_grad(lambda n, x: torch.argmin(x, dim=n.attrs["axis"]).to(torch.int32)),
    # layout
    "reshape": lambda n, x: x.reshape(n.type.shape),
    "transpose": lambda n, x: x.permute(*n.attrs["perm"]),
    "broadcast": lambda n, x: x.expand(*n.type.shape),  # numpy-style, leading dims added
    "concat": _concat,
    "slice": _slice,
    "stop_gradient": lambda n, x: x.detach(),
    "pad": _pad,
    # contractions, softmax
    "matmul": _matmul,
    "logsoftmax": lambda n, x: torch.log_softmax(x, dim=n.attrs["axis"]),
    # indexing: out-of-range indices read 0 and write nothing
    "gather": _gather,
    "scatter_add": _scatter_add,
    "take_along": _take_along,
    "scatter_along": _scatter_along,
    # convolution and pooling, NCHW
    "conv2d": _conv2d,
    "conv2d_bwd_input": _conv2d_bwd_input,
    "conv2d_bwd_filter": _conv2d_bwd_filter,
    "maxpool2d": _maxpool2d,
    "maxpool2d_grad": _maxpool2d_grad,
    "avgpool2d": _avgpool2d,
    "avgpool2d_grad": _avgpool2d_grad,
}

# Rules that need the evaluation's float dtype (float32 or float64).
OPS_WITH_DTYPE = {
    "const": _const,
    "onehot": _onehot,
    "lt": _compare(torch.lt),
    "le": _compare(torch.le),
    "gt": _compare(torch.gt),
    "ge": _compare(torch.ge),
    "eq": _compare(torch.eq),
    "ne": _compare(torch.ne),
    "cast": _cast,
    "random": _random,
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
