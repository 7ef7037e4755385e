"""Each benchmark also asserts the answer, so a fast wrong result cannot pass."""

from __future__ import annotations


def test_route_match_among_1000_routes(benchmark, hot_paths) -> None:
    assert benchmark(hot_paths.route_match, "api.test", "/svc777/items/42", "GET") == "svc777"


def test_route_miss(benchmark, hot_paths) -> None:
    assert benchmark(hot_paths.route_match, "api.test", "/nothing/here", "GET") is None


def test_key_lookup_among_100k_keys(benchmark, hot_paths) -> None:
    assert benchmark(hot_paths.key_lookup, "key-054321") == "c54321"


def test_rate_limit_check(benchmark, hot_paths) -> None:
    assert benchmark(hot_paths.rate_limit_check, "limited", "c1") is True


def test_encode_record_rowbinary(benchmark, hot_paths) -> None:
    assert benchmark(hot_paths.encode_record, "RowBinary") > 100


def test_encode_record_json(benchmark, hot_paths) -> None:
    assert benchmark(hot_paths.encode_record, "JSONEachRow") > 200
