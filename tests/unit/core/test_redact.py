from __future__ import annotations

from podium.core import redact


def test_url_drops_userinfo_query_and_fragment() -> None:
    assert (
        redact.url("https://me:tok@hub.example:8443/a/b?sig=1#x") == "https://hub.example:8443/a/b"
    )
    assert redact.url("https://hub.example") == "https://hub.example"


def test_urls_in_a_text_lose_their_secrets_and_keep_the_words_around() -> None:
    text = "GET https://u:p@cdn.example/f?X-Amz-Signature=zz: timed out (see http://a.example/)"
    assert redact.urls_in(text) == "GET https://cdn.example/f: timed out (see http://a.example/)"
