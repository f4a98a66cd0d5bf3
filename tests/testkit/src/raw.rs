//! [`RawServer`]: a loopback HTTPS server that answers every request with
//! bytes given by the test, for what no well-behaved server sends: endless
//! bodies, bodies that stop short of their Content-Length, bytes that trickle,
//! terminal escape sequences in messages.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rcgen::ExtendedKeyUsagePurpose;

use crate::{Ca, TlsMaterial, server_config};

/// What a [`RawServer`] sends after reading a request head.
#[derive(Debug, Clone)]
pub enum RawAnswer {
    /// These bytes (status line, headers, body), then close.
    Bytes(Vec<u8>),
    /// This head, then `chunk` again and again, as fast as the client reads,
    /// until the client goes away.
    Endless { head: Vec<u8>, chunk: Vec<u8> },
    /// This head, then one byte (`x`) every `every`, until the client
    /// goes away.
    Trickle { head: Vec<u8>, every: Duration },
}

/// The raw server. Stops accepting when dropped.
pub struct RawServer {
    addr: SocketAddr,
    ca_pem: String,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl RawServer {
    /// Serves `answer` (chosen by request path) on `127.0.0.1:0`.
    pub fn start(answer: impl Fn(&str) -> RawAnswer + Send + Sync + 'static) -> io::Result<RawServer> {
        let ca = Ca::new("testkit raw CA");
        let (cert, key) = ca.issue(
            "127.0.0.1",
            vec!["127.0.0.1".to_string(), "localhost".to_string()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let material = TlsMaterial { cert_chain_pem: cert, key_pem: key, client_ca_pem: None };
        let tls = server_config(&material).map_err(io::Error::other)?;
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let answer = Arc::new(answer);
        let accept_stop = stop.clone();
        let accept_thread = std::thread::Builder::new().name("raw-accept".into()).spawn(move || {
            for stream in listener.incoming() {
                if accept_stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (tls, answer) = (tls.clone(), answer.clone());
                let _ = std::thread::Builder::new().name("raw-conn".into()).spawn(move || {
                    let _ = serve(stream, tls, &*answer);
                });
            }
        })?;
        Ok(RawServer { addr, ca_pem: ca.cert.pem(), stop, accept_thread: Some(accept_thread) })
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// PEM of the CA that signed the serving certificate.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    answer: &(dyn Fn(&str) -> RawAnswer + Send + Sync),
) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let conn = rustls::ServerConnection::new(tls).map_err(io::Error::other)?;
    let mut reader = BufReader::new(rustls::StreamOwned::new(conn, stream));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split(' ').nth(1).unwrap_or("/").to_string();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let out = reader.get_mut();
    match answer(&path) {
        RawAnswer::Bytes(bytes) => {
            out.write_all(&bytes)?;
            out.flush()?;
        }
        RawAnswer::Endless { head, chunk } => {
            out.write_all(&head)?;
            loop {
                out.write_all(&chunk)?;
            }
        }
        RawAnswer::Trickle { head, every } => {
            out.write_all(&head)?;
            out.flush()?;
            loop {
                std::thread::sleep(every);
                out.write_all(b"x")?;
                out.flush()?;
            }
        }
    }
    // Close without close_notify: the transfer simply stops.
    out.sock.shutdown(std::net::Shutdown::Both)
}
