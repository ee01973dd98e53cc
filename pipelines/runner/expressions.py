"""The two expression languages Argo evaluates: govaluate (`when`) and expr-lang (`{{= ... }}`).

One tokenizer and one precedence-climbing parser serve both; the difference is how bare words are
read. Argo turns every govaluate *variable* into a string literal before evaluating, so that
`heads == heads` works unquoted (workflow/controller/steps.go `shouldExecute`); expr-lang looks
identifiers up in the environment instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipelines.runner.errors import RunnerError

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<num>\d+\.\d*|\.\d+|\d+)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|>=|<=|=~|!~|&&|\|\||\?\?|[()\[\],.?:!<>+\-*/%])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)

_BINARY = {
    "??": 1,
    "||": 2,
    "or": 2,
    "&&": 3,
    "and": 3,
    "==": 4,
    "!=": 4,
    "<": 4,
    ">": 4,
    "<=": 4,
    ">=": 4,
    "=~": 4,
    "!~": 4,
    "in": 4,
    "matches": 4,
    "contains": 4,
    "startsWith": 4,
    "endsWith": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "%": 6,
}


@dataclass(frozen=True)
class Tok:
    kind: str  # num, str, op, word, end
    text: str


def tokenize(source: str) -> list[Tok]:
    tokens, pos = [], 0
    source = source.rstrip()
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if not match or match.end() == pos:
            raise RunnerError(f"invalid expression {source!r}: unexpected {source[pos:].strip()[:20]!r}")
        kind = match.lastgroup or ""
        tokens.append(Tok(kind, match.group(kind)))
        pos = match.end()
    tokens.append(Tok("end", ""))
    return tokens


class _Parser:
    """Builds a tiny AST of tuples: ('lit', v) ('var', name) ('un', op, a) ('bin', op, a, b)
    ('get', obj, key) ('call', name, args) ('if', cond, a, b) ('list', items)."""

    def __init__(self, source: str, govaluate: bool) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.i = 0
        self.govaluate = govaluate

    def fail(self, what: str) -> RunnerError:
        return RunnerError(f"invalid expression {self.source!r}: {what}")

    def peek(self) -> Tok:
        return self.tokens[self.i]

    def take(self, text: str | None = None) -> Tok:
        tok = self.tokens[self.i]
        if text is not None and tok.text != text:
            raise self.fail(f"expected {text!r}, got {tok.text or 'end'!r}")
        self.i += 1
        return tok

    def parse(self) -> tuple:
        node = self.expr(0)
        if self.peek().kind != "end":
            raise self.fail(f"unexpected {self.peek().text!r}")
        return node

    def expr(self, min_prec: int) -> tuple:
        node = self.unary()
        while True:
            tok = self.peek()
            if tok.text == "?" and min_prec == 0:
                self.take()
                yes = self.expr(0)
                self.take(":")
                node = ("if", node, yes, self.expr(0))
                continue
            prec = _BINARY.get(tok.text) if tok.kind in ("op", "word") else None
            if tok.kind == "word" and tok.text == "not" and self.tokens[self.i + 1].text == "in":
                self.i += 2
                node = ("un", "!", ("bin", "in", node, self.expr(5)))
                continue
            if prec is None or prec < min_prec:
                return node
            self.take()
            node = ("bin", {"and": "&&", "or": "||"}.get(tok.text, tok.text), node, self.expr(prec + 1))

    def unary(self) -> tuple:
        tok = self.peek()
        if tok.text in ("!", "-", "not") and tok.kind in ("op", "word"):
            self.take()
            return ("un", "-" if tok.text == "-" else "!", self.unary())
        return self.postfix(self.primary())

    def primary(self) -> tuple:
        tok = self.take()
        if tok.kind == "num":
            return ("lit", float(tok.text) if "." in tok.text or self.govaluate else int(tok.text))
        if tok.kind == "str":
            return ("lit", _unquote(tok.text))
        if tok.text == "(":
            node = self.expr(0)
            self.take(")")
            return node
        if tok.text == "[" and not self.govaluate:
            items = []
            while self.peek().text != "]":
                items.append(self.expr(0))
                if self.peek().text == ",":
                    self.take()
            self.take("]")
            return ("list", items)
        if tok.kind == "word":
            if tok.text in ("true", "false"):
                return ("lit", tok.text == "true")
            if tok.text in ("nil", "null") and not self.govaluate:
                return ("lit", None)
            if self.govaluate:
                # Argo's VARIABLE -> STRING rewrite; dotted words stay one string.
                text = tok.text
                while self.peek().text == "." and self.tokens[self.i + 1].kind == "word":
                    self.take()
                    text += "." + self.take().text
                return ("lit", text)
            return ("var", tok.text)
        raise self.fail(f"unexpected {tok.text or 'end'!r}")

    def postfix(self, node: tuple) -> tuple:
        if self.govaluate:
            return node
        while True:
            tok = self.peek()
            if tok.text == ".":
                self.take()
                name = self.take()
                if name.kind != "word":
                    raise self.fail("expected a name after '.'")
                node = ("get", node, ("lit", name.text))
            elif tok.text == "[":
                self.take()
                key = self.expr(0)
                self.take("]")
                node = ("get", node, key)
            elif tok.text == "(":
                self.take()
                args = []
                while self.peek().text != ")":
                    args.append(self.expr(0))
                    if self.peek().text == ",":
                        self.take()
                self.take(")")
                node = ("call", node, args)
            else:
                return node


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def _num(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    return None


def _binary(op: str, a: Any, b: Any, source: str) -> Any:
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    if op in ("<", ">", "<=", ">="):
        na, nb = _num(a), _num(b)
        if na is None or nb is None:
            if not (isinstance(a, str) and isinstance(b, str)):
                raise RunnerError(f"invalid expression {source!r}: cannot compare {a!r} {op} {b!r}")
            na, nb = a, b  # type: ignore[assignment]
        return {"<": na < nb, ">": na > nb, "<=": na <= nb, ">=": na >= nb}[op]  # type: ignore[operator]
    if op == "contains":
        return str(b) in str(a)
    if op == "startsWith":
        return str(a).startswith(str(b))
    if op == "endsWith":
        return str(a).endswith(str(b))
    if op in ("=~", "matches"):
        return re.search(str(b), str(a)) is not None
    if op == "!~":
        return re.search(str(b), str(a)) is None
    if op == "in":
        return a in b if isinstance(b, list | dict | str) else False
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    na, nb = _num(a), _num(b)
    if na is None or nb is None:
        raise RunnerError(f"invalid expression {source!r}: {op} needs numbers, got {a!r} and {b!r}")
    if op == "+":
        return na + nb
    if op == "-":
        return na - nb
    if op == "*":
        return na * nb
    if op == "/":
        return na / nb
    if op == "%":
        return na % nb
    raise RunnerError(f"invalid expression {source!r}: unknown operator {op!r}")


def _equal(a: Any, b: Any) -> bool:
    na, nb = _num(a), _num(b)
    if na is not None and nb is not None:
        return na == nb
    return type(a) is type(b) and a == b


def _truth(value: Any, source: str) -> bool:
    if not isinstance(value, bool):
        raise RunnerError(f"invalid expression {source!r}: expected a boolean, got {value!r}")
    return value


def _evaluate(node: tuple, env: dict[str, Any], source: str) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "var":
        if node[1] in env:
            return env[node[1]]
        if node[1] in FUNCTIONS:
            return FUNCTIONS[node[1]]
        raise RunnerError(f"invalid expression {source!r}: unknown name {node[1]!r}")
    if kind == "list":
        return [_evaluate(item, env, source) for item in node[1]]
    if kind == "un":
        value = _evaluate(node[2], env, source)
        if node[1] == "!":
            return not _truth(value, source)
        if _num(value) is None:
            raise RunnerError(f"invalid expression {source!r}: cannot negate {value!r}")
        return -value
    if kind == "bin":
        op = node[1]
        if op in ("&&", "||"):
            left = _truth(_evaluate(node[2], env, source), source)
            if (op == "&&" and not left) or (op == "||" and left):
                return left
            return _truth(_evaluate(node[3], env, source), source)
        if op == "??":
            left = _evaluate(node[2], env, source)
            return left if left is not None else _evaluate(node[3], env, source)
        return _binary(op, _evaluate(node[2], env, source), _evaluate(node[3], env, source), source)
    if kind == "if":
        return _evaluate(node[2] if _truth(_evaluate(node[1], env, source), source) else node[3], env, source)
    if kind == "get":
        obj, key = _evaluate(node[1], env, source), _evaluate(node[2], env, source)
        if isinstance(obj, dict):
            if key not in obj:
                raise RunnerError(f"invalid expression {source!r}: no key {key!r}")
            return obj[key]
        if isinstance(obj, list) and isinstance(key, int) and not isinstance(key, bool):
            return obj[key]
        raise RunnerError(f"invalid expression {source!r}: cannot index {obj!r} with {key!r}")
    if kind == "call":
        function = _evaluate(node[1], env, source)
        if not callable(function):
            raise RunnerError(f"invalid expression {source!r}: {function!r} is not a function")
        return function(*[_evaluate(arg, env, source) for arg in node[2]])
    raise AssertionError(kind)


def evaluate_govaluate(source: str) -> bool:
    """Evaluate an already-substituted `when` the way Argo does; the result must be a boolean."""
    try:
        value = _evaluate(_Parser(source, govaluate=True).parse(), {}, source)
    except (TypeError, ValueError, ZeroDivisionError) as error:
        raise RunnerError(f"invalid 'when' expression {source!r}: {error}") from None
    if not isinstance(value, bool):
        raise RunnerError(f"invalid 'when' expression {source!r}: expected a boolean, got {value!r}")
    return value


def evaluate_expr(source: str, env: dict[str, Any]) -> Any:
    """Evaluate an expr-lang expression (the subset Argo users write) against `env`."""
    try:
        return _evaluate(_Parser(source, govaluate=False).parse(), env, source)
    except (TypeError, KeyError, IndexError, ValueError, ZeroDivisionError, AttributeError) as error:
        raise RunnerError(f"invalid expression {source!r}: {error}") from None


def _jsonpath(document: Any, path: str) -> Any:
    data = json.loads(document) if isinstance(document, str) else document
    if not path.startswith("$"):
        raise RunnerError(f"jsonpath {path!r}: must start with '$'")
    for match in re.finditer(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\['([^']*)'\]", path[1:]):
        key = match.group(1) or match.group(3)
        data = data[int(match.group(2))] if key is None else data[key]
    return data


def _as_int(value: Any) -> int:
    return int(float(value)) if isinstance(value, str) and "." in value else int(value)


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else str(value)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "jsonpath": _jsonpath,
    "asInt": _as_int,
    "int": _as_int,
    "asFloat": float,
    "float": float,
    "string": _string,
    "toJson": lambda v: json.dumps(v, separators=(",", ":")),
    "fromJson": json.loads,
    "len": len,
    "lower": lambda s: str(s).lower(),
    "upper": lambda s: str(s).upper(),
    "trim": lambda s: str(s).strip(),
    "split": lambda s, sep: str(s).split(sep),
    "join": lambda items, sep="": sep.join(_string(i) for i in items),
    "sprig": {
        "trim": lambda s: str(s).strip(),
        "upper": lambda s: str(s).upper(),
        "lower": lambda s: str(s).lower(),
        "toString": _string,
        "atoi": _as_int,
        "int": _as_int,
        "add": lambda a, b: _as_int(a) + _as_int(b),
        "sub": lambda a, b: _as_int(a) - _as_int(b),
        "mul": lambda a, b: _as_int(a) * _as_int(b),
        "default": lambda d, v=None: v if v not in (None, "") else d,
    },
}


def to_text(value: Any) -> str:
    """How a `{{= }}` result lands in a manifest string."""
    return _string(value)
