"""The two expression languages Argo evaluates: govaluate (`when`) and expr-lang (`{{= ... }}`).

One tokenizer and one precedence-climbing parser serve both; the difference is how bare words are
read. Argo turns every govaluate *variable* into a string literal before evaluating, so that
`heads == heads` works unquoted (workflow/controller/steps.go `shouldExecute`); expr-lang looks
identifiers up in the environment instead.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipelines.runner.errors import RunnerError
from pipelines.runner.expr_builtins import FUNCTIONS, PREDICATE_SYNTAX, PREDICATES, to_text

__all__ = ["evaluate_expr", "evaluate_govaluate", "to_text"]

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<num>(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|>=|<=|=~|!~|&&|\|\||\?\?|[()\[\]{},.?:!<>+\-*/%\#])
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
    ('get', obj, key) ('call', name, args) ('if', cond, a, b) ('list', items) ('map', pairs)
    ('ptr', name) for `#`/`#index`/`#acc`, ('pred', builtin, args, closure) for `filter(xs, {...})`.
    """

    def __init__(self, source: str, govaluate: bool) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.i = 0
        self.govaluate = govaluate
        # Pointers each enclosing predicate defines, innermost last (expr-lang's predicate scopes).
        self.pointers: list[frozenset[str]] = []

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
            op = {"and": "&&", "or": "||"}.get(tok.text, tok.text)
            if op == "%" and self.govaluate:
                op = "fmod"  # govaluate computes on float64 with math.Mod
            node = ("bin", op, node, self.expr(prec + 1))

    def unary(self) -> tuple:
        tok = self.peek()
        if tok.text in ("!", "-", "not") and tok.kind in ("op", "word"):
            self.take()
            return ("un", "-" if tok.text == "-" else "!", self.unary())
        return self.postfix(self.primary())

    def primary(self) -> tuple:
        if self.pointers and self.peek().text in ("#", "."):
            return self.pointer()
        tok = self.take()
        if tok.kind == "num":
            text = tok.text.replace("_", "")
            return ("lit", float(text) if self.govaluate or any(c in text for c in ".eE") else int(text))
        if tok.kind == "str":
            return ("lit", _unquote(tok.text))
        if tok.text == "(":
            node = self.expr(0)
            self.take(")")
            return node
        if tok.text == "[" and not self.govaluate:
            return self.list_literal()
        if tok.text == "{" and not self.govaluate:
            return self.map_literal()
        if tok.kind == "word":
            return self.word(tok.text)
        raise self.fail(f"unexpected {tok.text or 'end'!r}")

    def list_literal(self) -> tuple:
        """`[a, b, ...]` after its `[`."""
        items = []
        while self.peek().text != "]":
            items.append(self.expr(0))
            if self.peek().text != "]":
                self.take(",")
        self.take("]")
        return ("list", items)

    def word(self, text: str) -> tuple:
        """A word in operand position: a constant, a variable, or a predicate call such as `all(...)`."""
        if text in ("true", "false"):
            return ("lit", text == "true")
        if text in ("nil", "null") and not self.govaluate:
            return ("lit", None)
        if self.govaluate:
            # Argo's VARIABLE -> STRING rewrite; dotted words stay one string.
            while self.peek().text == "." and self.tokens[self.i + 1].kind == "word":
                self.take()
                text += "." + self.take().text
            return ("lit", text)
        if text in PREDICATE_SYNTAX and self.peek().text == "(":
            return self.predicate_call(text)
        return ("var", text)

    def pointer(self) -> tuple:
        """`#`, `#index`, `#acc`; a bare `.name` means `#.name` (the `.` is left for postfix)."""
        name = ""
        if self.take().text == "#":
            nxt = self.peek()
            if nxt.kind == "word" and nxt.text not in _BINARY and nxt.text != "not":
                name = self.take().text
        else:
            self.i -= 1
        if name not in self.pointers[-1]:
            hint = " (expr-lang v1.17 defines #index only in map and reduce)" if name == "index" else ""
            raise self.fail(f"unknown pointer #{name}{hint}")
        return ("ptr", name)

    def predicate_call(self, name: str) -> tuple:
        """`name(xs, predicate[, extra])`; the predicate is `{ body }` or a bare expression."""
        pointers, extras = PREDICATE_SYNTAX[name]
        self.take("(")
        args, closure = [self.expr(0)], None
        if self.peek().text == "," and self.tokens[self.i + 1].text != ")":
            self.take()
            braced = self.peek().text == "{"
            if braced:
                self.take()
            self.pointers.append(pointers)
            closure = self.expr(0)
            self.pointers.pop()
            if braced:
                self.take("}")
            while self.peek().text == "," and self.tokens[self.i + 1].text != ")":
                self.take()
                args.append(self.expr(0))
        if self.peek().text == ",":
            self.take()
        self.take(")")
        given = len(args) - 1 + (closure is not None)
        if given not in extras:
            raise self.fail(f"{name} takes {' or '.join(str(1 + n) for n in extras)} arguments, got {given + 1}")
        return ("pred", name, args, closure)

    def map_literal(self) -> tuple:
        """`{key: value, ...}`; keys are names, strings, numbers or a parenthesised expression."""
        pairs: list[tuple[tuple, tuple]] = []
        while self.peek().text != "}":
            if pairs:
                self.take(",")
                if self.peek().text == "}":
                    break
            tok = self.peek()
            if tok.text == "(":
                key = self.expr(0)
            elif tok.kind in ("word", "num", "str"):
                self.take()
                key = ("lit", _unquote(tok.text) if tok.kind == "str" else tok.text)
            else:
                raise self.fail(f"a map key must be a name, string, number or (expression), got {tok.text!r}")
            self.take(":")
            pairs.append((key, self.expr(0)))
        self.take("}")
        return ("map", pairs)

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
                    if self.peek().text != ")":
                        self.take(",")
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


def _go_remainder(a: int, b: int) -> int:
    remainder = abs(a) % abs(b)  # Go truncates toward zero: -7 % 3 == -1
    return -remainder if a < 0 else remainder


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}
_TEXT: dict[str, Callable[[Any, Any], bool]] = {
    "contains": lambda a, b: str(b) in str(a),
    "startsWith": lambda a, b: str(a).startswith(str(b)),
    "endsWith": lambda a, b: str(a).endswith(str(b)),
    "=~": lambda a, b: re.search(str(b), str(a)) is not None,
    "matches": lambda a, b: re.search(str(b), str(a)) is not None,
    "!~": lambda a, b: re.search(str(b), str(a)) is None,
    "in": lambda a, b: a in b if isinstance(b, list | dict | str) else False,
}
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "fmod": math.fmod,
    "%": _go_remainder,
}


def _binary(op: str, a: Any, b: Any, source: str) -> Any:
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    if op in _ORDER:
        return _compare(op, a, b, source)
    if op in _TEXT:
        return _TEXT[op](a, b)
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    if op in _ARITHMETIC:
        return _arithmetic(op, a, b, source)
    raise RunnerError(f"invalid expression {source!r}: unknown operator {op!r}")


def _compare(op: str, a: Any, b: Any, source: str) -> bool:
    """Numbers with numbers, strings with strings; anything else is an error, as in expr-lang."""
    na, nb = _num(a), _num(b)
    if na is not None and nb is not None:
        return _ORDER[op](na, nb)
    if not (isinstance(a, str) and isinstance(b, str)):
        raise RunnerError(f"invalid expression {source!r}: cannot compare {a!r} {op} {b!r}")
    return _ORDER[op](a, b)


def _arithmetic(op: str, a: Any, b: Any, source: str) -> Any:
    na, nb = _num(a), _num(b)
    if na is None or nb is None:
        raise RunnerError(f"invalid expression {source!r}: {op} needs numbers, got {a!r} and {b!r}")
    if op == "%" and not (isinstance(na, int) and isinstance(nb, int)):
        raise RunnerError(f"invalid expression {source!r}: % needs integers, got {a!r} and {b!r}")
    return _ARITHMETIC[op](na, nb)


def _equal(a: Any, b: Any) -> bool:
    na, nb = _num(a), _num(b)
    if na is not None and nb is not None:
        return na == nb
    return type(a) is type(b) and a == b


def _truth(value: Any, source: str) -> bool:
    if not isinstance(value, bool):
        raise RunnerError(f"invalid expression {source!r}: expected a boolean, got {value!r}")
    return value


def _unary(node: tuple, env: dict[str, Any], source: str, frame: dict[str, Any] | None) -> Any:
    value = _evaluate(node[2], env, source, frame)
    if node[1] == "!":
        return not _truth(value, source)
    if _num(value) is None:
        raise RunnerError(f"invalid expression {source!r}: cannot negate {value!r}")
    return -value


def _binary_node(node: tuple, env: dict[str, Any], source: str, frame: dict[str, Any] | None) -> Any:
    op = node[1]
    if op in ("&&", "||"):
        left = _truth(_evaluate(node[2], env, source, frame), source)
        if (op == "&&" and not left) or (op == "||" and left):
            return left
        return _truth(_evaluate(node[3], env, source, frame), source)
    if op == "??":
        left = _evaluate(node[2], env, source, frame)
        return left if left is not None else _evaluate(node[3], env, source, frame)
    return _binary(op, _evaluate(node[2], env, source, frame), _evaluate(node[3], env, source, frame), source)


def _index(node: tuple, env: dict[str, Any], source: str, frame: dict[str, Any] | None) -> Any:
    obj, key = _evaluate(node[1], env, source, frame), _evaluate(node[2], env, source, frame)
    if isinstance(obj, dict):
        if key not in obj:
            raise RunnerError(f"invalid expression {source!r}: no key {key!r}")
        return obj[key]
    if isinstance(obj, list) and isinstance(key, int) and not isinstance(key, bool):
        return obj[key]
    raise RunnerError(f"invalid expression {source!r}: cannot index {obj!r} with {key!r}")


def _call(node: tuple, env: dict[str, Any], source: str, frame: dict[str, Any] | None) -> Any:
    function = _evaluate(node[1], env, source, frame)
    if not callable(function):
        raise RunnerError(f"invalid expression {source!r}: {function!r} is not a function")
    return function(*[_evaluate(arg, env, source, frame) for arg in node[2]])


def _map(node: tuple, env: dict[str, Any], source: str, frame: dict[str, Any] | None) -> Any:
    result = {}
    for key_node, value_node in node[1]:
        key = _evaluate(key_node, env, source, frame)
        if not isinstance(key, str):
            raise RunnerError(f"invalid expression {source!r}: map keys must be strings here, got {key!r}")
        result[key] = _evaluate(value_node, env, source, frame)
    return result


def _predicate(node: tuple, env: dict[str, Any], source: str, frame: dict[str, Any] | None) -> Any:
    items = _evaluate(node[2][0], env, source, frame)
    if not isinstance(items, list):
        raise RunnerError(f"invalid expression {source!r}: builtin {node[1]} takes only array, got {items!r}")
    extra = [_evaluate(arg, env, source, frame) for arg in node[2][1:]]
    closure = node[3]
    if closure is None:
        return PREDICATES[node[1]](items, *extra)

    def call(item: Any, index: int, acc: Any = None) -> Any:
        return _evaluate(closure, env, source, {"": item, "index": index, "acc": acc})

    return PREDICATES[node[1]](items, call, *extra)


def _variable(node: tuple, env: dict[str, Any], source: str, frame: dict[str, Any] | None) -> Any:
    if node[1] in env:
        return env[node[1]]
    if node[1] in FUNCTIONS:
        return FUNCTIONS[node[1]]
    raise RunnerError(f"invalid expression {source!r}: unknown name {node[1]!r}")


def _conditional(node: tuple, env: dict[str, Any], source: str, frame: dict[str, Any] | None) -> Any:
    branch = node[2] if _truth(_evaluate(node[1], env, source, frame), source) else node[3]
    return _evaluate(branch, env, source, frame)


def _pointer(node: tuple, env: dict[str, Any], source: str, frame: dict[str, Any] | None) -> Any:
    return frame[node[1]]  # type: ignore[index]  # the parser only allows pointers inside predicates


_NODES: dict[str, Callable[[tuple, dict[str, Any], str, dict[str, Any] | None], Any]] = {
    "lit": lambda node, env, source, frame: node[1],
    "var": _variable,
    "list": lambda node, env, source, frame: [_evaluate(item, env, source, frame) for item in node[1]],
    "un": _unary,
    "bin": _binary_node,
    "if": _conditional,
    "get": _index,
    "call": _call,
    "ptr": _pointer,
    "map": _map,
    "pred": _predicate,
}


def _evaluate(node: tuple, env: dict[str, Any], source: str, frame: dict[str, Any] | None = None) -> Any:
    return _NODES[node[0]](node, env, source, frame)


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
