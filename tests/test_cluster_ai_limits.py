"""The AI gateway's token-per-minute limits and cost budgets are cluster-wide with
`cluster.redis`: two real gateway nodes on one real redis-server (started here) and the
provider emulators (tests/support) count the same usage, so what one node spent refuses
the next call on the other. Without the shared Redis each node would count alone."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator

import openai
import pytest
from support.provider_emulators import EmulatorServer
from support.redis_server import RedisServer, redis_available

pytestmark = pytest.mark.skipif(not redis_available(), reason="redis-server is not installed")


@pytest.fixture(scope="module")
def redis(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis-ai")).start()
    yield server
    server.stop()


def node(emu: EmulatorServer, redis: RedisServer, limits: list[dict], **cluster) -> dict:
    provider = {"name": "a", "kind": "openai", "base_url": emu.base_url("openai"),
                "keys": ["sk-a"]}  # fmt: skip
    return {
        "workers": 1,
        "consumers": [{"name": "uma", "keys": ["uma-key"]}, {"name": "vic", "keys": ["vic-key"]}],
        "cluster": {"redis": redis.url, "heartbeat": "200ms", **cluster},
        "ai": {
            "providers": [provider],
            "models": [{"name": "shared", "deployments": [{"model": "a/m"}]}],
            "limits": limits,
        },
    }


def ask(gateway, key: str, model: str, text: str = "hi there"):
    api = openai.OpenAI(base_url=gateway.url("/v1"), api_key=key, max_retries=0, timeout=30)
    return api.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])


def test_tokens_per_minute_shared_by_two_nodes(make_gateway, emulators, redis):
    limits = [{"alias": "shared", "tokens_per_minute": 10}]
    a = make_gateway(node(emulators, redis, limits), name="ai-node-a")
    b = make_gateway(node(emulators, redis, limits), name="ai-node-b")
    # Node b has not served a call: alone, it would have all 10 tokens left.
    ask(a, "uma-key", "shared", "one two three four five")  # 5 + 6 tokens: over 10
    time.sleep(0.3)  # the charge is written after the answer
    with pytest.raises(openai.RateLimitError) as caught:
        ask(b, "vic-key", "shared")
    error = caught.value.response.json()["error"]
    assert error["kind"] == "token_limit_exceeded" and "alias 'shared'" in error["message"]
    assert caught.value.response.headers["x-ratelimit-limit-tokens"] == "10"
    assert caught.value.response.headers["x-ratelimit-remaining-tokens"] == "0"
    # Another alias is not limited by it.
    assert ask(b, "vic-key", "a/m").choices[0].message.content == "echo: hi there"
    keys = redis.command("KEYS", "pygate:ai:*")
    assert "{alias:shared}:tpm" in keys, keys


def test_cost_budget_shared_by_two_nodes(make_gateway, emulators, redis):
    limits = [{"consumer": "uma", "cost_per_day": 0.000001}]
    cfg = node(emulators, redis, limits, key_prefix="budget:")
    cfg["ai"]["prices"] = [{"model": "a/m", "input_per_1m": 1000, "output_per_1m": 1000}]
    a = make_gateway(copy.deepcopy(cfg), name="ai-budget-a")
    b = make_gateway(copy.deepcopy(cfg), name="ai-budget-b")
    ask(a, "uma-key", "shared")
    time.sleep(0.3)
    with pytest.raises(openai.RateLimitError) as caught:
        ask(b, "uma-key", "shared")
    assert caught.value.response.json()["error"]["kind"] == "budget_exceeded"
    assert ask(b, "vic-key", "shared").choices  # another consumer's budget is its own
