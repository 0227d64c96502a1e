//! TLS test fixtures: the certificates and PostgreSQL roles `scripts/prepare-tls.sh` makes, a
//! Redis server with TLS, a TLS front that terminates TLS with the test server certificate and
//! forwards plaintext (in front of the local S3 server, or of nothing), and a PostgreSQL-looking
//! listener that refuses TLS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Where `scripts/prepare-tls.sh` wrote the certificates; a loud failure when it has not run.
pub fn dir() -> PathBuf {
    let dir = PathBuf::from(
        std::env::var("ATHENA_TEST_TLS_DIR").unwrap_or_else(|_| "/var/lib/athena-test-tls".into()),
    );
    assert!(
        dir.join("ca.crt").exists() && dir.join("server.crt").exists(),
        "no test certificates in {}: run scripts/prepare-tls.sh (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// A file of the test certificate directory, as a string for configs and URIs.
pub fn file(name: &str) -> String {
    dir().join(name).display().to_string()
}

/// A URI of the local PostgreSQL for `role` and database `db`, with `params` (a query string).
pub fn pg_uri(role: &str, db: &str, params: &str) -> String {
    let sep = if params.is_empty() { "" } else { "?" };
    format!("postgres://{role}@127.0.0.1:5432/{db}{sep}{params}")
}

/// `verify-full` against the test CA, as URI parameters.
pub fn verified() -> String {
    format!("sslmode=verify-full&sslrootcert={}", file("ca.crt"))
}

/// A Redis server of the test's own, serving TLS only, with the test server certificate.
pub struct TlsRedis {
    pub port: u16,
    child: Child,
}

impl TlsRedis {
    pub async fn start() -> TlsRedis {
        let port = super::free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args(["--tls-cert-file", &file("server.crt")])
            .args(["--tls-key-file", &file("server.key")])
            .args(["--tls-ca-cert-file", &file("ca.crt")])
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (it runs the machine's Redis)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server with TLS did not start (is it built with TLS?)"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        TlsRedis { port, child }
    }

    /// Keys stored in this server, read with redis-cli over TLS.
    pub fn keys(&self, pattern: &str) -> usize {
        let out = Command::new("redis-cli")
            .args([
                "--tls",
                "--cacert",
                &file("ca.crt"),
                "-p",
                &self.port.to_string(),
            ])
            .args(["--scan", "--pattern", pattern])
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).lines().count()
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_config() -> Arc<rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file("server.crt"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(file("server.key")).unwrap();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    )
}

/// Terminates TLS with the test server certificate on a port of its own and forwards the
/// plaintext to `upstream` (or, without one, closes each connection after the handshake). Runs
/// on a thread and runtime of its own; stops when dropped.
pub struct TlsFront {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsFront {
    pub fn start(upstream: Option<SocketAddr>) -> TlsFront {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config());
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                let accept = async {
                    loop {
                        let Ok((socket, _)) = listener.accept().await else {
                            continue;
                        };
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            let Ok(mut tls) = acceptor.accept(socket).await else {
                                return;
                            };
                            let Some(up) = upstream else {
                                let _ = tls.shutdown().await;
                                return;
                            };
                            let Ok(mut plain) = TcpStream::connect(up).await else {
                                return;
                            };
                            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
        });
        TlsFront {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A listener that speaks just enough of PostgreSQL's protocol to refuse TLS: it answers an
/// SSLRequest with `N`, then closes. Its port.
pub async fn refusing_tls() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut request = [0u8; 8];
                if socket.read_exact(&mut request).await.is_ok() {
                    let _ = socket.write_all(b"N").await;
                    let mut rest = [0u8; 256];
                    let _ =
                        tokio::time::timeout(Duration::from_millis(200), socket.read(&mut rest))
                            .await;
                }
            });
        }
    });
    port
}
