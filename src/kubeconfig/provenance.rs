//! What a generated entry records about itself: the provenance extension.
//!
//! Every cluster, user and context entry `gen` writes carries, in its
//! `extensions` list, a named extension [`EXTENSION_NAME`] whose value says
//! which tool wrote it, from which parent, for which child, through which
//! route, and with which kind of credential from which source, and when that
//! credential expires. Never a secret value: paths and names only. kubectl
//! keeps extensions (it reads them as raw JSON and writes them back), so the
//! record survives `kubectl config` edits; `status`, `refresh` and `prune`
//! find generated entries by it and leave every other entry alone.
//!
//! The value is written with its keys sorted at every level, as kubectl
//! writes an extension back (it goes through JSON, whose maps it sorts), so
//! that what we write and what kubectl shows are the same text; and no
//! generation timestamp, so that the same inputs give the same bytes.
//!
//! This module is pure: values in, values out.

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use crate::names::ObjectRef;

/// The name of the extension, in every generated entry's `extensions` list.
pub const EXTENSION_NAME: &str = "kubeconfig.clusternet.io/provenance";

/// The `generator` this tool writes.
pub const GENERATOR: &str = "clusternet-kubeconfig";

/// The record, as this tool reads and writes it. Every field is optional on
/// reading: a record from another version (or edited by hand) is used for
/// what it says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentRef>,
    #[serde(default, rename = "clusterID", skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// The ManagedCluster, when it was looked up on the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_cluster: Option<ObjectRef>,
    /// `direct`, `https/<host[:port]>[/path]` or `http/...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
}

/// The parent the entry was generated from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRef {
    /// The parent cluster's server URL, without user info.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The parent kubeconfig's context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

/// The child credential the entry carries: its kind, where it came from,
/// when it expires.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The file read: `file` and `credentials-file` sources. For a client
    /// certificate from PEM files, the certificate's file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The private key's file, for a client certificate from PEM files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_path: Option<String>,
    /// `kubeconfig` when `path` is a child kubeconfig (its user's credential
    /// was taken); absent for a token file or PEM files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The context of that child kubeconfig, when one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The Secret on the parent that held the credential (`hub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
    /// The TokenRequest that made the token (`token-request`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_request: Option<TokenRequest>,
    /// RFC 3339, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// The value of `credential.format` for a child kubeconfig.
pub const FORMAT_KUBECONFIG: &str = "kubeconfig";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Token,
    Certificate,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Token => "token",
            Kind::Certificate => "certificate",
        }
    }
}

/// Where the child credential came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A command-line flag (`--token`, `--client-*-data`).
    Flag,
    /// The environment (`CLUSTERNET_CHILD_TOKEN`).
    Env,
    /// Standard input (`--token-file -`).
    Stdin,
    /// A file named by a flag (`--token-file`, `--client-certificate`/`--client-key`,
    /// `--child-kubeconfig`).
    File,
    /// An entry of `--credentials`.
    CredentialsFile,
    /// A Secret on the parent, held by the hub.
    Hub,
    /// A TokenRequest to the child, made with another credential.
    TokenRequest,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::Stdin => "stdin",
            Source::File => "file",
            Source::CredentialsFile => "credentials-file",
            Source::Hub => "hub",
            Source::TokenRequest => "token-request",
        }
    }
}

/// The service-account token request a `token-request` credential came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub service_account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// The source of the credential the request was made with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Source>,
}

impl Provenance {
    /// A record of this tool, this version.
    pub fn new() -> Provenance {
        Provenance {
            generator: Some(GENERATOR.to_string()),
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
            ..Default::default()
        }
    }

    /// The extension's value, keys sorted at every level (see the module
    /// documentation).
    pub fn to_value(&self) -> Value {
        // serde_json's map is ordered by key: the sort comes with it.
        let json = serde_json::to_value(self).unwrap_or_default();
        serde_yaml::to_value(json).unwrap_or_default()
    }

    /// Reads a record; `None` when the value is not one (wrong types).
    pub fn from_value(value: &Value) -> Option<Provenance> {
        serde_yaml::from_value(value.clone()).ok()
    }

    /// When the credential expires, if known and readable.
    pub fn expires(&self) -> Option<Timestamp> {
        self.credential.as_ref()?.expires.as_deref().and_then(Timestamp::parse)
    }
}

/// What an entry's `extensions` says about provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Not generated by this tool: no provenance extension.
    None,
    /// The extension is there but cannot be read as a record.
    Unreadable,
    Record(Box<Provenance>),
}

/// The provenance of an entry (the `cluster:`, `user:` or `context:` mapping).
pub fn find(entry: &Mapping) -> Found {
    find_in(entry.get("extensions"))
}

/// The provenance in an `extensions` list.
pub fn find_in(extensions: Option<&Value>) -> Found {
    let Some(Value::Sequence(items)) = extensions else {
        return Found::None;
    };
    let Some(item) = items.iter().find(|i| i.get("name").and_then(Value::as_str) == Some(EXTENSION_NAME)) else {
        return Found::None;
    };
    match item.get("extension").and_then(Provenance::from_value) {
        Some(record) => Found::Record(Box::new(record)),
        None => Found::Unreadable,
    }
}

/// `entry` with the record in its `extensions` list: one already there is
/// replaced where it stands, else the record is appended (other extensions,
/// copied from the parent, are kept). A new `extensions` key is put in
/// alphabetical place, as kubectl orders an entry's keys.
pub fn attach(entry: &Mapping, record: &Provenance) -> Mapping {
    let item = |record: &Provenance| {
        let mut m = Mapping::new();
        m.insert("extension".into(), record.to_value());
        m.insert("name".into(), EXTENSION_NAME.into());
        Value::Mapping(m)
    };
    let mut out = entry.clone();
    match out.get_mut("extensions") {
        Some(Value::Sequence(items)) => {
            match items.iter_mut().find(|i| i.get("name").and_then(Value::as_str) == Some(EXTENSION_NAME)) {
                Some(existing) => *existing = item(record),
                None => items.push(item(record)),
            }
            out
        }
        _ => {
            let mut sorted: Vec<(Value, Value)> = out.into_iter().filter(|(k, _)| k != "extensions").collect();
            sorted.push(("extensions".into(), Value::Sequence(vec![item(record)])));
            sorted.sort_by(|a, b| a.0.as_str().unwrap_or_default().cmp(b.0.as_str().unwrap_or_default()));
            sorted.into_iter().collect()
        }
    }
}

/// `entry` without the record (every other extension kept; an emptied list
/// removed).
pub fn detach(entry: &Mapping) -> Mapping {
    let mut out = entry.clone();
    if let Some(Value::Sequence(items)) = out.get_mut("extensions") {
        items.retain(|i| i.get("name").and_then(Value::as_str) != Some(EXTENSION_NAME));
        if items.is_empty() {
            out.remove("extensions");
        }
    }
    out
}

/// A point in time, in whole seconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl From<std::time::SystemTime> for Timestamp {
    /// Whole seconds since the epoch (before it: negative).
    fn from(t: std::time::SystemTime) -> Timestamp {
        match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Timestamp(d.as_secs() as i64),
            Err(e) => Timestamp(-(e.duration().as_secs() as i64)),
        }
    }
}

impl Timestamp {
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn to_rfc3339(self) -> String {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
    }

    /// RFC 3339 as Kubernetes (Go's `time.RFC3339`) reads it:
    /// `2026-11-29T13:00:00Z`, fractional seconds and `+01:00` offsets too,
    /// as Kubernetes writes `expirationTimestamp`. Anything else is `None`
    /// (an unknown expiry), never a panic: the text comes from a file anyone
    /// may have edited, so it is read byte by byte with checked indexing and
    /// checked arithmetic. Like Go, a lower-case `t` or `z`, a leap second
    /// (`:60`), a day past the month's end and an offset past `23:59` are
    /// refused.
    pub fn parse(text: &str) -> Option<Timestamp> {
        let b = text.as_bytes();
        let sep = |at: usize, c: u8| b.get(at) == Some(&c);
        if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
            return None;
        }
        let (y, mo, d) = (number(b.get(0..4)?)?, number(b.get(5..7)?)?, number(b.get(8..10)?)?);
        let (h, mi, s) = (number(b.get(11..13)?)?, number(b.get(14..16)?)?, number(b.get(17..19)?)?);
        if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
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
        let offset = match rest {
            b"Z" => 0,
            [sign @ (b'+' | b'-'), oh @ .., b':', om1, om2] if oh.len() == 2 => {
                let (oh, om) = (number(oh)?, number(&[*om1, *om2])?);
                if oh > 23 || om > 59 {
                    return None;
                }
                let secs = oh * 3600 + om * 60;
                if *sign == b'-' { -secs } else { secs }
            }
            _ => return None,
        };
        Some(Timestamp(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset))
    }

    /// ASN.1 UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime
    /// (`YYYYMMDDHHMMSSZ`), as an X.509 validity writes them.
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
        if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        Some(Timestamp(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s))
    }
}

/// A run of ASCII digits (at most 4, as every field here has) as a number;
/// `None` for anything else, an empty run included.
fn number(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || digits.len() > 4 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, c| n * 10 + i64::from(c - b'0')))
}

/// Days in month `m` (1-12) of year `y`, proleptic Gregorian.
fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// The `exp` claim of a JWT (a service-account token is one); `None` for a
/// token that is not a JWT or has no numeric `exp`. The signature is not
/// checked: this only reads what the token says of itself, for display.
pub fn jwt_expiry(token: &str) -> Option<Timestamp> {
    use base64::Engine as _;
    let mut parts = token.trim().split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?;
    exp.as_i64().or_else(|| exp.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)).map(Timestamp)
}

/// How long until `expires`, for people: `in 59m`, `in 2d3h`, `expired 3h ago`.
pub fn human_until(expires: Timestamp, now: Timestamp) -> String {
    // Saturating: a JWT's `exp` can be any number.
    let delta = expires.0.saturating_sub(now.0);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Provenance {
        Provenance {
            parent: Some(ParentRef { server: Some("https://p:6443".into()), context: Some("admin".into()) }),
            cluster_id: Some("dc91021d-2361-4f6d-a404-7c33b9e01118".into()),
            managed_cluster: Some(ObjectRef { namespace: "ns".into(), name: "child".into() }),
            route: Some("direct".into()),
            credential: Some(Credential {
                kind: Some(Kind::Token),
                source: Some(Source::CredentialsFile),
                path: Some("/c.yaml".into()),
                expires: Some("2026-11-29T13:00:00Z".into()),
                ..Default::default()
            }),
            ..Provenance::new()
        }
    }

    #[test]
    fn keys_are_sorted_and_camel_case() {
        let text = crate::kubeconfig::yaml::to_yaml(&record().to_value());
        assert_eq!(
            text,
            format!(
                "clusterID: dc91021d-2361-4f6d-a404-7c33b9e01118
credential:
  expires: \"2026-11-29T13:00:00Z\"
  kind: token
  path: /c.yaml
  source: credentials-file
generator: clusternet-kubeconfig
managedCluster:
  name: child
  namespace: ns
parent:
  context: admin
  server: https://p:6443
route: direct
version: \"{}\"
",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn round_trips_through_an_entry() {
        let entry: Mapping =
            serde_yaml::from_str("server: https://x\nextensions: [{name: other, extension: 1}]").unwrap();
        let with = attach(&entry, &record());
        assert_eq!(find(&with), Found::Record(Box::new(record())));
        assert_eq!(with["extensions"].as_sequence().unwrap().len(), 2);
        let again = attach(&with, &Provenance::new());
        assert_eq!(again["extensions"].as_sequence().unwrap().len(), 2, "replaced, not added");
        assert_eq!(detach(&again), entry);
        let bare: Mapping = serde_yaml::from_str("a: 1\nz: 2").unwrap();
        let keys: Vec<_> = attach(&bare, &record()).keys().map(|k| k.as_str().unwrap().to_string()).collect();
        assert_eq!(keys, ["a", "extensions", "z"]);
        assert!(detach(&attach(&bare, &record())).get("extensions").is_none());
        assert_eq!(find(&bare), Found::None);
        let odd: Mapping =
            serde_yaml::from_str(&format!("extensions: [{{name: {EXTENSION_NAME}, extension: [1]}}]")).unwrap();
        assert_eq!(find(&odd), Found::Unreadable);
    }

    #[test]
    fn hub_and_token_request_variants() {
        let p = Provenance {
            credential: Some(Credential {
                kind: Some(Kind::Token),
                source: Some(Source::TokenRequest),
                token_request: Some(TokenRequest {
                    namespace: "ci".into(),
                    service_account: "deployer".into(),
                    ttl_seconds: Some(3600),
                    base: Some(Source::Hub),
                }),
                secret: Some(ObjectRef { namespace: "clusternet-abc".into(), name: "child-cluster-deployer".into() }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = crate::kubeconfig::yaml::to_yaml(&p.to_value());
        assert!(text.contains("source: token-request") && text.contains("ttlSeconds: 3600"), "{text}");
        assert!(text.contains("serviceAccount: deployer") && text.contains("base: hub"), "{text}");
        assert_eq!(Provenance::from_value(&p.to_value()), Some(p));
    }

    #[test]
    fn timestamps() {
        for (text, secs) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2026-11-29T13:00:00Z", 1_795_957_200),
            ("2000-02-29T23:59:59Z", 951_868_799),
        ] {
            assert_eq!(Timestamp::parse(text), Some(Timestamp(secs)), "{text}");
            assert_eq!(Timestamp(secs).to_rfc3339(), text);
        }
        assert_eq!(Timestamp::parse("2026-11-29T14:00:00.123+01:00"), Timestamp::parse("2026-11-29T13:00:00Z"));
        assert_eq!(Timestamp::parse("2026-11-29T13:00:00-00:30"), Timestamp::parse("2026-11-29T13:30:00Z"));
        assert_eq!(Timestamp::parse("2024-02-29T00:00:00Z"), Some(Timestamp(1_709_164_800)));
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
            "2026-11-29 13:00:00Z",
            " 2026-11-29T13:00:00Z",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
        assert_eq!(Timestamp::from_asn1("é1231235959Z", false), None);
        assert_eq!(Timestamp::from_asn1("4912312359é", false), None);
        assert_eq!(Timestamp::from_asn1("491231235959ZZ", false), None);
        assert_eq!(human_until(Timestamp(i64::MIN), Timestamp(1)), format!("expired {} ago", human_span(i64::MAX)));
        assert_eq!(human_until(Timestamp(i64::MAX), Timestamp(-1)), format!("in {}", human_span(i64::MAX)));
        assert_eq!(Timestamp::from_asn1("491231235959Z", false), Timestamp::parse("2049-12-31T23:59:59Z"));
        assert_eq!(Timestamp::from_asn1("500101000000Z", false), Timestamp::parse("1950-01-01T00:00:00Z"));
        assert_eq!(Timestamp::from_asn1("99991231235959Z", true), Timestamp::parse("9999-12-31T23:59:59Z"));
        assert_eq!(Timestamp::from_asn1("9912312359Z", false), None);
    }

    #[test]
    fn jwt_exp_is_read() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let jwt = |claims: &str| format!("{}.{}.sig", b64("{\"alg\":\"RS256\"}"), b64(claims));
        assert_eq!(jwt_expiry(&jwt("{\"exp\":1795957200,\"sub\":\"x\"}")), Some(Timestamp(1_795_957_200)));
        assert_eq!(jwt_expiry(&jwt("{\"sub\":\"x\"}")), None);
        assert_eq!(jwt_expiry(&jwt("{\"exp\":\"soon\"}")), None);
        assert_eq!(jwt_expiry("opaque-token"), None);
        assert_eq!(jwt_expiry("a.b.c.d"), None);
    }

    #[test]
    fn human_spans() {
        let now = Timestamp(1_000_000);
        let at = |d: i64| human_until(Timestamp(now.0 + d), now);
        assert_eq!(at(59 * 60), "in 59m");
        assert_eq!(at(-3 * 3600), "expired 3h ago");
        assert_eq!(at(30), "in 30s");
        assert_eq!(at(3 * 3600 + 12 * 60), "in 3h12m");
        assert_eq!(at(2 * 86_400 + 3 * 3600 + 5), "in 2d3h");
        assert_eq!(at(0), "expired 0s ago");
    }
}
