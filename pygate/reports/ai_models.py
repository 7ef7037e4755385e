"""AI models side by side: latency, time to first token, errors, fallbacks, cost.

Which provider is slow or failing: `fallback_rate` counts calls a fallback answered
(the first choice failed), `error_rate` calls nothing could answer.
"""

from pygate.reports.report import Report

SQL = """
SELECT
    if(provider = '', alias, concat(provider, '/', model)) AS model,
    count() AS calls,
    round(100 * countIf(status >= 400) / calls, 2) AS error_rate,
    round(100 * countIf(fallback_used != '') / calls, 2) AS fallback_rate,
    round(100 * countIf(cache_hit) / calls, 2) AS cache_hit_rate,
    round(quantile(0.5)(latency_ms), 2) AS p50_ms,
    round(quantile(0.95)(latency_ms), 2) AS p95_ms,
    round(quantileIf(0.5)(ttft_ms, streamed), 2) AS ttft_p50_ms,
    sum(prompt_tokens + completion_tokens) AS tokens,
    round(sum(cost_usd), 6) AS cost
FROM pygate.ai_calls
WHERE ts >= {from:DateTime64(3)} AND ts < {to:DateTime64(3)}
  AND (isNull({consumer:Nullable(String)}) OR consumer = {consumer:Nullable(String)})
GROUP BY model
ORDER BY calls DESC, model ASC
LIMIT {limit:UInt32}
"""

REPORT = Report(
    name="ai-models",
    title="AI models: latency, errors, fallbacks, cost",
    description="per model: p50/p95 latency, time to first token, error and fallback rates",
    sql=SQL,
    filters=("consumer",),
    in_overview=False,  # asked for by name: `pygate logs report ai-usage`
    default_limit=100,
)
