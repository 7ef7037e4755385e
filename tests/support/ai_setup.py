"""The AI gateway under test: emulators + a real gateway with an `ai:` section.

Import the fixtures into a test module: `from support.ai_setup import ai_gw, emulators`.
Each failure-mode test uses its own consumer, so limits and caches never interfere.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .gateway import Gateway, running
from .net import free_port, port_open, wait_until
from .provider_emulators import EmulatorServer

CONSUMERS = {
    "alice": "alice-ai-key",
    "bob": "bob-ai-key",
    "carol": "carol-ai-key",
    "erin": "erin-ai-key",
    "frank": "frank-ai-key",
}

PRICES = [
    {"model": "openai/gpt-4o-mini", "input_per_1m": 150.0, "output_per_1m": 600.0},
    {"model": "pool/gpt-4o-mini", "input_per_1m": 150.0, "output_per_1m": 600.0},
    {"model": "flaky/gpt-4o-mini", "input_per_1m": 150.0, "output_per_1m": 600.0},
    {"model": "anthropic/claude-3-5-haiku", "input_per_1m": 800.0, "output_per_1m": 4000.0},
    {"model": "gemini/gemini-1.5-flash", "input_per_1m": 75.0, "output_per_1m": 300.0},
    {"model": "mistral/mistral-small", "input_per_1m": 200.0, "output_per_1m": 600.0},
    {"model": "azure/gpt4o-deploy", "input_per_1m": 150.0, "output_per_1m": 600.0},
]


def ai_config(emu: EmulatorServer, mcp_upstream_url: str) -> dict[str, Any]:
    def provider(name: str, kind: str, prefix: str, keys: list[str], **extra: Any) -> dict:
        return {
            "name": name,
            "kind": kind,
            "base_url": emu.base_url(prefix),
            "keys": keys,
            "retries": 1,
            **extra,
        }

    return {
        "workers": 1,
        "consumers": [{"name": n, "keys": [k]} for n, k in CONSUMERS.items()],
        "ai": {
            "retry_backoff": "20ms",
            "providers": [
                provider("openai", "openai", "openai", ["sk-openai-1"]),
                provider("pool", "openai", "openai", ["sk-pool-a", "sk-pool-b"]),
                provider("anthropic", "anthropic", "anthropic", ["sk-ant-1"]),
                provider("gemini", "gemini", "gemini", ["gem-key-1"]),
                provider("mistral", "mistral", "mistral", ["mis-key-1"]),
                provider("azure", "azure", "azure", ["az-key-1"], api_version="2024-10-21"),
                provider("compat", "openai_compatible", "compat", []),
                provider(
                    "slow",
                    "openai",
                    "openai",
                    ["sk-slow-1"],
                    timeout="1s",
                    stream_idle_timeout="1s",
                    retries=0,
                ),
                provider("flaky", "openai", "openai", ["sk-flaky-1"]),
                # Keys the emulators refuse (see provider_emulators.py): auth failures.
                provider("locked", "openai", "openai", ["revoked-locked-1"]),
                provider("halfpool", "openai", "openai", ["revoked-half-1", "sk-half-good"]),
                provider("locked-ant", "anthropic", "anthropic", ["forbidden-ant-1"]),
                provider("locked-gem", "gemini", "gemini", ["revoked-gem-1"]),
                provider("tight", "openai", "openai", ["sk-tight-1"], retries=0),
            ],
            "models": [
                {
                    "name": "gpt",
                    "deployments": [{"model": "openai/gpt-4o-mini"}],
                    "fallbacks": ["claude"],
                },
                {"name": "claude", "deployments": [{"model": "anthropic/claude-3-5-haiku"}]},
                {
                    "name": "flaky-gpt",
                    "deployments": [{"model": "flaky/gpt-4o-mini"}],
                    "fallbacks": ["claude"],
                },
                {"name": "pooled", "deployments": [{"model": "pool/gpt-4o-mini"}]},
                {
                    "name": "locked-gpt",
                    "deployments": [{"model": "locked/gpt-4o-mini"}],
                    "fallbacks": ["claude"],
                },
                {
                    "name": "slowgpt",
                    "deployments": [{"model": "slow/gpt-4o-mini"}],
                    "fallbacks": ["gemini/gemini-1.5-flash"],
                },
                {
                    "name": "mixed",
                    "balance": "least_busy",
                    "deployments": [
                        {"model": "mistral/mistral-small"},
                        {"model": "azure/gpt4o-deploy"},
                    ],
                },
            ],
            "prices": PRICES,
            "limits": [
                {"consumer": "bob", "tokens_per_minute": 20},
                {"consumer": "carol", "cost_per_day": 0.001},
            ],
            "templates": [
                {
                    "name": "sentiment",
                    "path": "/ai/sentiment",
                    "model": "gpt",
                    "active": 2,
                    "versions": [
                        {
                            "version": 1,
                            "prompt": "Sentiment of: {{text}}",
                            "variables": {"text": "string"},
                        },
                        {
                            "version": 2,
                            "prompt": "Rate {{text}} from 1 to {{scale}}",
                            "system": "You rate sentiment.",
                            "variables": {"text": "string", "scale": "integer"},
                        },
                    ],
                },
            ],
            "cache": {"ttl": "1m"},
            "mcp": {
                "templates": True,
                "routes": [{"name": "list_models", "path": "/v1/models", "method": "GET"}],
                "servers": [{"name": "calc", "url": mcp_upstream_url}],
            },
        },
    }


def cost(model: str, prompt: int, completion: int) -> float:
    price = next(p for p in PRICES if p["model"] == model)
    return (prompt * price["input_per_1m"] + completion * price["output_per_1m"]) / 1e6


def new_request_id() -> str:
    return f"ai-test-{uuid.uuid4().hex}"


def ai_row(gateway: Gateway, request_id: str, timeout: float = 60) -> dict[str, Any]:
    """The pygate.ai_calls row of one call (waits for the shipper)."""
    sql = f"SELECT * FROM pygate.ai_calls WHERE request_id = '{request_id}'"

    def found() -> dict[str, Any] | None:
        rows = gateway.logs_query(sql)
        return rows[0] if rows else None

    return wait_until(found, timeout, interval=0.2, what=f"ai_calls row {request_id}")


@pytest.fixture(scope="session")
def emulators() -> Iterator[EmulatorServer]:
    server = EmulatorServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mcp_upstream() -> Iterator[str]:
    """An MCP server made with the official SDK (tools add, shout); its /mcp URL."""
    port = free_port()
    script = Path(__file__).with_name("mcp_upstream_server.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: port_open(port), 60, what="the upstream MCP server")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def ai_gw(
    emulators: EmulatorServer, mcp_upstream: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    config = ai_config(emulators, mcp_upstream)
    with running(Gateway(tmp_path_factory.mktemp("gw-ai"), config)) as gateway:
        yield gateway
