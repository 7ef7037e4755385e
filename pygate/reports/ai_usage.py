"""AI usage per day, consumer and model: calls, tokens, cost, and how the calls went.

Reads pygate.ai_calls (one row per AI gateway call). `model` is provider/model, the
one that answered (or was tried last); estimated tokens are counted apart so an
analyst sees how much of the total rests on the estimate.
"""

from pygate.reports.report import Report

SQL = """
SELECT
    toDate(ts, 'UTC') AS day,
    consumer,
    if(provider = '', alias, concat(provider, '/', model)) AS model,
    count() AS calls,
    countIf(status >= 400) AS errors,
    sum(prompt_tokens) AS input_tokens,
    sum(completion_tokens) AS output_tokens,
    sumIf(prompt_tokens + completion_tokens, tokens_estimated) AS estimated_tokens,
    round(sum(cost_usd), 6) AS cost,
    countIf(cache_hit) AS cache_hits,
    countIf(fallback_used != '') AS fallbacks,
    countIf(streamed) AS streamed
FROM pygate.ai_calls
WHERE ts >= {from:DateTime64(3)} AND ts < {to:DateTime64(3)}
  AND (isNull({consumer:Nullable(String)}) OR consumer = {consumer:Nullable(String)})
GROUP BY day, consumer, model
ORDER BY day ASC, cost DESC, consumer ASC, model ASC
LIMIT {limit:UInt32}
"""

REPORT = Report(
    name="ai-usage",
    title="AI usage per day, consumer and model",
    description="AI calls, tokens and cost per day, consumer and model",
    sql=SQL,
    filters=("consumer",),
    in_overview=False,  # asked for by name: `pygate logs report ai-usage`
    default_limit=1000,
)
