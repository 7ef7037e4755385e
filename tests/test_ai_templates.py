"""Prompt template versions (split, rollback by a config reload) and budgets that
survive a restart, on a private gateway."""

from __future__ import annotations

import copy
import json
import urllib.request
from collections import Counter

import openai
from support.provider_emulators import EmulatorServer

KEY = "tina-key"


def config(emu: EmulatorServer, limits: list | None = None, **template: object) -> dict:
    versions = [
        {"version": 1, "prompt": "v1 {{text}}", "variables": {"text": "string"}},
        {"version": 2, "prompt": "v2 {{text}}", "variables": {"text": "string"}},
    ]
    return {
        "workers": 1,
        "consumers": [{"name": "tina", "keys": [KEY]}],
        "ai": {
            "providers": [
                {
                    "name": "openai",
                    "kind": "openai",
                    "base_url": emu.base_url("openai"),
                    "keys": ["sk-t"],
                }
            ],
            "prices": [{"model": "openai/m", "input_per_1m": 1000.0, "output_per_1m": 1000.0}],
            "limits": limits or [],
            "templates": [
                {
                    "name": "t",
                    "path": "/ai/t",
                    "model": "openai/m",
                    "versions": versions,
                    **template,
                }
            ],
        },
    }


def call_template(gateway, text: str) -> dict:
    request = urllib.request.Request(
        gateway.url("/ai/t"),
        json.dumps({"text": text}).encode(),
        {"apikey": KEY, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_split_then_rollback_by_reload(make_gateway, emulators):
    gateway = make_gateway(config(emulators, split={1: 50, 2: 50}), name="gw-split")
    answers = [call_template(gateway, f"x{n}") for n in range(40)]
    seen = Counter(a["version"] for a in answers)
    assert set(seen) == {1, 2}, seen  # 40 calls at 50/50: both versions answer
    for answer in answers:
        assert answer["output"].startswith(f"echo: v{answer['version']} ")

    gateway.write_config(config(emulators, active=1))  # roll back to version 1
    assert gateway.reload() == "reloaded"
    assert {call_template(gateway, f"y{n}")["version"] for n in range(10)} == {1}


def test_budget_survives_a_restart(make_gateway, emulators):
    # Each call costs (2 + 3 tokens) x $1000/M = $0.005; the budget is $0.02 per day.
    budget = [{"consumer": "tina", "cost_per_day": 0.02}]
    gateway = make_gateway(config(emulators, limits=budget), name="gw-budget")
    api = openai.OpenAI(base_url=gateway.url("/v1"), api_key=KEY, max_retries=0)
    for n in range(4):
        api.chat.completions.create(
            model="openai/m", messages=[{"role": "user", "content": f"spend {n}"}]
        )
    gateway.stop()
    restarted = make_gateway(copy.deepcopy(gateway.config), name="gw-budget")
    api = openai.OpenAI(base_url=restarted.url("/v1"), api_key=KEY, max_retries=0)
    try:
        api.chat.completions.create(model="openai/m", messages=[{"role": "user", "content": "no"}])
    except openai.RateLimitError as error:
        assert error.response.json()["error"]["kind"] == "budget_exceeded"
    else:
        raise AssertionError("the budget was reset by the restart")
