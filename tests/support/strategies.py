"""Hypothesis strategies the property tests share."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def json_values() -> st.SearchStrategy[Any]:
    """Any JSON value: null, booleans, integers beyond 64 bits, finite floats, short strings, nested
    lists and objects."""
    leaves = (st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats(allow_nan=False)
              | st.text(max_size=10))
    return st.recursive(leaves, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids,
                                                                                          max_size=4), max_leaves=12)
