//! A loopback OpenID Connect issuer for the lab's parent kube-apiserver
//! (`--authentication-config` trusts it), and a stand-in for the GitHub
//! Actions ID-token endpoint, both over TLS on 127.0.0.1.
//!
//! ```text
//! GET /.well-known/openid-configuration   discovery: issuer, jwks_uri
//! GET /jwks                               the ES256 public key
//! GET /mint?audience=A[&repository=R&ref=F&sub=S&ttl=SECS]
//!                                         a signed ID token (text), for tests
//! GET /actions/token?...&audience=A       with `Authorization: Bearer <request token>`:
//!                                         {"value": "<ID token>"}, as GitHub's endpoint
//! ```
//!
//! The Actions URL a test hands the tool carries the claims it wants in its
//! query (`repository`, `ref`, `sub`, `ttl`, negative for a token already
//! expired), as GitHub's URL carries its own parameters; the tool appends
//! `&audience=`. A wrong request token is refused (401). `hostile=echo`
//! answers 500 quoting the request token, `hostile=value` answers 200 with the
//! request token as the value: what a tool must never repeat.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use rustls::{ServerConnection, StreamOwned};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::{Value, json};

use crate::TlsMaterial;

/// The repository the lab's validation rule pins.
pub const REPOSITORY: &str = "octo-org/octo-repo";
/// The audience the lab's parent expects.
pub const AUDIENCE: &str = "clusternet-lab";
/// The ref of a default token.
pub const REF: &str = "refs/heads/main";
/// The prefix the lab maps `sub` to a username with.
pub const USERNAME_PREFIX: &str = "oidc:";
/// The Kubernetes user of a default token.
pub fn default_username() -> String {
    format!("{USERNAME_PREFIX}{}", default_sub(REPOSITORY, REF))
}

fn default_sub(repository: &str, reference: &str) -> String {
    format!("repo:{repository}:ref:{reference}")
}

/// What a minted token says.
#[derive(Debug, Clone)]
pub struct Claims {
    pub audience: String,
    pub repository: String,
    pub reference: String,
    pub sub: Option<String>,
    /// Seconds from now to `exp`; negative: already expired.
    pub ttl: i64,
}

impl Claims {
    pub fn new(audience: &str) -> Claims {
        Claims {
            audience: audience.to_string(),
            repository: REPOSITORY.to_string(),
            reference: REF.to_string(),
            sub: None,
            ttl: 600,
        }
    }

    /// From a query's parameters (`audience`, `repository`, `ref`, `sub`, `ttl`).
    fn from_query(q: &BTreeMap<String, String>) -> Result<Claims, String> {
        let audience = q.get("audience").ok_or("no audience in the query")?;
        let mut c = Claims::new(audience);
        if let Some(r) = q.get("repository") {
            c.repository = r.clone();
        }
        if let Some(r) = q.get("ref") {
            c.reference = r.clone();
        }
        c.sub = q.get("sub").cloned();
        if let Some(t) = q.get("ttl") {
            c.ttl = t.parse().map_err(|_| format!("ttl {t:?} is not a number of seconds"))?;
        }
        Ok(c)
    }
}

/// A signing key (PKCS#8 P-256 PEM) and the issuer URL its tokens name.
#[derive(Clone)]
pub struct Signer {
    pub issuer: String,
    key: Arc<EcdsaKeyPair>,
}

impl Signer {
    pub fn new(issuer: &str, key_pem: &str) -> io::Result<Signer> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes()).map_err(io::Error::other)?;
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.secret_pkcs8_der(), &rng)
            .map_err(|e| io::Error::other(format!("the OIDC signing key: {e}")))?;
        Ok(Signer { issuer: issuer.to_string(), key: Arc::new(key) })
    }

    fn kid(&self) -> String {
        B64.encode(&ring::digest::digest(&ring::digest::SHA256, self.key.public_key().as_ref()).as_ref()[..12])
    }

    /// The JWKS document.
    pub fn jwks(&self) -> Value {
        let point = self.key.public_key().as_ref();
        json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid(),
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
        }]})
    }

    /// A signed ID token with GitHub's claims.
    pub fn mint(&self, c: &Claims) -> String {
        let now = now();
        let sub = c.sub.clone().unwrap_or_else(|| default_sub(&c.repository, &c.reference));
        let claims = json!({
            "iss": self.issuer, "aud": c.audience, "sub": sub,
            "repository": c.repository, "ref": c.reference,
            "iat": now - 5, "nbf": now - 5, "exp": now + c.ttl,
            "jti": format!("{:x}", ring::digest::digest(&ring::digest::SHA256, format!("{now}{sub}{}", c.ttl).as_bytes()).as_ref()[0]),
        });
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid()});
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let rng = ring::rand::SystemRandom::new();
        let signature = self.key.sign(&rng, input.as_bytes()).expect("ES256 signing");
        format!("{input}.{}", B64.encode(signature.as_ref()))
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The running issuer.
pub struct Issuer {
    pub addr: SocketAddr,
    pub signer: Signer,
    pub request_token: String,
    /// The CA of the serving certificate (PEM).
    pub ca_pem: String,
}

impl Issuer {
    /// An issuer on a free loopback port, with a CA, a serving certificate and
    /// a signing key generated now; for tests that run it in-process.
    pub fn generated(request_token: &str) -> io::Result<Issuer> {
        let ca = crate::Ca::new("oidc-test-ca");
        let (cert, key) = ca.issue("oidc-issuer", vec!["127.0.0.1".into()], rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        let signing = rcgen::KeyPair::generate().map_err(io::Error::other)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let tls = TlsMaterial { cert_chain_pem: cert, key_pem: key, client_ca_pem: None };
        Issuer::serve(listener, &tls, &signing.serialize_pem(), request_token, None, ca.cert.pem())
    }

    /// Serves on `listener` until the process ends; `record`: each Actions
    /// mint appended as one JSON line (its query, the `exp`).
    pub fn serve(
        listener: TcpListener,
        tls: &TlsMaterial,
        signing_key_pem: &str,
        request_token: &str,
        record: Option<PathBuf>,
        ca_pem: String,
    ) -> io::Result<Issuer> {
        let addr = listener.local_addr()?;
        let signer = Signer::new(&format!("https://{addr}"), signing_key_pem)?;
        let config = crate::server_config(tls).map_err(io::Error::other)?;
        let shared = Arc::new((signer.clone(), request_token.to_string(), record));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, shared) = (config.clone(), shared.clone());
                std::thread::spawn(move || {
                    let _ = handle(stream, config, &shared.0, &shared.1, shared.2.as_ref());
                });
            }
        });
        Ok(Issuer { addr, signer, request_token: request_token.to_string(), ca_pem })
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The Actions endpoint URL with these query parameters (GitHub's carries some too).
    pub fn actions_url(&self, query: &str) -> String {
        format!("{}/actions/token?api-version=2.0{}{query}", self.url(), if query.is_empty() { "" } else { "&" })
    }
}

fn handle(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    signer: &Signer,
    request_token: &str,
    record: Option<&PathBuf>,
) -> io::Result<()> {
    let conn = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut reader = BufReader::new(StreamOwned::new(conn, stream));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut auth = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            auth = Some(value.trim().to_string());
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let q: BTreeMap<String, String> = url_pairs(query);
    let (status, content_type, body) = match path {
        "/.well-known/openid-configuration" => (
            200,
            "application/json",
            json!({
                "issuer": signer.issuer, "jwks_uri": format!("{}/jwks", signer.issuer),
                "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
            })
            .to_string(),
        ),
        "/jwks" => (200, "application/json", signer.jwks().to_string()),
        "/mint" => match Claims::from_query(&q) {
            Ok(c) => (200, "text/plain", signer.mint(&c)),
            Err(e) => (400, "text/plain", e),
        },
        "/actions/token" => {
            let expected = format!("Bearer {request_token}");
            match (q.get("hostile").map(String::as_str), Claims::from_query(&q)) {
                (Some("echo"), _) => {
                    (500, "application/json", json!({"message": format!("cannot serve {expected}")}).to_string())
                }
                (Some("value"), _) => (200, "application/json", json!({"value": request_token}).to_string()),
                _ if auth.as_deref() != Some(expected.as_str()) => {
                    (401, "application/json", json!({"message": "bad request token"}).to_string())
                }
                (_, Err(e)) => (400, "application/json", json!({"message": e}).to_string()),
                (_, Ok(c)) => {
                    if let Some(file) = record {
                        let line = json!({"query": query, "exp": now() + c.ttl}).to_string();
                        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(file)?;
                        writeln!(f, "{line}")?;
                    }
                    (200, "application/json", json!({"value": signer.mint(&c)}).to_string())
                }
            }
        }
        _ => (404, "text/plain", "not found".to_string()),
    };
    let stream = reader.get_mut();
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()?;
    stream.conn.send_close_notify();
    let _ = stream.flush();
    Ok(())
}

/// `a=b&c=d`, percent-decoded (`+` is a space).
fn url_pairs(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
