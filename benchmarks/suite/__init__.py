"""The benchmark suite: pygate beside nginx and HAProxy in one run on one machine.

    python -m benchmarks.suite [--scenarios plain,auth,...] [--peers nginx,haproxy] [--runs 3]

See run.py for the layout (which core runs what) and scenarios.py for what is measured.
"""
