"""The Compute Engine list `filter` language (the subset tooling uses).

Supported: `field = value`, `field != value`, `field : value` (has / wildcard `*`),
`field eq regex`, `field ne regex` (full-match regular expressions, the legacy syntax),
parenthesised terms joined by AND (explicit or implicit), OR, and NOT / leading `-`.
Fields are dotted paths into the resource (`labels.env`, `scheduling.preemptible`).
"""
from __future__ import annotations

import fnmatch
import re
from typing import Any, Callable

TOKEN = re.compile(r'\s*(?:(\()|(\))|(!=|=|:|<=|>=|<|>)|"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([^\s()=!:<>]+))')

Predicate = Callable[[dict], bool]


class FilterError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"Invalid list filter expression near {text[pos:pos + 20]!r}.")
        pos = m.end()
        lparen, rparen, op, dq, sq, word = m.groups()
        if lparen:
            out.append(("(", "("))
        elif rparen:
            out.append((")", ")"))
        elif op:
            out.append(("op", op))
        elif dq is not None:
            out.append(("str", dq.replace('\\"', '"')))
        elif sq is not None:
            out.append(("str", sq))
        else:
            out.append(("word", word))
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _lookup(resource: Any, path: str) -> list[Any]:
    values = [resource]
    for part in path.split("."):
        nxt = []
        for v in values:
            if isinstance(v, dict) and part in v:
                item = v[part]
                nxt.extend(item if isinstance(item, list) else [item])
            elif isinstance(v, list):
                nxt.extend(x[part] for x in v if isinstance(x, dict) and part in x)
        values = nxt
    return values


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _equal(actual: Any, wanted: str) -> bool:
    text = _text(actual)
    if text == wanted or (isinstance(actual, bool) and text == wanted.lower()):
        return True
    # URL-valued fields (zone, machineType) also match by their last path segment.
    return "/" in text and "/" not in wanted and text.rsplit("/", 1)[-1] == wanted


def _compare(field: str, op: str, wanted: str) -> Predicate:
    if op in ("eq", "ne"):
        try:
            rx = re.compile(wanted)
        except re.error as exc:
            raise FilterError(f"Invalid regular expression {wanted!r}: {exc}") from exc

        def regex_match(res: dict) -> bool:
            hit = any(rx.fullmatch(_text(v)) for v in _lookup(res, field))
            return hit if op == "eq" else not hit
        return regex_match
    if op == "=":
        return lambda res: any(_equal(v, wanted) for v in _lookup(res, field))
    if op == "!=":
        return lambda res: not any(_equal(v, wanted) for v in _lookup(res, field))
    if op == ":":
        if wanted == "*":
            return lambda res: bool(_lookup(res, field))
        return lambda res: any(fnmatch.fnmatchcase(_text(v), wanted) for v in _lookup(res, field))
    if op in ("<", "<=", ">", ">="):
        import operator
        fn = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]

        def ordered(res: dict) -> bool:
            for v in _lookup(res, field):
                try:
                    if fn(float(v), float(wanted)):
                        return True
                except (TypeError, ValueError):
                    if fn(_text(v), wanted):
                        return True
            return False
        return ordered
    raise FilterError(f"Unsupported operator {op!r}.")


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens, self.pos = tokens, 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise FilterError("Invalid list filter expression: unexpected end.")
        self.pos += 1
        return tok

    def expression(self) -> Predicate:
        terms: list[Predicate] = [self.term()]
        joins: list[str] = []
        while (tok := self.peek()) is not None and tok[0] != ")":
            if tok == ("word", "AND") or tok == ("word", "OR"):
                self.take()
                joins.append(tok[1])
            else:
                joins.append("AND")
            terms.append(self.term())
        # AND binds tighter than OR.
        groups: list[list[Predicate]] = [[terms[0]]]
        for join, term in zip(joins, terms[1:]):
            if join == "OR":
                groups.append([term])
            else:
                groups[-1].append(term)
        return lambda res: any(all(t(res) for t in g) for g in groups)

    def term(self) -> Predicate:
        tok = self.take()
        if tok == ("word", "NOT"):
            inner = self.term()
            return lambda res: not inner(res)
        if tok[0] == "(":
            inner = self.expression()
            if self.take()[0] != ")":
                raise FilterError("Invalid list filter expression: missing ')'.")
            return inner
        if tok[0] != "word":
            raise FilterError(f"Invalid list filter expression near {tok[1]!r}.")
        field, negate = tok[1], False
        if field.startswith("-"):
            field, negate = field[1:], True
        op_tok = self.take()
        if op_tok[0] == "op":
            op = op_tok[1]
        elif op_tok[0] == "word" and op_tok[1] in ("eq", "ne"):
            op = op_tok[1]
        else:
            raise FilterError(f"Invalid list filter expression: expected an operator after {field!r}.")
        value_tok = self.take()
        if value_tok[0] not in ("word", "str"):
            raise FilterError(f"Invalid list filter expression: expected a value after {op!r}.")
        pred = _compare(field, op, value_tok[1])
        return (lambda res: not pred(res)) if negate else pred


def compile_filter(text: str | None) -> Predicate:
    """Return a predicate over resource dicts; raises FilterError (→ HTTP 400) on bad syntax."""
    if not text or not text.strip():
        return lambda res: True
    parser = _Parser(_tokens(text))
    pred = parser.expression()
    if parser.peek() is not None:
        raise FilterError("Invalid list filter expression: unbalanced ')'.")
    return pred
