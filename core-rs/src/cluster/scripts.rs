//! The Lua scripts: each check is one script call, so the decision is atomic in Redis (never
//! a read then a write from the node). Time is Redis's own (TIME), so the nodes' clocks do
//! not matter.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::connect::Conn;

/// GCRA on one key, as the local limiter (plugins/rate_limit.rs) but in microseconds and
/// for `want` tokens at once: grants as many as the bucket holds, up to `want`.
/// KEYS[1]: the bucket; ARGV: emission interval (µs), tolerance (µs), tokens wanted.
/// Returns {granted, tokens left, µs until full, µs until the next token (0: one is there)}.
const TAKE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local avail = math.floor((tolerance - (tat - now)) / emission)
if avail < 0 then avail = 0 end
local n = want
if n > avail then n = avail end
if n > 0 then
  tat = tat + n * emission
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
end
local left = math.floor((tolerance - (tat - now)) / emission)
local retry = 0
if left < 1 then retry = (tat - now) + emission - tolerance end
return {n, left, tat - now, retry}
"#;

/// This node's heartbeat: a sorted set of nodes scored by their last beat (Redis time, ms);
/// beats older than the TTL are dropped. Returns the live nodes.
/// KEYS[1]: the set; ARGV: node id, TTL (ms).
const HEARTBEAT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return redis.call('ZCARD', KEYS[1])
"#;

static TAKE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(TAKE));
static HEARTBEAT_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(HEARTBEAT));

/// What a lease asks Redis for.
pub struct Ask {
    pub emission_us: u64,
    pub tolerance_us: u64,
    pub want: u64,
}

/// What Redis granted, and where the shared bucket stands after it.
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    pub granted: u64,
    pub left: u64,
    pub full_in_us: u64,
    pub next_token_in_us: u64,
}

async fn bounded<T>(
    timeout: Duration,
    f: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

pub async fn take(
    conn: &mut Conn,
    key: &str,
    ask: &Ask,
    timeout: Duration,
) -> Result<Grant, String> {
    let mut call = TAKE_SCRIPT.prepare_invoke();
    call.key(key)
        .arg(ask.emission_us)
        .arg(ask.tolerance_us)
        .arg(ask.want);
    let r: Vec<i64> = bounded(timeout, conn.invoke(&call)).await?;
    let at = |i: usize| r.get(i).copied().unwrap_or(0).max(0) as u64;
    Ok(Grant {
        granted: at(0),
        left: at(1),
        full_in_us: at(2),
        next_token_in_us: at(3),
    })
}

pub async fn heartbeat(
    conn: &mut Conn,
    key: &str,
    node: &str,
    ttl_ms: u64,
    timeout: Duration,
) -> Result<u64, String> {
    let mut call = HEARTBEAT_SCRIPT.prepare_invoke();
    call.key(key).arg(node).arg(ttl_ms);
    let n: i64 = bounded(timeout, conn.invoke(&call)).await?;
    Ok(n.max(1) as u64)
}
