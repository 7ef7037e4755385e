"""The attack suite: each module is one attack class, tried with the variants an attacker
would use, against real processes (the gateway, upstreams and clients on 127.0.0.1).

Fixtures come from tests/conftest.py. Module names start with `test_sec_` so they never
collide with a module of the same basename in tests/.
"""
