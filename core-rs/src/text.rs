//! Addresses and numbers as text on the hot path, without the formatting machinery: `Display`
//! of an IPv4 address formats each octet through `core::fmt` (about a thousand instructions
//! for an address; tens by hand), and it ran several times per request (forwarding headers,
//! the call record's column).

use std::net::{IpAddr, Ipv4Addr};

/// Hands the digits of `v4` in dotted-quad form to `put`, byte by byte.
fn ipv4_digits(v4: Ipv4Addr, mut put: impl FnMut(u8)) {
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            put(b'.');
        }
        if octet >= 100 {
            put(b'0' + octet / 100);
        }
        if octet >= 10 {
            put(b'0' + octet / 10 % 10);
        }
        put(b'0' + octet % 10);
    }
}

/// Appends `ip` as `Display` writes it (IPv6 still goes through `Display`).
pub fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => ipv4_digits(v4, |b| out.push(char::from(b))),
        IpAddr::V6(v6) => out.push_str(&v6.to_string()),
    }
}

/// Appends `ip` as `Display` writes it, to bytes.
pub fn put_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => ipv4_digits(v4, |b| out.push(b)),
        IpAddr::V6(v6) => {
            use std::io::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

/// Appends `n` in decimal.
pub fn push_u64(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&d| char::from(d)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_match_display() {
        for text in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.255",
            "192.0.2.9",
            "2001:db8::1",
            "::ffff:192.0.2.1",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            let mut s = String::new();
            push_ip(&mut s, ip);
            assert_eq!(s, ip.to_string());
            let mut b = Vec::new();
            put_ip(&mut b, ip);
            assert_eq!(b, ip.to_string().into_bytes());
        }
    }

    #[test]
    fn decimals_match_display() {
        for n in [0, 7, 10, 999, 1_000_000_000, u64::MAX] {
            let mut s = String::new();
            push_u64(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }
}
