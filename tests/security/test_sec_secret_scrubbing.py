"""Provider keys must never come back out of the gateway, whole or in part, in any form.

Providers echo the key they were sent in their error texts (the emulators echo it
plain, URL-encoded, in a `key=` query string and inside `Basic` credentials, in JSON,
in an HTML page and in a stream's error event). The keys here are prefixes of each
other, within one pool and across providers, so blanking them one by one in config
order leaves the longer key's tail (`***-secret`). The caller's answer, the gateway's
log file and pygate.ai_calls are searched for every key, every tail and every encoding.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Iterator

import anthropic
import openai
import pytest
from support.ai_setup import ai_row, new_request_id
from support.client import fetch
from support.gateway import Gateway, running

CALLER_KEY = "scrub-caller-key"
# Shorter keys first, as an operator would list them: the order that leaked tails.
POOL = ["revoked-pfx-7Qm2", "revoked-pfx-7Qm2-Zt9LongSecretTail"]
ANTHROPIC_POOL = ["revoked-ant-Kx", "revoked-ant-Kx-Yq4AnthropicTail"]
HTML_KEY = "revoked-html-Pq7-HtmlSecretTail"
STREAM_SHORT, STREAM_LONG = "sk-mid", "sk-mid-Vb3StreamSecretTail"
MCP_TOKEN = "mcp-Zq8-McpTokenTail"  # sent to an MCP server that quotes it back
SECRETS = [*POOL, *ANTHROPIC_POOL, HTML_KEY, STREAM_SHORT, STREAM_LONG, MCP_TOKEN]
TAILS = ["Zt9LongSecretTail", "Yq4AnthropicTail", "HtmlSecretTail", "Vb3StreamSecretTail"]
TAILS += ["McpTokenTail"]


def forms(key: str) -> list[str]:
    """Every way a key can show: itself, its encodings, the Basic credentials made
    with it, and (for the longer keys) what is left after a shorter key is blanked."""
    basic = base64.b64encode(f"api:{key}".encode()).decode()
    return [
        key,
        urllib.parse.quote(key, safe=""),
        urllib.parse.quote_plus(key),
        basic,
        basic[4:],
        base64.b64encode(key.encode()).decode().rstrip("="),
    ]


def leaks(text: str) -> list[str]:
    found = [form for key in SECRETS for form in forms(key) if form in text]
    return found + [tail for tail in TAILS if tail in text]


@pytest.fixture(scope="module")
def scrub_gw(emulators, tmp_path_factory) -> Iterator[Gateway]:
    def provider(name: str, kind: str, keys: list[str]) -> dict:
        return {
            "name": name,
            "kind": kind,
            "base_url": emulators.base_url(kind),
            "keys": keys,
            "retries": 0,
            "key_cooldown": "1ms",  # every call meets every key again
        }

    config = {
        "workers": 1,
        "consumers": [{"name": "mallory", "keys": [CALLER_KEY]}],
        "ai": {
            "providers": [
                provider("prefixed", "openai", POOL),
                provider("prefixed-ant", "anthropic", ANTHROPIC_POOL),
                provider("htmlpage", "openai", [HTML_KEY]),
                provider("short", "openai", [STREAM_SHORT]),
                provider("midstream", "openai", [STREAM_LONG]),
            ],
            "mcp": {
                "templates": False,
                "servers": [
                    {
                        "name": "quoter",
                        "url": f"http://127.0.0.1:{emulators.port}/mcp-echo",
                        "headers": {"Authorization": f"Bearer {MCP_TOKEN}"},
                    }
                ],
            },
        },
    }
    with running(Gateway(tmp_path_factory.mktemp("gw-scrub"), config)) as gateway:
        yield gateway


def openai_client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url("/v1"), api_key=CALLER_KEY, max_retries=0)


ASK = [{"role": "user", "content": "leak"}]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["prefixed/gpt-4o-mini", "prefixed-ant/claude-3-5-haiku"])
def test_prefix_keys_in_provider_errors(scrub_gw, model, stream):
    rid = new_request_id()
    with pytest.raises(openai.APIStatusError) as caught:
        answer = openai_client(scrub_gw).chat.completions.create(
            model=model, messages=ASK, stream=stream, extra_headers={"X-Request-Id": rid}
        )
        list(answer) if stream else None
    text = caught.value.response.text
    assert caught.value.status_code == 502, text
    assert "***" in text  # the provider's echo was there, and blanked
    assert leaks(text) == [], text
    assert leaks(ai_row(scrub_gw, rid)["error"]) == []


def test_prefix_keys_through_the_anthropic_api(scrub_gw):
    api = anthropic.Anthropic(base_url=scrub_gw.url(""), api_key=CALLER_KEY, max_retries=0)
    for model in ("prefixed-ant/claude-3-5-haiku", "prefixed/gpt-4o-mini"):
        with pytest.raises(anthropic.APIStatusError) as caught:
            api.messages.create(model=model, max_tokens=5, messages=ASK)
        assert leaks(caught.value.response.text) == [], caught.value.response.text


def test_key_across_the_truncation_of_an_html_error_page(scrub_gw):
    rid = new_request_id()
    with pytest.raises(openai.APIStatusError) as caught:
        openai_client(scrub_gw).chat.completions.create(
            model="htmlpage/gpt-4o-mini", messages=ASK, extra_headers={"X-Request-Id": rid}
        )
    assert leaks(caught.value.response.text) == [], caught.value.response.text
    # Not even the first characters of the key, where a 500-character cut would fall.
    assert "revoked-h" not in caught.value.response.text
    assert leaks(ai_row(scrub_gw, rid)["error"]) == []


def test_key_in_a_streamed_error_event(scrub_gw, emulators):
    emulators.fail("openai", "midstream", key=STREAM_LONG)
    rid, events = new_request_id(), []
    with pytest.raises(openai.APIError) as caught:
        stream = openai_client(scrub_gw).chat.completions.create(
            model="midstream/gpt-4o-mini",
            messages=[{"role": "user", "content": "tell me a long story"}],
            stream=True,
            extra_headers={"X-Request-Id": rid},
        )
        events.extend(stream)
    assert "stream broke off" in str(caught.value)
    assert leaks(str(caught.value)) == [], str(caught.value)
    row = ai_row(scrub_gw, rid)
    assert row["status"] == 502 and leaks(row["error"]) == [], row["error"]


def test_mcp_server_quoting_our_credentials(scrub_gw):
    """Its error reaches the caller as a tool error and the log as a warning."""
    headers = {"apikey": CALLER_KEY, "Accept": "application/json, text/event-stream"}
    for message in (
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "quoter__x"}},
    ):
        resp = fetch("POST", scrub_gw.url("/mcp"), json=message, headers=headers)
        assert resp.status == 200, resp.body[:300]
        assert leaks(resp.body.decode()) == [], resp.body
    assert "not allowed with Authorization: ***" in resp.body.decode()
    assert "MCP server quoter: cannot list its tools" in scrub_gw.log_text()


def test_nothing_leaked_to_the_log_or_the_store(scrub_gw):
    """Runs after the others (file order): everything they caused is in by now."""
    rid = new_request_id()
    with pytest.raises(openai.APIStatusError):
        openai_client(scrub_gw).chat.completions.create(
            model="prefixed/gpt-4o-mini", messages=ASK, extra_headers={"X-Request-Id": rid}
        )
    ai_row(scrub_gw, rid)
    rows = scrub_gw.logs_query("SELECT * FROM pygate.ai_calls")
    assert len(rows) >= 8
    assert leaks(repr(rows)) == []
    requests = scrub_gw.logs_query("SELECT * FROM pygate.requests")
    assert leaks(repr(requests)) == []
    assert leaks(scrub_gw.log_text()) == []


# ----- the scrubber itself, on the cases a live provider cannot be made to produce ------
def test_overlapping_keys_are_blanked_as_one_span():
    from pygate.ai.secrets import Scrubber

    scrubber = Scrubber(["abcd-1234", "1234-wxyz-secret"])
    # The second key starts inside the first: both must go, nothing of either stays.
    assert scrubber.scrub("x abcd-1234-wxyz-secret y") == "x *** y"
    assert scrubber.scrub("1234-wxyz-secret abcd-1234") == "*** ***"


def test_credentials_in_urls_and_headers_are_blanked():
    from pygate.ai.secrets import Scrubber

    scrubber = Scrubber(["k3y-Secret/+="])
    text = (
        "GET https://user:hunter2@example.test/v1?alt=sse&key=AIzaUnknownKey&x=1 "
        "Authorization: Basic dXNlcjpodW50ZXIy; Bearer eyJhbGciOi.payload.sig; "
        f"{urllib.parse.quote('k3y-Secret/+=', safe='')} {urllib.parse.quote_plus('k3y-Secret/+=')}"
    )
    out = scrubber.scrub(text)
    for secret in ("hunter2", "AIzaUnknownKey", "dXNlcjpodW50ZXIy", "eyJhbGciOi", "k3y-Secret"):
        assert secret not in out, out
    assert "k3y-Secret%2F" not in out and "&x=1" in out and "alt=sse" in out
