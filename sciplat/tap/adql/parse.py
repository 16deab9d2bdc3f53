"""Parse ADQL text into a sqlglot tree, refusing everything ADQL 2.1 does not define.

sqlglot parses a large superset of SQL. Three checks keep only ADQL: every token must be of an
ADQL kind (no ``;``, ``::``, ``%``, parameters, brackets, block comments, hex literals), every
word before ``(`` must be an ADQL function, and every node of the tree must be of an ADQL
construct. ``--`` comments are ADQL and are dropped; nothing of the user's text reaches the
database except through the regenerated tree.
"""

from __future__ import annotations

import difflib
import re
from typing import Final

from sqlglot import exp, expressions
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from sciplat.tap.errors import AdqlSyntaxError, AdqlUnsupportedError

_DIALECT: Final = Dialect.get_or_raise("")

# name: (fewest, most) arguments; None means any number.
ADQL_FUNCTIONS: Final[dict[str, tuple[int, int | None]]] = {
    # mathematical and trigonometric (ADQL 2.1 §2.3)
    "ABS": (1, 1), "CEILING": (1, 1), "DEGREES": (1, 1), "EXP": (1, 1), "FLOOR": (1, 1),
    "LOG": (1, 1), "LOG10": (1, 1), "MOD": (2, 2), "PI": (0, 0), "POWER": (2, 2),
    "RADIANS": (1, 1), "SQRT": (1, 1), "RAND": (0, 1), "ROUND": (1, 2), "TRUNCATE": (1, 2),
    "SIN": (1, 1), "COS": (1, 1), "TAN": (1, 1), "COT": (1, 1), "ASIN": (1, 1), "ACOS": (1, 1),
    "ATAN": (1, 1), "ATAN2": (2, 2),
    # string and null handling (ADQL 2.1 §2.4, §2.5)
    "LOWER": (1, 1), "UPPER": (1, 1), "COALESCE": (1, None),
    # aggregates
    "COUNT": (1, 1), "SUM": (1, 1), "AVG": (1, 1), "MIN": (1, 1), "MAX": (1, 1),
    # geometry (ADQL 2.1 §4)
    "AREA": (1, 1), "BOX": (3, 5), "CENTROID": (1, 1), "CIRCLE": (2, 4), "CONTAINS": (2, 2),
    "COORD1": (1, 1), "COORD2": (1, 1), "COORDSYS": (1, 1), "DISTANCE": (2, 4),
    "INTERSECTS": (2, 2), "POINT": (2, 3), "POLYGON": (3, None), "REGION": (1, 1),
    # type conversion (optional ADQL 2.1 feature)
    "CAST": (1, 1),
}  # fmt: skip
GEOMETRY_FUNCTIONS: Final = frozenset(
    {"AREA", "BOX", "CENTROID", "CIRCLE", "CONTAINS", "COORD1", "COORD2", "COORDSYS",
     "DISTANCE", "INTERSECTS", "POINT", "POLYGON", "REGION"}
)  # fmt: skip

# Keywords that may stand before "(" without being a function call.
_PAREN_KEYWORDS: Final = frozenset(
    {"IN", "EXISTS", "AS", "FROM", "JOIN", "USING", "ON", "AND", "OR", "NOT", "WHERE",
     "SELECT", "HAVING", "UNION", "ALL", "INTERSECT", "EXCEPT", "BETWEEN", "DISTINCT", "BY",
     "WITH", "CHAR", "VARCHAR", "LIKE", "ILIKE", "IS"}
)  # fmt: skip

_T = TokenType
_ALLOWED_TOKENS: Final = frozenset(
    {_T.ALIAS, _T.ALL, _T.AND, _T.ASC, _T.BETWEEN, _T.COMMA, _T.CROSS, _T.DESC, _T.DISTINCT,
     _T.DOT, _T.EQ, _T.EXCEPT, _T.EXISTS, _T.FROM, _T.FULL, _T.GROUP_BY, _T.GT, _T.GTE,
     _T.HAVING, _T.IDENTIFIER, _T.ILIKE, _T.IN, _T.INNER, _T.INTERSECT, _T.IS, _T.JOIN,
     _T.LEFT, _T.LIKE, _T.LT, _T.LTE, _T.L_PAREN, _T.NATURAL, _T.NEQ, _T.NOT, _T.NULL,
     _T.NUMBER, _T.OFFSET, _T.ON, _T.OR, _T.ORDER_BY, _T.OUTER, _T.RIGHT, _T.R_PAREN,
     _T.SELECT, _T.STAR, _T.STRING, _T.UNION, _T.USING, _T.VAR, _T.WHERE, _T.WITH, _T.TOP,
     _T.AMP, _T.CARET, _T.PIPE, _T.TILDE, _T.DPIPE, _T.PLUS, _T.DASH, _T.SLASH,
     _T.BIGINT, _T.CHAR, _T.DOUBLE, _T.FLOAT, _T.INT, _T.SMALLINT, _T.TIMESTAMP, _T.VARCHAR}
)  # fmt: skip
_WORD_ADVICE: Final = {
    _T.LIMIT: "LIMIT is not ADQL: write SELECT TOP n ...",
    _T.FETCH: "FETCH is not ADQL: write SELECT TOP n ...",
}
_TOKEN_ADVICE: Final = {
    _T.SEMICOLON: "ADQL takes exactly one query: remove the ';' (and anything after it)",
    _T.DCOLON: "'::' casts are not ADQL: write CAST(x AS type)",
    _T.MOD: "'%' is not ADQL: write MOD(x, y)",
}

_ALLOWED_NODES: Final = frozenset(
    getattr(expressions, name)
    for name in [
        "Select",
        "Union",
        "Intersect",
        "Except",
        "With",
        "CTE",
        "Subquery",
        "TableAlias",
        "From",
        "Join",
        "Where",
        "Group",
        "Having",
        "Order",
        "Ordered",
        "Limit",
        "Offset",
        "Table",
        "Column",
        "Identifier",
        "Star",
        "Alias",
        "Literal",
        "Null",
        "Paren",
        "Neg",
        "Not",
        "And",
        "Or",
        "EQ",
        "NEQ",
        "GT",
        "GTE",
        "LT",
        "LTE",
        "Is",
        "Like",
        "ILike",
        "In",
        "Between",
        "Exists",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "DPipe",
        "Mod",
        "BitwiseAnd",
        "BitwiseOr",
        "BitwiseXor",
        "BitwiseNot",
        "Distinct",
        "Cast",
        "DataType",
        "DataTypeParam",
        "Abs",
        "Ceil",
        "Degrees",
        "Exp",
        "Floor",
        "Log",
        "Ln",
        "Pi",
        "Pow",
        "Radians",
        "Sqrt",
        "Rand",
        "Round",
        "Trunc",
        "Sin",
        "Cos",
        "Tan",
        "Cot",
        "Asin",
        "Acos",
        "Atan",
        "Atan2",
        "Lower",
        "Upper",
        "Coalesce",
        "Count",
        "Sum",
        "Avg",
        "Min",
        "Max",
        "Contains",
        "Anonymous",
        "Var",
    ]
    if hasattr(expressions, name)
)
_CAST_TYPES: Final = frozenset(
    {exp.DataType.Type.SMALLINT, exp.DataType.Type.INT, exp.DataType.Type.BIGINT,
     exp.DataType.Type.FLOAT, exp.DataType.Type.DOUBLE, exp.DataType.Type.CHAR,
     exp.DataType.Type.VARCHAR, exp.DataType.Type.TIMESTAMP}
)  # fmt: skip
_REGULAR_IDENTIFIER: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_QUOTED: Final = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_NODE_NAMES: Final = {
    "Union": "UNION", "Intersect": "INTERSECT", "Except": "EXCEPT", "Case": "CASE",
    "Window": "window functions (OVER)", "Boolean": "TRUE/FALSE", "Interval": "INTERVAL",
    "Placeholder": "parameters", "Parameter": "parameters", "Lateral": "LATERAL",
    "Qualify": "QUALIFY", "Array": "arrays", "Struct": "structs", "Bracket": "subscripts",
}  # fmt: skip


def tokenize(text: str) -> list[Token]:
    """sqlglot's tokens of ``text`` (no ADQL checks).

    Raises:
        TokenError: an unterminated string or quoted name.
    """
    return _DIALECT.tokenize(text)


def parse_adql(text: str) -> exp.Query:
    """The sqlglot tree of one ADQL query.

    Raises:
        AdqlSyntaxError: not ADQL; the message names the offending part and says what to write.
        AdqlUnsupportedError: an ADQL construct this service does not implement.
    """
    if not text.strip():
        raise AdqlSyntaxError("the QUERY parameter is empty: send an ADQL SELECT statement")
    if "/*" in _QUOTED.sub("", text):
        raise AdqlSyntaxError("'/* */' comments are not ADQL: use '--' comments")
    try:
        tokens = tokenize(text)
    except TokenError as exc:
        raise AdqlSyntaxError(f"cannot read the query: {exc}") from exc
    _check_tokens(tokens)
    try:
        trees = _DIALECT.parser().parse(tokens, text)
    except ParseError as exc:
        raise AdqlSyntaxError(_describe_parse_error(exc)) from exc
    if len(trees) != 1 or not isinstance(trees[0], exp.Query):
        raise AdqlSyntaxError("ADQL takes exactly one SELECT statement")
    tree = trees[0]
    _check_nodes(tree)
    return tree


def _check_tokens(tokens: list[Token]) -> None:
    for i, token in enumerate(tokens):
        kind = token.token_type
        if kind == _T.VAR and token.text.upper() == "TOP":
            token.token_type = kind = _T.TOP
        if kind == _T.VAR and token.text.upper() == "NULLS":
            raise AdqlSyntaxError(f"NULLS FIRST/LAST at line {token.line} is not ADQL")
        if kind in _WORD_ADVICE:
            raise AdqlSyntaxError(f"'{token.text}' at line {token.line}: {_WORD_ADVICE[kind]}")
        # Words are judged by the tree check; symbols and literals must be of ADQL kinds.
        word = _REGULAR_IDENTIFIER.match(token.text) is not None and kind != _T.STRING
        if kind not in _ALLOWED_TOKENS and not word:
            advice = _TOKEN_ADVICE.get(kind, "it is not part of ADQL")
            raise AdqlSyntaxError(f"'{token.text}' at line {token.line}: {advice}")
        if kind == _T.VAR and not _REGULAR_IDENTIFIER.match(token.text):
            raise AdqlSyntaxError(
                f"'{token.text}' at line {token.line} is not an ADQL identifier: names start "
                'with a letter and hold letters, digits and _ (or put them in "double quotes")'
            )
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if nxt is None:
            continue
        if kind == _T.NUMBER and nxt.token_type == _T.VAR and nxt.start == token.end + 1:
            raise AdqlSyntaxError(
                f"'{token.text}{nxt.text}' at line {token.line} is not a number ADQL reads"
                " (hexadecimal literals are not supported)"
            )
        if nxt.token_type == _T.L_PAREN and token.text[:1].isalpha() and kind != _T.IDENTIFIER:
            _check_function_name(token)


def _check_function_name(token: Token) -> None:
    name = token.text.upper()
    if name in ADQL_FUNCTIONS or name in _PAREN_KEYWORDS:
        return
    close = difflib.get_close_matches(name, list(ADQL_FUNCTIONS), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise AdqlSyntaxError(
        f"{token.text}() at line {token.line} is not an ADQL function{hint} "
        "(ADQL has mathematical, trigonometric, LOWER/UPPER/COALESCE, aggregate and "
        "geometry functions)"
    )


def _check_nodes(tree: exp.Expr) -> None:
    for node in tree.walk():
        if type(node) not in _ALLOWED_NODES:
            kind = type(node).__name__
            what = _NODE_NAMES.get(kind, kind.upper())
            raise AdqlSyntaxError(f"{what} is not part of ADQL (in: {_snippet(node)})")
        if isinstance(node, exp.Anonymous):
            _check_arity(node.name.upper(), len(node.expressions), node)
        elif isinstance(node, exp.Cast) and node.to.this not in _CAST_TYPES:
            raise AdqlSyntaxError(
                f"CAST to {node.to.sql()} is not ADQL: cast to SMALLINT, INTEGER, BIGINT, REAL, "
                "DOUBLE PRECISION, CHAR(n), VARCHAR(n) or TIMESTAMP"
            )
        elif isinstance(node, exp.Distinct) and node.args.get("on"):
            raise AdqlSyntaxError("DISTINCT ON is not ADQL")
        elif isinstance(node, exp.Join) and node.args.get("method") not in (None, "", "NATURAL"):
            raise AdqlSyntaxError(f"{node.args['method']} joins are not ADQL")
        elif isinstance(node, exp.Group) and node.args.get("all"):
            raise AdqlSyntaxError("GROUP BY ALL is not ADQL: list the grouping columns")
        elif isinstance(node, exp.With) and node.args.get("recursive"):
            raise AdqlSyntaxError("WITH RECURSIVE is not ADQL")
        elif isinstance(node, exp.Table) and node.args.get("catalog"):
            raise AdqlUnsupportedError(
                f"{_snippet(node)}: catalog-qualified table names are not supported; "
                "write schema.table"
            )


def _check_arity(name: str, count: int, node: exp.Expr) -> None:
    if name not in ADQL_FUNCTIONS:
        raise AdqlSyntaxError(f"{name}() is not an ADQL function")
    low, high = ADQL_FUNCTIONS[name]
    if count < low or (high is not None and count > high):
        want = str(low) if low == high else f"{low} to {high if high is not None else 'any'}"
        raise AdqlSyntaxError(f"{name} takes {want} arguments, not {count} (in: {_snippet(node)})")


def _snippet(node: exp.Expr) -> str:
    text = node.sql(comments=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _describe_parse_error(exc: ParseError) -> str:
    errors = exc.errors or []
    if not errors:
        return f"the query is not valid ADQL: {exc}"
    first = errors[0]
    where = f"line {first.get('line')}, column {first.get('col')}"
    near = (first.get("highlight") or "").strip()
    reason = str(first.get("description") or "syntax error").rstrip(".")
    if reason.startswith("Required keyword"):
        reason = "a clause is empty or the query ends too early"
    elif reason.startswith("Invalid expression"):
        reason = "unexpected word or symbol"
    near_text = f" near '{near}'" if near else ""
    return f"the query is not valid ADQL at {where}{near_text}: {reason}"
