"""Just enough of ClickHouse's SQL lexer to route a statement without parsing it.

The server must know a few things before chDB sees the text: the statement kind
(INSERT with inline data, SET, USE, anything else), the output format named by a
FORMAT clause, and where the data of `INSERT ... FORMAT X` starts. Strings, quoted
identifiers, comments and parentheses are skipped properly so that, for instance, a
column called `format` or a `';'` inside a string does not fool it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from pygate.chserver.errors import NOT_IMPLEMENTED, SYNTAX_ERROR, ClickHouseError

WORD = "word"
STRING = "string"
QUOTED_ID = "quoted_id"
NUMBER = "number"
PUNCT = "punct"

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[A-Za-z_\x80-\uffff][A-Za-z0-9_$\x80-\uffff]*")
_NUMBER = re.compile(r"(?:0[xX][0-9a-fA-F]+|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    start: int
    end: int

    @property
    def keyword(self) -> str:
        return self.text.upper() if self.kind == WORD else ""

    @property
    def name(self) -> str:
        """An identifier's name, unquoted."""
        if self.kind == QUOTED_ID:
            return _unquote(self.text)
        return self.text


def tokens(text: str, pos: int = 0) -> Iterator[Token]:
    """Yield tokens lazily, so callers can stop early on a large body."""
    end = len(text)
    while pos < end:
        ch = text[pos]
        if ch.isspace():
            pos = _SPACE.match(text, pos).end()
        elif text.startswith("--", pos) or text.startswith("#!", pos) or text.startswith("# ", pos):
            newline = text.find("\n", pos)
            pos = end if newline < 0 else newline + 1
        elif text.startswith("/*", pos):
            close = text.find("*/", pos + 2)
            if close < 0:
                raise ClickHouseError(SYNTAX_ERROR, "Syntax error: unterminated comment")
            pos = close + 2
        elif ch in "'\"`":
            stop = _closing_quote(text, pos)
            yield Token(STRING if ch == "'" else QUOTED_ID, text[pos:stop], pos, stop)
            pos = stop
        elif match := _WORD.match(text, pos):
            yield Token(WORD, match.group(), pos, match.end())
            pos = match.end()
        elif match := _NUMBER.match(text, pos):
            yield Token(NUMBER, match.group(), pos, match.end())
            pos = match.end()
        else:
            yield Token(PUNCT, ch, pos, pos + 1)
            pos += 1


def _closing_quote(text: str, start: int) -> int:
    quote = text[start]
    pos = start + 1
    while pos < len(text):
        ch = text[pos]
        if ch == "\\":
            pos += 2
        elif ch == quote:
            if pos + 1 < len(text) and text[pos + 1] == quote:  # doubled quote
                pos += 2
            else:
                return pos + 1
        else:
            pos += 1
    raise ClickHouseError(SYNTAX_ERROR, f"Syntax error: unterminated quoted text at {start}")


def _unquote(text: str) -> str:
    quote, body = text[0], text[1:-1]
    body = body.replace(quote * 2, quote)
    return re.sub(r"\\(.)", r"\1", body)


def top_level(stream: Iterator[Token]) -> Iterator[Token]:
    """Only the tokens outside parentheses and brackets."""
    depth = 0
    for token in stream:
        if token.kind == PUNCT and token.text in "([{":
            depth += 1
        elif token.kind == PUNCT and token.text in ")]}":
            depth = max(0, depth - 1)
        elif depth == 0:
            yield token


def first_keyword(text: str) -> str:
    for token in tokens(text):
        if token.kind == PUNCT and token.text == "(":
            continue  # "(SELECT ...) UNION ALL ..." is a SELECT
        return token.keyword
    return ""


def check_single_statement(text: str) -> None:
    """Reject "SELECT 1; DROP TABLE t" the way ClickHouse's HTTP interface does."""
    seen_semicolon = False
    for token in top_level(tokens(text)):
        if seen_semicolon:
            raise ClickHouseError(SYNTAX_ERROR, "Multi-statements are not allowed")
        if token.kind == PUNCT and token.text == ";":
            seen_semicolon = True


def output_format(text: str) -> str | None:
    """The format named by a trailing `FORMAT name [SETTINGS ...]` clause, if any."""
    found = None
    items = list(top_level(tokens(text)))
    for index, token in enumerate(items[:-1]):
        if token.keyword != "FORMAT" or items[index + 1].kind not in (WORD, QUOTED_ID):
            continue
        rest = items[index + 2 :]
        if not rest or rest[0].keyword == "SETTINGS" or rest[0].text == ";":
            found = items[index + 1].name
    return found


@dataclass(frozen=True, slots=True)
class InsertWithData:
    """`INSERT INTO t [(cols)] [SETTINGS ...] FORMAT fmt` followed by its data."""

    query: str  # the statement without its FORMAT clause, for chDB's streaming insert
    fmt: str
    data_offset: int  # where the data starts in the request bytes


# The INSERT head is text even when its data is binary; 1 MiB is far more than any
# real INSERT statement needs (ClickHouse's own max_query_size is 256 KiB).
_MAX_INSERT_HEAD = 1 << 20


def split_insert(statement: bytes) -> InsertWithData | None:
    """Find the data of an `INSERT ... FORMAT fmt` statement; None for other statements.

    INSERT ... VALUES and INSERT ... SELECT are ordinary statements for chDB, so they
    return None too.
    """
    # latin-1 keeps byte offsets equal to character offsets, whatever the data holds.
    head = statement[:_MAX_INSERT_HEAD].decode("latin-1")
    stream = top_level(tokens(head))
    first = next(stream, None)
    if first is None or first.keyword != "INSERT":
        return None
    for token in stream:
        if token.keyword in ("VALUES", "SELECT", "WITH"):
            return None
        if token.keyword == "FORMAT":
            name = next(stream, None)
            if name is None or name.kind not in (WORD, QUOTED_ID):
                raise ClickHouseError(SYNTAX_ERROR, "Syntax error: expected a format name")
            query = statement[first.start : token.start].decode("utf-8").strip()
            return InsertWithData(query, name.name, _data_start(statement, name.end))
    return None


def _data_start(statement: bytes, pos: int) -> int:
    # ClickHouse's ParserInsertQuery: the data starts after the first newline if there
    # is one, else after the blanks. Only these bytes are skipped, so binary data that
    # happens to begin with a tab or a newline byte is not eaten.
    end = len(statement)
    while pos < end and statement[pos] in b" \t\f":
        pos += 1
    if pos < end and statement[pos] == 0x0D:
        pos += 1
    if pos < end and statement[pos] == 0x0A:
        pos += 1
    return pos


def parse_use(text: str) -> str:
    """The database named by `USE db`."""
    items = [t for t in tokens(text) if not (t.kind == PUNCT and t.text == ";")]
    if len(items) != 2 or items[1].kind not in (WORD, QUOTED_ID):
        raise ClickHouseError(SYNTAX_ERROR, "Syntax error: expected USE <database>")
    return items[1].name


def parse_set(text: str) -> dict[str, str]:
    """`SET a = 1, b = 'x'` as {name: SQL literal}.

    Only the plain form is accepted: SET ROLE and friends have no meaning for an
    embedded store with a single user.
    """
    items = [t for t in tokens(text)]
    if items and items[-1].kind == PUNCT and items[-1].text == ";":
        items.pop()
    settings: dict[str, str] = {}
    pos = 1
    while pos < len(items):
        name = items[pos]
        if name.kind != WORD or pos + 1 >= len(items) or items[pos + 1].text != "=":
            raise ClickHouseError(
                NOT_IMPLEMENTED, "Only SET name = value[, name = value ...] is supported"
            )
        pos += 2
        start = pos
        depth = 0
        while pos < len(items):
            token = items[pos]
            if token.kind == PUNCT and token.text in "([":
                depth += 1
            elif token.kind == PUNCT and token.text in ")]":
                depth -= 1
            elif depth == 0 and token.kind == PUNCT and token.text == ",":
                break
            pos += 1
        if pos == start:
            raise ClickHouseError(SYNTAX_ERROR, f"Syntax error: no value for setting {name.text}")
        if any(t.kind == PUNCT and t.text == ";" for t in items[start:pos]):
            raise ClickHouseError(SYNTAX_ERROR, "Multi-statements are not allowed")
        settings[name.text] = text[items[start].start : items[pos - 1].end]
        pos += 1  # the comma
    if not settings:
        raise ClickHouseError(SYNTAX_ERROR, "Syntax error: SET needs name = value")
    return settings


def quote_literal(value: str) -> str:
    """A string as a ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
