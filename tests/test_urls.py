"""chanlog.urls: dropping named query parameters from recorded URLs (``chanlog_drop_params``)."""

from __future__ import annotations

import pytest

from chanlog.urls import MAX_NAMES_TEXT, drop_params, param_names

URL = "ws://localhost:3014/channel?host=localhost&port=13179&token=s%20cret&role=initiator"


def test_param_names_split_on_commas_trim_and_dedupe() -> None:
    assert param_names("") == ()
    assert param_names(" host , token,,host ") == ("host", "token")


@pytest.mark.parametrize("bad", ["a=b", "a&b", "a#b", "a\nb"])
def test_param_names_refuse_what_cannot_be_a_name(bad: str) -> None:
    with pytest.raises(ValueError, match="holds"):
        param_names(bad)


def test_param_names_have_a_size_limit() -> None:
    with pytest.raises(ValueError, match=f"longer than {MAX_NAMES_TEXT}"):
        param_names("a," * MAX_NAMES_TEXT)


def test_drop_params_removes_every_occurrence_and_keeps_the_rest_byte_for_byte() -> None:
    assert drop_params(URL, ("token", "host")) == "ws://localhost:3014/channel?port=13179&role=initiator"
    assert drop_params(URL + "&token=again", ("token",)) == (
        "ws://localhost:3014/channel?host=localhost&port=13179&role=initiator")
    assert drop_params(URL, ()) == URL
    assert drop_params(URL, ("absent",)) == URL


def test_drop_params_compares_decoded_names_and_keeps_the_fragment() -> None:
    assert drop_params("WS://h/c?to%6Ben=1&a=%41#frag?x=1", ("token",)) == "WS://h/c?a=%41#frag?x=1"
    assert drop_params("ws://h/c?token=1", ("token",)) == "ws://h/c"
    assert drop_params("ws://h/c", ("token",)) == "ws://h/c"
    assert drop_params("ws://h/c?flag&token", ("token",)) == "ws://h/c?flag"
