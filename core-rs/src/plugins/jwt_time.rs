//! The time claims of a JWT (exp, nbf, iat) as one validity window, in milliseconds.
//!
//! RFC 7519 §2 NumericDate is any JSON number of seconds: integer, fraction, exponent
//! notation, negative. Every form is read as seconds and compared at millisecond precision,
//! at first verification and for a cached token alike (both call `TimeWindow::check`). A
//! claim that is present but not a number (string, boolean, null, array, object) refuses
//! the token: a parser that skipped it would let the token live forever.

use serde_json::{Map, Value};

/// When a token may be used: `from_ms <= now < until_ms` (Unix milliseconds, leeway
/// included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    from_ms: i64,
    until_ms: i64,
    /// Why a token is refused before `from_ms`: its nbf or its iat lies ahead.
    early: &'static str,
}

const NOT_YET_NBF: &str = "invalid token: not valid yet (nbf)";
const NOT_YET_IAT: &str = "invalid token: issued in the future (iat)";
const EXPIRED: &str = "invalid token: expired";

impl TimeWindow {
    /// The window of a token's claims. `require_exp`: a token without exp is refused.
    pub fn of(
        claims: &Map<String, Value>,
        leeway_ms: i64,
        require_exp: bool,
    ) -> Result<TimeWindow, &'static str> {
        let exp = numeric_date_ms(claims, "exp", "invalid token: exp is not a NumericDate")?;
        let nbf = numeric_date_ms(claims, "nbf", "invalid token: nbf is not a NumericDate")?;
        let iat = numeric_date_ms(claims, "iat", "invalid token: iat is not a NumericDate")?;
        if require_exp && exp.is_none() {
            return Err("invalid token: missing the exp claim");
        }
        let until_ms = exp.map_or(i64::MAX, |e| e.saturating_add(leeway_ms));
        let nbf_from = nbf.map_or(i64::MIN, |n| n.saturating_sub(leeway_ms));
        let iat_from = iat.map_or(i64::MIN, |i| i.saturating_sub(leeway_ms));
        let (from_ms, early) = if iat_from > nbf_from {
            (iat_from, NOT_YET_IAT)
        } else {
            (nbf_from, NOT_YET_NBF)
        };
        Ok(TimeWindow {
            from_ms,
            until_ms,
            early,
        })
    }

    /// Whether the token may be used at `now_ms` (Unix milliseconds), and if not, why.
    pub fn check(&self, now_ms: i64) -> Result<(), &'static str> {
        if now_ms >= self.until_ms {
            Err(EXPIRED)
        } else if now_ms < self.from_ms {
            Err(self.early)
        } else {
            Ok(())
        }
    }
}

/// A claim's NumericDate in Unix milliseconds (saturating far outside i64's range);
/// None when absent; `refusal` when present but not a number.
fn numeric_date_ms(
    claims: &Map<String, Value>,
    name: &str,
    refusal: &'static str,
) -> Result<Option<i64>, &'static str> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let seconds = n.as_f64().ok_or(refusal)?;
            // `as` saturates: 1e300 s is i64::MAX ms, -1e300 s is i64::MIN.
            Ok(Some((seconds * 1000.0).floor() as i64))
        }
        Some(_) => Err(refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(claims: &str, leeway_ms: i64, require_exp: bool) -> Result<TimeWindow, &str> {
        let map: Map<String, Value> = serde_json::from_str(claims).unwrap();
        TimeWindow::of(&map, leeway_ms, require_exp)
    }

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn every_numeric_form_is_seconds() {
        for (exp, until) in [
            ("1800000001", NOW + 1000),
            ("1800000000.25", NOW + 250),
            ("1.8000000005e9", NOW + 500),
            ("1800000000.9999", NOW + 999),
            ("-1", -1000),
            ("1e300", i64::MAX),
            ("100000000000000000000000000", i64::MAX),
        ] {
            let w = window(&format!(r#"{{"exp":{exp}}}"#), 0, true).unwrap();
            assert_eq!(w.until_ms, until, "exp {exp}");
        }
    }

    #[test]
    fn exp_is_exclusive_and_leeway_widens_both_ends() {
        let w = window(r#"{"exp":1800000000.5,"nbf":1800000000.25}"#, 0, true).unwrap();
        assert_eq!(w.check(NOW + 249), Err(NOT_YET_NBF));
        assert_eq!(w.check(NOW + 250), Ok(()));
        assert_eq!(w.check(NOW + 499), Ok(()));
        assert_eq!(w.check(NOW + 500), Err(EXPIRED));
        let lax = window(r#"{"exp":1800000000.5,"nbf":1800000000.25}"#, 2000, true).unwrap();
        assert_eq!(lax.check(NOW - 1750), Ok(()));
        assert_eq!(lax.check(NOW + 2499), Ok(()));
        assert_eq!(lax.check(NOW + 2500), Err(EXPIRED));
    }

    #[test]
    fn a_future_iat_is_refused_like_nbf() {
        let w = window(r#"{"exp":1800000100,"iat":1800000010,"nbf":1}"#, 0, true).unwrap();
        assert_eq!(w.check(NOW), Err(NOT_YET_IAT));
        assert_eq!(w.check(NOW + 10_000), Ok(()));
    }

    #[test]
    fn non_numeric_claims_refuse_the_token() {
        for claims in [
            r#"{"exp":"1800000100"}"#,
            r#"{"exp":true}"#,
            r#"{"exp":null}"#,
            r#"{"exp":[1]}"#,
            r#"{"exp":1800000100,"nbf":"0"}"#,
            r#"{"exp":1800000100,"iat":{}}"#,
        ] {
            assert!(window(claims, 0, false).is_err(), "{claims}");
        }
    }

    #[test]
    fn exp_is_required_unless_configured_otherwise() {
        assert_eq!(
            window("{}", 0, true),
            Err("invalid token: missing the exp claim")
        );
        assert_eq!(window("{}", 0, false).unwrap().check(NOW), Ok(()));
    }
}
