//! Forward proxies on loopback, for tests of reaching a parent through a
//! proxy: [`ConnectProxy`] (HTTP CONNECT, as corporate proxies and
//! `proxy-url: http://...` are) and [`Socks5Proxy`] (SOCKS5 without
//! authentication, as `ssh -D` is). Both really tunnel the bytes, resolve
//! host names themselves from a fixed table (`parent.test` → 127.0.0.1: a
//! name nothing else resolves), tunnel only to loopback addresses, and
//! record each target they were asked for, so that a test can prove its
//! traffic went through them.

use std::collections::BTreeMap;
use std::io::{self, BufRead as _, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One connection a proxy was asked to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnelled {
    /// `host:port` as the client named it (a SOCKS5 IPv6 address in brackets).
    pub target: String,
    /// The client sent a host name for the proxy to resolve (SOCKS5 address
    /// type 3, or a name in CONNECT), not an address.
    pub by_name: bool,
    /// The `Proxy-Authorization` header of a CONNECT, if any.
    pub proxy_authorization: Option<String>,
    /// The proxy reached the target and tunnelled.
    pub tunnelled: bool,
}

struct State {
    names: BTreeMap<String, IpAddr>,
    /// The `Proxy-Authorization` a CONNECT must carry, if any.
    required_auth: Option<String>,
    log: Mutex<Vec<Tunnelled>>,
    stop: AtomicBool,
}

impl State {
    /// The loopback address for `host`: a name of the table, or a loopback
    /// IP literal; anything else is refused (tests reach nothing else).
    fn resolve(&self, host: &str, port: u16) -> Option<SocketAddr> {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let ip = match host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => *self.names.get(&host)?,
        };
        ip.is_loopback().then_some(SocketAddr::new(ip, port))
    }

    fn record(&self, entry: Tunnelled) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
    }
}

/// What both proxies share: the listener, the log, and stopping.
struct Running {
    addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl Running {
    fn start(
        names: &[(&str, IpAddr)],
        required_auth: Option<String>,
        serve: fn(TcpStream, &State) -> io::Result<()>,
    ) -> io::Result<Running> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            names: names.iter().map(|(n, ip)| (n.to_ascii_lowercase(), *ip)).collect(),
            required_auth,
            log: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let shared = state.clone();
        let accept = std::thread::Builder::new().name("proxy-accept".into()).spawn(move || {
            for stream in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let state = shared.clone();
                let _ = std::thread::Builder::new().name("proxy-conn".into()).spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
                    let _ = serve(stream, &state);
                });
            }
        })?;
        Ok(Running { addr, state, accept: Some(accept) })
    }

    fn log(&self) -> Vec<Tunnelled> {
        self.state.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Copies bytes both ways until either side closes.
fn splice(client: TcpStream, server: TcpStream) -> io::Result<()> {
    let (mut client_read, mut server_write) = (client.try_clone()?, server.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = io::copy(&mut client_read, &mut server_write);
        let _ = server_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut server_read, mut client_write) = (server, client);
    let _ = io::copy(&mut server_read, &mut client_write);
    let _ = client_write.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
    Ok(())
}

/// An HTTP CONNECT proxy on 127.0.0.1. With [`ConnectProxy::requiring`],
/// a CONNECT without that `Proxy-Authorization` value is answered 407.
pub struct ConnectProxy {
    running: Running,
}

impl ConnectProxy {
    /// A proxy that resolves `names` (and loopback literals) only.
    pub fn start(names: &[(&str, IpAddr)]) -> io::Result<ConnectProxy> {
        Ok(ConnectProxy { running: Running::start(names, None, serve_connect)? })
    }

    /// A proxy that also wants `Proxy-Authorization: <value>` on every CONNECT.
    pub fn requiring(names: &[(&str, IpAddr)], value: &str) -> io::Result<ConnectProxy> {
        Ok(ConnectProxy { running: Running::start(names, Some(value.to_string()), serve_connect)? })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    /// Every CONNECT so far, in order.
    pub fn tunnelled(&self) -> Vec<Tunnelled> {
        self.running.log()
    }
}

fn serve_connect(stream: TcpStream, state: &State) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("proxy-authorization")
        {
            authorization = Some(value.trim().to_string());
        }
    }
    let mut out = stream;
    let mut parts = line.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
        return out.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    };
    let mut entry = Tunnelled {
        target: target.to_string(),
        by_name: true,
        proxy_authorization: authorization.clone(),
        tunnelled: false,
    };
    if let Some(want) = &state.required_auth
        && authorization.as_deref() != Some(want.as_str())
    {
        state.record(entry);
        return out.write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let resolved = target.rsplit_once(':').and_then(|(host, port)| {
        entry.by_name = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_err();
        state.resolve(host, port.parse().ok()?)
    });
    let Some(server) = resolved.and_then(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(10)).ok()) else {
        state.record(entry);
        return out.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    };
    entry.tunnelled = true;
    state.record(entry);
    out.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    // Bytes the client sent right after the CONNECT head are in the reader's buffer.
    let early = reader.buffer().to_vec();
    if !early.is_empty() {
        (&server).write_all(&early)?;
    }
    splice(out, server)
}

/// A SOCKS5 proxy on 127.0.0.1, without authentication (as `ssh -D`).
pub struct Socks5Proxy {
    running: Running,
}

impl Socks5Proxy {
    /// A proxy that resolves `names` (and loopback literals) only.
    pub fn start(names: &[(&str, IpAddr)]) -> io::Result<Socks5Proxy> {
        Ok(Socks5Proxy { running: Running::start(names, None, serve_socks5)? })
    }

    /// `socks5://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("socks5://{}", self.running.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    /// Every CONNECT so far, in order.
    pub fn tunnelled(&self) -> Vec<Tunnelled> {
        self.running.log()
    }
}

fn serve_socks5(mut stream: TcpStream, state: &State) -> io::Result<()> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head)?;
    if head[0] != 5 {
        return Ok(());
    }
    let mut methods = vec![0u8; usize::from(head[1])];
    stream.read_exact(&mut methods)?;
    if !methods.contains(&0) {
        return stream.write_all(&[5, 0xff]);
    }
    stream.write_all(&[5, 0])?;
    let mut request = [0u8; 4];
    stream.read_exact(&mut request)?;
    let (host, by_name) = match request[3] {
        1 => {
            let mut a = [0u8; 4];
            stream.read_exact(&mut a)?;
            (Ipv4Addr::from(a).to_string(), false)
        }
        3 => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len)?;
            let mut name = vec![0u8; usize::from(len[0])];
            stream.read_exact(&mut name)?;
            (String::from_utf8_lossy(&name).into_owned(), true)
        }
        4 => {
            let mut a = [0u8; 16];
            stream.read_exact(&mut a)?;
            (format!("[{}]", Ipv6Addr::from(a)), false)
        }
        _ => return stream.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0]),
    };
    let mut port = [0u8; 2];
    stream.read_exact(&mut port)?;
    let port = u16::from_be_bytes(port);
    let mut entry =
        Tunnelled { target: format!("{host}:{port}"), by_name, proxy_authorization: None, tunnelled: false };
    if request[1] != 1 {
        state.record(entry);
        return stream.write_all(&[5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
    }
    let server = state.resolve(&host, port).and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(10)).ok());
    let Some(server) = server else {
        state.record(entry);
        // 4: host unreachable.
        return stream.write_all(&[5, 4, 0, 1, 0, 0, 0, 0, 0, 0]);
    };
    entry.tunnelled = true;
    state.record(entry);
    stream.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])?;
    splice(stream, server)
}
