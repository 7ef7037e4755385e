#!/usr/bin/env python3
"""pygate vs nginx as a reverse proxy: (a) plain proxy, (b) key-auth + rate-limit (never
refusing) + a call log per request. A preset of the suite (benchmarks/suite), which holds
the configurations, the pinning (proxy alone on core 0) and the reporting.

    python benchmarks/proxy_vs_nginx.py [--runs 3] [--duration 10] [--no-wrk]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.suite.run import main  # noqa: E402

PRESET = ["--scenarios", "plain,auth", "--peers", "pygate,nginx", "--section", "proxy-vs-nginx",
          "--no-generator-check"]  # fmt: skip

if __name__ == "__main__":
    sys.exit(main([*PRESET, "--duration", "10", *sys.argv[1:]]))
