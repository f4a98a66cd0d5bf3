//! Time as this tool reads, writes and shows it, in one type: jiff's
//! [`Timestamp`], the one kube's objects carry (k8s-openapi's `Time`).
//!
//! The readers follow Go's rules exactly, since Kubernetes (Go) wrote what
//! they read: an expiry is a credential's lifetime, and a lenient reader
//! would turn text kubectl refuses into a date. jiff reads more forms than
//! Go (a lower-case `t` or `z`, a leap second, offsets with seconds), so
//! each reader checks Go's shape first and gives jiff only what Go reads;
//! jiff then does the calendar (a day past the month's end is refused).
//! Anything else is `None` (an unknown time), never a panic: the text comes
//! from a file anyone may have edited.

use std::time::Duration;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;

pub use jiff::Timestamp;

/// Now, to the nanosecond.
pub fn now() -> Timestamp {
    Timestamp::now()
}

/// A timestamp from whole seconds since the Unix epoch, clamped to the
/// years jiff holds (-9999 to 9999): a JWT's `exp` can be any number.
pub fn from_second(secs: i64) -> Timestamp {
    let secs = secs.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `t` in RFC 3339, UTC, in whole seconds, as Kubernetes writes timestamps
/// (`2026-11-29T13:00:00Z`).
pub fn rfc3339(t: Timestamp) -> String {
    from_second(t.as_second()).to_string()
}

/// RFC 3339 as Kubernetes (Go's `time.RFC3339`) reads it, to the second:
/// `2026-11-29T13:00:00Z`, fractional seconds and `+01:00` offsets too, as
/// Kubernetes writes `expirationTimestamp`. Like Go, a lower-case `t` or
/// `z`, a leap second (`:60`), a day past the month's end and an offset past
/// `23:59` are refused.
pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    let sep = |at: usize, c: u8| b.get(at) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let fields = [0..4, 5..7, 8..10, 11..13, 14..16, 17..19];
    if fields.iter().any(|r| b.get(r.clone()).and_then(number).is_none()) || number(b.get(17..19)?)? > 59 {
        return None;
    }
    let mut rest = b.get(19..)?;
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = frac.get(digits..)?;
    }
    match rest {
        b"Z" => {}
        [b'+' | b'-', h1, h2, b':', m1, m2] if number(&[*h1, *h2])? <= 23 && number(&[*m1, *m2])? <= 59 => {}
        _ => return None,
    }
    // The fraction is dropped (whole seconds, as before); jiff checks the
    // calendar and applies the offset.
    let whole = format!("{}{}", text.get(..19)?, std::str::from_utf8(rest).ok()?);
    whole.parse::<Timestamp>().ok().map(|t| from_second(t.as_second()))
}

/// ASN.1 UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`), as an X.509 validity writes them (a leap second
/// `:60` is the next minute's first second, as Go reads it).
pub fn from_asn1(text: &str, generalized: bool) -> Option<Timestamp> {
    let digits = text.as_bytes().strip_suffix(b"Z")?;
    let (y, rest) = match (generalized, digits.len()) {
        (true, 14) => (number(digits.get(0..4)?)?, digits.get(4..)?),
        (false, 12) => {
            let yy = number(digits.get(0..2)?)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, digits.get(2..)?)
        }
        _ => return None,
    };
    let f = |r: std::ops::Range<usize>| rest.get(r).and_then(number);
    let (mo, d, h, mi, s) = (f(0..2)?, f(2..4)?, f(4..6)?, f(6..8)?, f(8..10)?);
    if s > 60 {
        return None;
    }
    let small = |n: i64| i8::try_from(n).ok();
    let civil =
        DateTime::new(i16::try_from(y).ok()?, small(mo)?, small(d)?, small(h)?, small(mi)?, small(s.min(59))?, 0);
    let at = civil.ok()?.to_zoned(TimeZone::UTC).ok()?.timestamp();
    Some(from_second(at.as_second() + i64::from(s == 60)))
}

/// A run of ASCII digits (at most 4, as every field here has) as a number;
/// `None` for anything else, an empty run included.
fn number(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || digits.len() > 4 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, c| n * 10 + i64::from(c - b'0')))
}

/// How long until `expires`, for people: `in 59m`, `in 2d3h`, `expired 3h ago`.
pub fn human_until(expires: Timestamp, now: Timestamp) -> String {
    let delta = expires.as_second().saturating_sub(now.as_second());
    if delta <= 0 {
        format!("expired {} ago", human_span(delta.saturating_neg()))
    } else {
        format!("in {}", human_span(delta))
    }
}

/// A span in its two largest units (kubectl's AGE style): `45s`, `59m`, `3h12m`, `2d3h`.
pub fn human_span(secs: i64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h{m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d{h}h"),
    }
}

/// A duration in whole seconds as Go writes one, without zero units: `1h`,
/// `720h`, `59m58s`, `30s`.
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (value, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if value > 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    if out.is_empty() { "0s".to_string() } else { out }
}

/// How long from now until `t`; zero when it has passed.
pub fn until(t: Timestamp) -> Duration {
    Duration::try_from(t.duration_since(now())).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Option<Timestamp> {
        Some(from_second(secs))
    }

    #[test]
    fn rfc3339_as_go_reads_and_kubernetes_writes_it() {
        for (text, secs) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2026-11-29T13:00:00Z", 1_795_957_200),
            ("2000-02-29T23:59:59Z", 951_868_799),
        ] {
            assert_eq!(parse_rfc3339(text), at(secs), "{text}");
            assert_eq!(rfc3339(from_second(secs)), text);
        }
        assert_eq!(parse_rfc3339("2026-11-29T14:00:00.123+01:00"), parse_rfc3339("2026-11-29T13:00:00Z"));
        assert_eq!(parse_rfc3339("2026-11-29T13:00:00.1234567890123Z"), parse_rfc3339("2026-11-29T13:00:00Z"));
        assert_eq!(parse_rfc3339("2026-11-29T13:00:00-00:30"), parse_rfc3339("2026-11-29T13:30:00Z"));
        assert_eq!(parse_rfc3339("2026-11-29T13:00:00-00:00"), parse_rfc3339("2026-11-29T13:00:00Z"));
        assert_eq!(parse_rfc3339("2026-11-29T13:00:00+23:59"), parse_rfc3339("2026-11-28T13:01:00Z"));
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), at(1_709_164_800));
        assert_eq!(rfc3339(parse_rfc3339("2026-11-29T13:00:00.9Z").unwrap()), "2026-11-29T13:00:00Z");
        for bad in [
            "",
            "2026-11-29",
            "2026-13-01T00:00:00Z",
            "2026-11-29T13:00:00",
            "x026-11-29T13:00:00Z",
            // A multibyte character where the offset's `:` would be.
            "2026-11-29T13:00:00+0é00",
            "2026-11-29T13:00:00+01:0é",
            "2026-11-29T13:00:00é",
            "2026-11-29T13:00:00.é",
            "2026-11-29T13:00:00.Z",
            "é026-11-29T13:00:00Z",
            "2026-11-29T13:00:00+1:00Z",
            "2026-11-29T13:00:00+01:000",
            "2026-11-29T13:00:00+24:00",
            "2026-11-29T13:00:00+01:60",
            "2026-11-29T13:00:00+01:00:00",
            "2026-11-29T13:00:00+0100",
            "2026-11-29T13:00:00+-1:00",
            "+2026-11-29T13:00:00Z",
            "99999-11-29T13:00:00Z",
            "2026-11-29t13:00:00Z",
            "2026-11-29T13:00:00z",
            "2016-12-31T23:59:60Z",
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-11-00T00:00:00Z",
            "2026-11-29T24:00:00Z",
            "2026-11-29T13:60:00Z",
            "2026-11-29 13:00:00Z",
            "2026-11-29T13:00:00,5Z",
            " 2026-11-29T13:00:00Z",
            "2026-11-29T13:00:00Z ",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn asn1_times() {
        assert_eq!(from_asn1("é1231235959Z", false), None);
        assert_eq!(from_asn1("4912312359é", false), None);
        assert_eq!(from_asn1("491231235959ZZ", false), None);
        assert_eq!(from_asn1("491231235959Z", false), parse_rfc3339("2049-12-31T23:59:59Z"));
        assert_eq!(from_asn1("500101000000Z", false), parse_rfc3339("1950-01-01T00:00:00Z"));
        assert_eq!(from_asn1("99991231235959Z", true), parse_rfc3339("9999-12-31T23:59:59Z"));
        assert_eq!(from_asn1("20161231235960Z", true), parse_rfc3339("2017-01-01T00:00:00Z"));
        assert_eq!(from_asn1("9912312359Z", false), None);
        assert_eq!(from_asn1("260229000000Z", false), None);
        assert_eq!(from_asn1("261129240000Z", false), None);
        assert_eq!(from_asn1("261129236100Z", false), None);
    }

    #[test]
    fn human_spans() {
        let now = from_second(1_000_000);
        let at = |d: i64| human_until(from_second(1_000_000 + d), now);
        assert_eq!(at(59 * 60), "in 59m");
        assert_eq!(at(-3 * 3600), "expired 3h ago");
        assert_eq!(at(30), "in 30s");
        assert_eq!(at(3 * 3600 + 12 * 60), "in 3h12m");
        assert_eq!(at(2 * 86_400 + 3 * 3600 + 5), "in 2d3h");
        assert_eq!(at(0), "expired 0s ago");
        // Any number a JWT's `exp` may say: clamped, never a panic.
        assert!(human_until(from_second(i64::MIN), from_second(1)).starts_with("expired "));
        assert!(human_until(from_second(i64::MAX), from_second(-1)).starts_with("in "));
    }

    #[test]
    fn durations_as_go_writes_them() {
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(go_duration(Duration::from_secs(720 * 3600)), "720h");
        assert_eq!(go_duration(Duration::from_secs(3598)), "59m58s");
        assert_eq!(go_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(rfc3339(from_second(1_795_950_245)), "2026-11-29T11:04:05Z");
    }
}
