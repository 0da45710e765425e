"""The API's JSON parser: DRF's, refusing duplicate keys and nesting too deep for the decoder as malformed JSON."""

import codecs

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

__all__ = ["JSONParser"]


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """Build a JSON object, refusing a name given twice (RFC 8259 section 4 leaves the outcome undefined)."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen.add(key)
    return dict(pairs)


class JSONParser(parsers.JSONParser):
    """Parse JSON bodies as DRF does, but answer ``parse_error`` (400) where DRF would guess or crash.

    - A key given twice: decoders disagree on which value wins (Python's takes the last, others the first or
      refuse), so a proxy or a log could see another body than the view. Refused.
    - Nesting deeper than the decoder's recursion limit: the standard library recurses once per level, so a
      2 KB body of ``[[[[…]]]]`` raises RecursionError, which DRF lets through as a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            decoded_stream = codecs.getreader(encoding)(stream)
            parse_constant = json.strict_constant if self.strict else None
            return json.load(decoded_stream, parse_constant=parse_constant, object_pairs_hook=_unique_keys)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
