#!/usr/bin/env python3
"""The core's tokenizer (core-rs/src/tokens/, through `pygate._core`): tokens/s on one core.

What the AI path pays when a provider sends no usage, or for the prompt of a call under a
tokens-per-minute limit. Pinned to one core (taskset); each figure is the median of
`--runs` timed passes, after one untimed pass (the first count of an encoding parses its
ranks: timed apart, as "first load"). Texts: English prose, source code, and a short chat
prompt (per-call cost, the pyo3 call included).

Prints a markdown block and writes it as the `tokenizer` section of benchmarks/RESULTS.md.

    taskset -c 1 python benchmarks/tokenizer_speed.py [--runs 5] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.suite.report import write_section  # noqa: E402
from pygate import _core  # noqa: E402

PROSE = (
    "Large language models read text as tokens: pieces of words chosen by byte-pair "
    "encoding. The same sentence costs a different number of tokens under each encoding, "
    "which is why a gateway counts with the model's own tokenizer. In 2024, 1,234 requests "
    "a second were served; the median latency was 0.19 ms.\n\n"
)
CODE = (
    "def handle(request: Request) -> Response:\n"
    "    body = orjson.loads(request.body)\n"
    "    for i, item in enumerate(body.get('items', [])):\n"
    "        if item['qty'] > 10 and not item.get(\"gift\"):\n"
    "            raise ValueError(f'line {i}: too many')\n"
    "    return Response(status=200, body=b'{}')\n"
)
PROMPT = orjson.dumps(
    [
        {"role": "system", "content": "You answer in one sentence."},
        {"role": "user", "content": "What is the capital of France? " * 4},
    ]
)
MODELS = {"o200k_base": "gpt-4o-mini", "cl100k_base": "gpt-4"}


CALLS = 1000


def chat_calls(model: str) -> None:
    for _ in range(CALLS):
        _core.count_chat_tokens(model, PROMPT)


def timed(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mib", type=float, default=1.0, help="size of each long text")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = parser.parse_args()
    size = int(args.mib * 1024 * 1024)
    texts = {"prose": (PROSE * (size // len(PROSE) + 1))[:size],
             "code": (CODE * (size // len(CODE) + 1))[:size]}  # fmt: skip
    rows = []
    for encoding, model in MODELS.items():
        start = time.perf_counter()
        _core.count_tokens(model, "warm up")
        load_ms = (time.perf_counter() - start) * 1000
        for name, text in texts.items():
            tokens = _core.count_tokens(model, text)
            seconds = timed(lambda m=model, t=text: _core.count_tokens(m, t), args.runs)
            rows.append(
                f"| {encoding} | {name}, {args.mib:g} MiB | {tokens:,} | "
                f"{tokens / seconds / 1e6:.2f} M | {len(text) / seconds / 1e6:.1f} MB/s |"
            )
        prompt_tokens = _core.count_chat_tokens(model, PROMPT)
        per_call = timed(lambda m=model: chat_calls(m), args.runs) / CALLS
        rows.append(
            f"| {encoding} | chat prompt ({prompt_tokens} tokens), per call | "
            f"{prompt_tokens} | {per_call * 1e6:.1f} µs a call | first load {load_ms:.0f} ms |"
        )
    load = os.getloadavg()
    cpus = sorted(os.sched_getaffinity(0))
    text = "\n".join(
        [
            f"## Tokenizer speed: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            "",
            f"Command: `taskset -c 1 python benchmarks/tokenizer_speed.py --runs {args.runs}`"
            f" (cores {cpus}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f};"
            " other builds were running, so these are floors)",
            "",
            "| encoding | text | tokens | tokens/s | throughput |",
            "| --- | --- | ---: | ---: | ---: |",
            *rows,
            "",
            "One core, the GIL released for the long texts. The per-call row is the chat"
            " rule on a JSON `messages` list, pyo3 call included; first load parses the"
            " encoding's ranks once per process.",
        ]
    )
    print(text)
    if not args.no_write:
        write_section("tokenizer", text)


if __name__ == "__main__":
    main()
