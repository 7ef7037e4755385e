"""`pygate logs report ai-usage` and `ai-models` over known AI calls."""

from __future__ import annotations

import json

import openai
import pytest
from support.ai_setup import ai_row, new_request_id
from support.provider_emulators import EmulatorServer


def config(emu: EmulatorServer) -> dict:
    return {
        "workers": 1,
        "consumers": [{"name": "rita", "keys": ["rita-key"]}, {"name": "sam", "keys": ["sam-key"]}],
        "ai": {
            "providers": [
                {
                    "name": "openai",
                    "kind": "openai",
                    "base_url": emu.base_url("openai"),
                    "keys": ["sk-r"],
                },
            ],
            "prices": [{"model": "openai/m", "input_per_1m": 1000.0, "output_per_1m": 2000.0}],
        },
    }


def test_ai_reports(make_gateway, emulators):
    gateway = make_gateway(config(emulators), name="gw-ai-reports")
    rids = []
    for key, text, stream in (
        ("rita-key", "one two", False),
        ("rita-key", "one two three", True),
        ("sam-key", "four", False),
    ):
        api = openai.OpenAI(base_url=gateway.url("/v1"), api_key=key, max_retries=0)
        rid = new_request_id()
        rids.append(rid)
        messages = [{"role": "user", "content": text}]
        headers = {"X-Request-Id": rid}
        if stream:
            list(
                api.chat.completions.create(
                    model="openai/m", messages=messages, stream=True, extra_headers=headers
                )
            )
        else:
            api.chat.completions.create(model="openai/m", messages=messages, extra_headers=headers)
    with pytest.raises(openai.NotFoundError):
        api.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    for rid in rids:
        ai_row(gateway, rid)

    res = gateway.cli("logs", "report", "ai-usage", "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    rows = rows.get("ai-usage", rows) if isinstance(rows, dict) else rows
    by_key = {(r["consumer"], r["model"]): r for r in rows}
    rita = by_key[("rita", "openai/m")]
    # (2 + 3) and (3 + 4) tokens, the second streamed
    assert (rita["calls"], rita["input_tokens"], rita["output_tokens"]) == (2, 5, 7)
    assert rita["cost"] == pytest.approx((5 * 1000 + 7 * 2000) / 1e6)
    assert (rita["streamed"], rita["errors"], rita["estimated_tokens"]) == (1, 0, 0)
    sam = by_key[("sam", "openai/m")]
    assert (sam["calls"], sam["input_tokens"], sam["output_tokens"]) == (1, 1, 2)
    assert by_key[("sam", "nope")]["errors"] == 1

    res = gateway.cli("logs", "report", "ai-models", "--consumer", "rita", "--format", "json")
    assert res.returncode == 0, res.stderr
    models = json.loads(res.stdout)
    models = models.get("ai-models", models) if isinstance(models, dict) else models
    [model] = models
    assert (model["model"], model["calls"], model["tokens"], model["error_rate"]) == (
        "openai/m",
        2,
        12,
        0,
    )
