"""The API's JSON parser: DRF's, with nesting too deep for the decoder refused as malformed JSON (400)."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

__all__ = ["JSONParser"]


class JSONParser(parsers.JSONParser):
    """Parse JSON bodies; a body nested deeper than the decoder's recursion limit is a ``parse_error``.

    The standard library's decoder recurses once per level, so a 2 KB body of ``[[[[…]]]]`` raises
    RecursionError, which DRF's parser lets through as a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
