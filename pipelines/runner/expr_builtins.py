"""expr-lang's builtins, plus the ones Argo adds (`asInt`, `asFloat`, `jsonpath`, `toJson`, `sprig`).

Values follow Go's, since Argo evaluates with github.com/expr-lang/expr v1.17.8 and encodes results
with encoding/json: JSON numbers decode to float64, maps encode with sorted keys and HTML-escaped
strings, `string(x)` is `fmt.Sprintf("%v", x)`. Predicate builtins (`filter(xs, {...})`) receive the
closure as a Python callable `call(element, index, acc)` from the evaluator.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pipelines.runner.errors import RunnerError

Closure = Callable[..., Any]

_GO_INT = re.compile(r"[+-]?\d+")
_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _type(value: Any) -> str:
    return "nil" if value is None else type(value).__name__


def _go_numbers(value: Any) -> Any:
    """Integral floats as ints, so they encode as Go does (`1`, not `1.0`)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"json: unsupported value: {value}")
        return int(value) if value.is_integer() and abs(value) < 1e21 else value
    if isinstance(value, list):
        return [_go_numbers(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _go_numbers(v) for k, v in value.items()}
    return value


def go_json(value: Any, indent: int | None = None) -> str:
    """encoding/json's Marshal (or MarshalIndent with `indent` spaces)."""
    separators = (",", ": ") if indent else (",", ":")
    text = json.dumps(_go_numbers(value), sort_keys=True, ensure_ascii=False, indent=indent, separators=separators)
    return re.sub("[<>&\u2028\u2029]", lambda m: _HTML[m.group(0)], text)


def from_json(text: Any) -> Any:
    if not isinstance(text, str):
        raise TypeError(f"fromJSON needs a string, got {_type(text)}")
    return json.loads(text, parse_int=float)  # Go's json.Unmarshal into `any` gives float64


def _go_float(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 64): shortest digits, exponent below 1e-4 or from 1e6 (as fmt %v)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    number = Decimal(repr(value)).normalize()
    exponent = number.adjusted()
    if -4 <= exponent < 6:
        return format(number, "f")
    digits = "".join(map(str, number.as_tuple().digits))
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{'-' if value < 0 else ''}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"


def go_format(value: Any) -> str:
    """fmt.Sprintf("%v", value), which expr-lang's `string()` returns."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, list):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{go_format(k)}:{go_format(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def to_int(value: Any) -> int:
    """expr-lang `int` (Argo's `asInt`): floats truncate, strings must be plain integers (strconv.Atoi)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and _GO_INT.fullmatch(value):
        return int(value)
    raise ValueError(f"invalid operation: int({go_format(value) if isinstance(value, str) else _type(value)})")


def to_float(value: Any) -> float:
    """expr-lang `float` (Argo's `asFloat`): strconv.ParseFloat, so no spaces or underscores."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value.strip() == value and "_" not in value:
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"invalid operation: float({value if isinstance(value, str) else _type(value)})")


def to_text(value: Any) -> str:
    """How a `{{= }}` result lands in a manifest: strings as they are, anything else JSON-encoded."""
    if isinstance(value, str):
        return value
    try:
        return "" if value is None else go_json(value)
    except ValueError as error:  # NaN and infinities, as encoding/json refuses them
        raise RunnerError(f"expression result {value!r} cannot be written: {error}") from None


def _length(value: Any) -> int:
    if isinstance(value, str | list | dict):
        return len(value)  # Python counts code points, as Go's utf8.RuneCountInString
    raise TypeError(f"invalid argument for len (type {_type(value)})")


def _jsonpath(document: Any, path: str) -> Any:
    data = from_json(document) if isinstance(document, str) else document
    if not path.startswith("$"):
        raise ValueError(f"jsonpath {path!r}: must start with '$'")
    for match in re.finditer(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\['([^']*)'\]", path[1:]):
        key = match.group(1) or match.group(3)
        data = data[int(match.group(2))] if key is None else data[key]
    return data


def _lenient_int(value: Any) -> int:
    """Sprig's toInt64 (spf13/cast) is forgiving where expr-lang's `int` is not."""
    return int(float(value)) if isinstance(value, str) and "." in value else int(value)


def _b64dec(text: str) -> str:
    try:
        return base64.b64decode(str(text), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as error:
        return str(error)  # sprig returns the error text instead of failing


# --- predicate builtins: (items, closure, *extra) --------------------------------------------------


def _test(call: Closure, item: Any, index: int) -> bool:
    result = call(item, index)
    if not isinstance(result, bool):
        raise TypeError(f"predicate should return boolean (got {_type(result)})")
    return result


def _find_index(items: list, call: Closure, reverse: bool = False) -> int | None:
    order = range(len(items) - 1, -1, -1) if reverse else range(len(items))
    return next((i for i in order if _test(call, items[i], i)), None)  # expr-lang gives nil, not -1


def _find(items: list, call: Closure, reverse: bool = False) -> Any:
    index = _find_index(items, call, reverse)
    return None if index is None else items[index]


def _itself(item: Any, index: int) -> Any:
    return item


def _count(items: list, call: Closure | None = None) -> int:
    # count(xs) without a predicate counts the elements that are true
    return sum(_test(call or _itself, item, i) for i, item in enumerate(items))


def _reduce(items: list, call: Closure, *initial: Any) -> Any:
    if not initial and not items:
        raise ValueError("reduce of empty array with no initial value")
    acc, start = (initial[0], 0) if initial else (items[0], 1)
    for index in range(start, len(items)):
        acc = call(items[index], index, acc)
    return acc


PREDICATES: dict[str, Callable[..., Any]] = {
    "all": lambda items, call: all(_test(call, x, i) for i, x in enumerate(items)),
    "any": lambda items, call: any(_test(call, x, i) for i, x in enumerate(items)),
    "none": lambda items, call: not any(_test(call, x, i) for i, x in enumerate(items)),
    "one": lambda items, call: _count(items, call) == 1,
    "filter": lambda items, call: [x for i, x in enumerate(items) if _test(call, x, i)],
    "map": lambda items, call: [call(x, i) for i, x in enumerate(items)],
    "count": _count,
    "find": _find,
    "findIndex": _find_index,
    "findLast": lambda items, call: _find(items, call, reverse=True),
    "findLastIndex": lambda items, call: _find_index(items, call, reverse=True),
    "reduce": _reduce,
}

#: name -> (pointers the predicate may use, how many arguments may follow the array, predicate included).
#: expr-lang v1.17's checker declares `#index` only for map and reduce ("unknown pointer #index"
#: elsewhere), and `#acc` only for reduce.
PREDICATE_SYNTAX: dict[str, tuple[frozenset[str], tuple[int, ...]]] = {
    **{name: (frozenset({""}), (1,)) for name in PREDICATES},
    "map": (frozenset({"", "index"}), (1,)),
    "count": (frozenset({""}), (0, 1)),  # count(xs) has no predicate
    "reduce": (frozenset({"", "index", "acc"}), (1, 2)),
}


FUNCTIONS: dict[str, Any] = {
    "jsonpath": _jsonpath,
    "asInt": to_int,
    "int": to_int,
    "asFloat": to_float,
    "float": to_float,
    "string": go_format,
    "toJson": go_json,
    "toJSON": lambda value: go_json(value, indent=2),
    "fromJSON": from_json,
    "len": _length,
    "lower": lambda s: str(s).lower(),
    "upper": lambda s: str(s).upper(),
    "trim": lambda s: str(s).strip(),
    "split": lambda s, sep: str(s).split(sep),
    "join": lambda items, sep="": sep.join(to_text(i) for i in items),
    "sprig": {
        "trim": lambda s: str(s).strip(),
        "upper": lambda s: str(s).upper(),
        "lower": lambda s: str(s).lower(),
        "toString": to_text,
        "atoi": _lenient_int,
        "int": _lenient_int,
        "add": lambda *values: sum(_lenient_int(v) for v in values),
        "sub": lambda a, b: _lenient_int(a) - _lenient_int(b),
        "mul": lambda *values: math.prod(_lenient_int(v) for v in values),
        "min": lambda first, *rest: min(_lenient_int(v) for v in (first, *rest)),
        "max": lambda first, *rest: max(_lenient_int(v) for v in (first, *rest)),
        "b64dec": _b64dec,
        "b64enc": lambda s: base64.b64encode(str(s).encode()).decode(),
        "default": lambda d, v=None: v if v not in (None, "") else d,
    },
}
