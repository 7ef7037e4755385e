"""The `ai:` section: config errors, balancing across deployments, limits per alias."""

from __future__ import annotations

import threading
import time
from collections import Counter

import openai
import pytest
import yaml
from support.ai_setup import ai_row, new_request_id
from support.gateway import run_cli
from support.provider_emulators import EmulatorServer


def provider(emu: EmulatorServer, name: str, key: str, **extra) -> dict:
    return {"name": name, "kind": "openai", "base_url": emu.base_url("openai"), "keys": [key],
            **extra}  # fmt: skip


def base(emu: EmulatorServer, **ai) -> dict:
    return {
        "workers": 1,
        "consumers": [{"name": "uma", "keys": ["uma-key"]}, {"name": "vic", "keys": ["vic-key"]}],
        "ai": {"providers": [provider(emu, "a", "sk-a"), provider(emu, "b", "sk-b")], **ai},
    }


def ask(gateway, key: str, model: str, text: str = "hi there", rid: str | None = None):
    api = openai.OpenAI(base_url=gateway.url("/v1"), api_key=key, max_retries=0, timeout=30)
    headers = {"X-Request-Id": rid} if rid else None
    return api.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], extra_headers=headers
    )


def test_config_errors_name_the_field(tmp_path, emulators):
    config = base(
        emulators,
        models=[{"name": "x", "deployments": [{"model": "nowhere/m"}], "fallbacks": ["x"]}],
        limits=[{"consumer": "uma", "alias": "x", "tokens_per_minute": 5}],
    )
    config["listen"] = "127.0.0.1:0"
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    res = run_cli("check", "--config", str(path))
    assert res.returncode == 2
    assert "ai.models[0].deployments[0].model: expected provider/model" in res.stderr
    assert "ai.models[0].fallbacks[0]: expected another alias or provider/model" in res.stderr
    assert "ai.limits[0]: set exactly one of consumer or alias" in res.stderr
    assert "gateway.yaml:" in res.stderr  # with the line


def test_weighted_deployments(make_gateway, emulators):
    models = [{"name": "w", "deployments": [{"model": "a/m", "weight": 1},
                                            {"model": "b/m", "weight": 3}]}]  # fmt: skip
    gateway = make_gateway(base(emulators, models=models), name="gw-weighted")
    before = len(emulators.calls())
    for n in range(60):
        ask(gateway, "uma-key", "w", f"call {n}")
    keys = Counter(c["key"] for c in emulators.calls()[before:])
    assert set(keys) == {"sk-a", "sk-b"} and keys["sk-b"] > keys["sk-a"], keys


def test_least_busy_avoids_a_deployment_in_use(make_gateway, emulators):
    ai = {
        "providers": [provider(emulators, "a", "sk-busy-a", timeout="2s", retries=0),
                      provider(emulators, "b", "sk-busy-b")],
        "models": [{"name": "lb", "balance": "least_busy",
                    "deployments": [{"model": "a/m"}, {"model": "b/m"}]}],
    }  # fmt: skip
    gateway = make_gateway({**base(emulators), "ai": ai}, name="gw-least-busy")
    emulators.fail("openai", "hang", key="sk-busy-a")
    outcome: list[BaseException] = []

    def slow_call() -> None:
        try:
            ask(gateway, "uma-key", "lb", "slow")
        except openai.APIStatusError as error:
            outcome.append(error)

    hanging = threading.Thread(target=slow_call)
    hanging.start()
    time.sleep(0.5)  # the first call now waits on deployment a
    rid = new_request_id()
    assert ask(gateway, "uma-key", "lb", "quick", rid).choices[0].message.content == "echo: quick"
    assert ai_row(gateway, rid)["provider"] == "b"
    hanging.join(30)
    assert outcome and outcome[0].status_code == 504  # a's timeout, nothing to fall back to


def test_limit_per_alias_counts_every_consumer(make_gateway, emulators):
    config = base(
        emulators,
        models=[{"name": "shared", "deployments": [{"model": "a/m"}]}],
        limits=[{"alias": "shared", "tokens_per_minute": 10}],
    )
    gateway = make_gateway(config, name="gw-alias-limit")
    ask(gateway, "uma-key", "shared", "one two three four five")  # 5 + 6 tokens
    with pytest.raises(openai.RateLimitError) as caught:
        ask(gateway, "vic-key", "shared")
    error = caught.value.response.json()["error"]
    assert error["kind"] == "token_limit_exceeded" and "alias 'shared'" in error["message"]
    assert ask(gateway, "vic-key", "a/m").choices[0].message.content == "echo: hi there"


def test_adding_the_ai_section_needs_a_restart(make_gateway, emulators):
    config = base(emulators)
    plain = {k: v for k, v in config.items() if k != "ai"}
    gateway = make_gateway(plain, name="gw-no-ai")
    gateway.write_config(config)
    assert gateway.reload() == "refused"
    assert "ai.listen: changing it needs a restart" in gateway.log_text()
