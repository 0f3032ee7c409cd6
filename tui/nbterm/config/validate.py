"""A small, strict validator: parsed TOML in, frozen dataclasses out, or every problem in words.

The schema (``schema.py``) is a set of frozen dataclasses whose field types say what a TOML file may
hold there: ``str``, ``int``, ``float``, ``bool``, ``tuple[X, ...]`` (an array), ``dict[K, V]`` (a
table of named entries), another schema class (a table), ``X | None`` (optional), and
``Annotated[X, Pattern(...), Length(...), Range(...)]`` for the rules on a value. Types are strict,
as TOML's are: ``"22"`` is not a port and ``true`` is not an integer.

A class may add rules across its fields with a ``validate`` method that yields
``(field, message)`` pairs (``field`` is "" for the whole table); it runs once every field of the
table is valid.

nbterm used pydantic for this; importing pydantic and building the schema took about 280 ms of the
cockpit's start-up, and the error messages were rewritten from pydantic's anyway. This module
reports what TOML can get wrong and nothing else, in about a millisecond.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from nbterm.config.locate import KeyPath

T = TypeVar("T")


@dataclass(frozen=True)
class Pattern:
    """The whole string must match ``regex``; ``expected`` says in words what it should be."""

    regex: str
    expected: str
    as_name: str | None = None
    """For a table's entry names: what a name may contain, after "the name 'x' ..."."""

    def matches(self, text: str) -> bool:
        return _compiled(self.regex).fullmatch(text) is not None


@dataclass(frozen=True)
class Length:
    min: int | None = None
    max: int | None = None


@dataclass(frozen=True)
class Range:
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    says: str | None = None
    """The whole rule in words, such as "port must be between 1 and 65535"."""


@dataclass(frozen=True)
class Issue:
    """One problem, at a key path; ``at_value`` places it at the value rather than the key."""

    path: KeyPath
    message: str
    at_value: bool = False


class Invalid(Exception):
    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("; ".join(f"{issue.path}: {issue.message}" for issue in issues))


class _Checked(Protocol):
    def validate(self) -> Iterator[tuple[str, str]]: ...


def parse(model: type[T], document: dict[str, Any]) -> T:
    """Build ``model`` from a parsed TOML document, or raise :class:`Invalid` with every issue."""
    issues: list[Issue] = []
    result = _table(model, document, (), issues)
    if issues:
        raise Invalid(issues)
    return typing.cast(T, result)


def schema_fields(model: type[Any]) -> dict[str, tuple[Any, dataclasses.Field[Any]]]:
    """A schema class's fields, in order: name -> (resolved annotation with its rules, field)."""
    return _fields(model)


# --- internals ----------------------------------------------------------------------------------

_BAD: Any = object()

_EXPECTED = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
_TOML_TYPES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    dict: "a table",
    list: "an array",
    dt.datetime: "a date-time",
    dt.date: "a date",
    dt.time: "a time",
}


@functools.cache
def _compiled(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


_FIELDS: dict[type[Any], dict[str, tuple[Any, dataclasses.Field[Any]]]] = {}


def _fields(model: type[Any]) -> dict[str, tuple[Any, dataclasses.Field[Any]]]:
    found = _FIELDS.get(model)
    if found is None:
        hints = typing.get_type_hints(model, include_extras=True)
        found = {field.name: (hints[field.name], field) for field in dataclasses.fields(model)}
        _FIELDS[model] = found
    return found


def _required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _got(value: Any) -> str:
    kind = next((name for t, name in _TOML_TYPES.items() if type(value) is t), None)
    return f"{kind or type(value).__name__} ({value!r})"


def _strip_optional(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    return annotation


def _value(annotation: Any, value: Any, path: KeyPath, issues: list[Issue]) -> Any:
    annotation = _strip_optional(annotation)
    rules: tuple[Any, ...] = ()
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *extras = typing.get_args(annotation)
        rules = tuple(extras)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return _table(annotation, value, path, issues)
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return _array(typing.get_args(annotation)[0], value, path, issues)
    if origin is dict:
        key_type, item_type = typing.get_args(annotation)
        return _named_entries(key_type, item_type, value, path, issues)
    return _scalar(annotation, rules, value, path, issues)


def _table(model: type[Any], value: Any, path: KeyPath, issues: list[Issue]) -> Any:
    if not isinstance(value, dict):
        issues.append(Issue(path, f"expected a table, got {_got(value)}", at_value=True))
        return _BAD
    fields = _fields(model)
    before = len(issues)
    named_by_a_suggestion: set[str] = set()
    for key in value:
        if key in fields:
            continue
        message = f"unknown key {key!r}"
        close = difflib.get_close_matches(key, sorted(fields), n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]!r}?"
            named_by_a_suggestion.add(close[0])
        else:
            message += f" (known keys: {', '.join(sorted(fields))})"
        issues.append(Issue((*path, key), message))
    values: dict[str, Any] = {}
    for name, (annotation, field) in fields.items():
        if name not in value:
            if _required(field) and name not in named_by_a_suggestion:
                issues.append(Issue((*path, name), "required key is missing"))
            continue
        result = _value(annotation, value[name], (*path, name), issues)
        if result is not _BAD:
            values[name] = result
    if len(issues) > before:
        return _BAD
    built = model(**values)
    if hasattr(built, "validate"):
        checked: _Checked = built
        for field_name, message in checked.validate():
            issues.append(Issue((*path, field_name) if field_name else path, message))
    return built if len(issues) == before else _BAD


def _array(item_type: Any, value: Any, path: KeyPath, issues: list[Issue]) -> Any:
    if not isinstance(value, list):
        issues.append(Issue(path, f"expected an array, got {_got(value)}", at_value=True))
        return _BAD
    items = [_value(item_type, item, (*path, i), issues) for i, item in enumerate(value)]
    return _BAD if any(item is _BAD for item in items) else tuple(items)


def _named_entries(
    key_type: Any, item_type: Any, value: Any, path: KeyPath, issues: list[Issue]
) -> Any:
    if not isinstance(value, dict):
        issues.append(Issue(path, f"expected a table, got {_got(value)}", at_value=True))
        return _BAD
    out: dict[str, Any] = {}
    good = True
    for key, item in value.items():
        problem = _name_problem(key_type, key)
        if problem is not None:
            issues.append(Issue((*path, key), problem))
            good = False
            continue
        result = _value(item_type, item, (*path, key), issues)
        good = good and result is not _BAD
        out[key] = result
    return out if good else _BAD


def _name_problem(key_type: Any, key: str) -> str | None:
    """What is wrong with an entry's name (``[hosts.NAME]``), or None."""
    rules = typing.get_args(key_type)[1:] if typing.get_origin(key_type) is typing.Annotated else ()
    for rule in rules:
        if isinstance(rule, Length) and rule.min is not None and len(key) < rule.min:
            return "the name must not be empty"
        if isinstance(rule, Length) and rule.max is not None and len(key) > rule.max:
            return f"the name {key!r} is too long (at most {rule.max} characters)"
        if isinstance(rule, Pattern) and not rule.matches(key):
            if rule.as_name:
                return f"the name {key!r} {rule.as_name}"
            return f"expected {rule.expected} here, got {key!r}"
    return None


def _scalar(
    kind: Any, rules: tuple[Any, ...], value: Any, path: KeyPath, issues: list[Issue]
) -> Any:
    # TOML booleans are Python bools, which are ints: an integer field must not take one.
    right_type = type(value) is kind or (kind is float and type(value) is int)
    if not right_type:
        expected = _EXPECTED.get(kind, getattr(kind, "__name__", str(kind)))
        issues.append(Issue(path, f"expected {expected}, got {_got(value)}", at_value=True))
        return _BAD
    if kind is float:
        value = float(value)
    for rule in rules:
        problem = _rule_problem(rule, value)
        if problem is not None:
            issues.append(Issue(path, problem, at_value=True))
            return _BAD
    return value


def _rule_problem(rule: Any, value: Any) -> str | None:
    if isinstance(rule, Length):
        if rule.min is not None and len(value) < rule.min:
            return "must not be empty" if rule.min == 1 else f"needs at least {rule.min} characters"
        if rule.max is not None and len(value) > rule.max:
            return f"is too long (at most {rule.max} characters)"
    elif isinstance(rule, Pattern):
        if not rule.matches(value):
            return f"expected {rule.expected}, got {value!r}"
    elif isinstance(rule, Range):
        problem = _range_problem(rule, value)
        if problem is not None:
            return f"{rule.says}, got {value!r}" if rule.says else f"{problem}, got {value!r}"
    return None


def _range_problem(rule: Range, value: float) -> str | None:
    if rule.ge is not None and value < rule.ge:
        return f"must be at least {rule.ge:g}"
    if rule.gt is not None and value <= rule.gt:
        return f"must be greater than {rule.gt:g}"
    if rule.le is not None and value > rule.le:
        return f"must be at most {rule.le:g}"
    return None
