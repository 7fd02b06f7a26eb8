#!/usr/bin/python3
"""Validate cl-tokend socket documents against proto/schemas/*.schema.json.

Importable (tests put this folder on sys.path):

    from validate import validate, DocumentInvalid
    validate(json.loads(body), "token")        # raises DocumentInvalid

and a command line:

    validate.py SCHEMA_NAME FILE|-             # exit 0 valid, 1 invalid, 2 usage

SCHEMA_NAME is a file name in proto/schemas with or without ".schema.json"
("token", "session-created"), optionally with a JSON-pointer fragment to check
against one of its parts ("session-create-request#/$defs/password"). `$ref`s between the schema files resolve from the
files themselves, never from the network. Needs only the standard library and
Debian's python3-jsonschema.
"""

import datetime
import functools
import json
import sys
import urllib.parse
from pathlib import Path

import jsonschema
from jsonschema import Draft202012Validator

SCHEMA_DIR = Path(__file__).resolve().parent.parent.parent / "proto" / "schemas"
SUFFIX = ".schema.json"


class DocumentInvalid(ValueError):
    """A document does not match its schema; str() lists every violation."""

    def __init__(self, schema_name, errors):
        self.schema_name = schema_name
        self.errors = errors
        base, hash_, frag = schema_name.partition("#")
        lines = [f"document does not match {base}{SUFFIX}{hash_}{frag}:"]
        lines += [f"  {e}" for e in errors]
        super().__init__("\n".join(lines))


def schema_names():
    """Every schema's short name ("token", "status", ...), sorted."""
    return sorted(p.name[: -len(SUFFIX)] for p in SCHEMA_DIR.glob("*" + SUFFIX))


def schema_path(name):
    """The file of schema NAME; accepts "token", "token.schema.json" or a path
    (a "#fragment" is ignored)."""
    short = Path(name.partition("#")[0]).name
    if short.endswith(SUFFIX):
        short = short[: -len(SUFFIX)]
    path = SCHEMA_DIR / (short + SUFFIX)
    if not path.is_file():
        raise KeyError(f"no schema {short!r} in {SCHEMA_DIR} (have: {', '.join(schema_names())})")
    return path


@functools.lru_cache(maxsize=None)
def _load_all():
    """{file URI: schema} for every schema file, each given its file URI as $id.

    The files carry no $id so that OpenAPI tools resolve their relative $refs
    against where the files lie; here the file URI plays that role.
    """
    store = {}
    for path in sorted(SCHEMA_DIR.glob("*" + SUFFIX)):
        with path.open(encoding="utf-8") as f:
            schema = json.load(f)
        uri = path.resolve().as_uri()
        schema.setdefault("$id", uri)
        store[uri] = schema
    return store


def load_schema(name):
    """The parsed schema NAME (with $id set to its file URI)."""
    return _load_all()[schema_path(name).resolve().as_uri()]


def _format_checker():
    """Format checks from the standard library, so none is silently skipped
    for want of an optional package."""
    checker = jsonschema.FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value):
        if not isinstance(value, str):
            return True
        # RFC 3339 needs the "T", seconds and an offset; fromisoformat (3.11)
        # accepts "Z" and checks the calendar (no 2026-02-30).
        if len(value) < 20 or value[10] not in "Tt":
            raise ValueError("not RFC 3339")
        parsed = datetime.datetime.fromisoformat(value.replace("z", "Z"))
        if parsed.tzinfo is None:
            raise ValueError("RFC 3339 needs an offset")
        return True

    @checker.checks("uri", raises=ValueError)
    def _uri(value):
        if not isinstance(value, str):
            return True
        parts = urllib.parse.urlsplit(value)
        return bool(parts.scheme) and (bool(parts.netloc) or bool(parts.path))

    return checker


@functools.lru_cache(maxsize=None)
def validator(name):
    """A Draft 2020-12 validator for schema NAME (optionally NAME#/json/pointer)
    with every $ref resolvable."""
    schema = load_schema(name)
    uri = schema["$id"]
    fragment = name.partition("#")[2]
    if fragment:  # no $id here: the resolver must look the file up, not this wrapper
        schema = {"$schema": schema["$schema"], "$ref": f"{uri}#{fragment}"}
    store = _load_all()
    kwargs = {"format_checker": _format_checker()}
    try:  # jsonschema >= 4.18 resolves through `referencing`
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        kwargs["registry"] = Registry().with_resources(
            (uri, Resource(contents=s, specification=DRAFT202012)) for uri, s in store.items()
        )
    except ImportError:  # Debian 12: jsonschema 4.10
        kwargs["resolver"] = jsonschema.RefResolver(
            # RefResolver files the referrer under base_uri: a fragment wrapper
            # must not shadow the schema file it points into.
            base_uri="" if fragment else uri, referrer=schema, store=store
        )
    return Draft202012Validator(schema, **kwargs)


def _where(error):
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _describe(error):
    text = f"at {_where(error)}: {error.message}"
    if error.context:  # oneOf/anyOf: say what the closest alternative wanted
        best = jsonschema.exceptions.best_match(error.context)
        text += f" (closest: at {_where(best)}: {best.message})"
    return text


def errors(document, schema_name):
    """Every violation of DOCUMENT against SCHEMA_NAME as readable lines; [] if valid."""
    found = sorted(validator(schema_name).iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    return [_describe(e) for e in found]


def validate(document, schema_name):
    """Raise DocumentInvalid unless DOCUMENT (parsed JSON) matches SCHEMA_NAME."""
    problems = errors(document, schema_name)
    if problems:
        short = schema_path(schema_name).name[: -len(SUFFIX)]
        fragment = schema_name.partition("#")[2]
        raise DocumentInvalid(short + (f"#{fragment}" if fragment else ""), problems)


def check_schemas():
    """Raise jsonschema.SchemaError unless every schema file is a valid 2020-12 schema."""
    for name in schema_names():
        Draft202012Validator.check_schema(load_schema(name))


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(f"usage: {Path(argv[0]).name} SCHEMA_NAME FILE|-\nschemas: {' '.join(schema_names())}",
              file=sys.stderr)
        return 2
    name, source = argv[1], argv[2]
    try:
        schema_path(name)
        if source == "-":
            document = json.load(sys.stdin)
        else:
            with open(source, encoding="utf-8") as f:
                document = json.load(f)
    except (KeyError, OSError, ValueError) as e:
        print(f"validate.py: {e}", file=sys.stderr)
        return 2
    try:
        validate(document, name)
    except DocumentInvalid as e:
        print(f"validate.py: {source}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
