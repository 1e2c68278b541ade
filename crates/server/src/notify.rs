//! Delivering queued notifications: webhooks (HTTP POST, signed with
//! HMAC-SHA256 over the timestamp and the body) and syslog collectors
//! (RFC 5424 or CEF over UDP, TCP with octet counting, or TLS). One at a
//! time per target, in order; a failure is retried with exponential
//! backoff (a webhook is given up on into the dead letters after a few
//! tries; a syslog collector is waited for, so that what it missed
//! arrives in order once it is back).

use std::io::Write as _;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use serde_json::Value;
use turncoat_core::Time;
use turncoat_respond::notify::{NotifyFormat, render};
use turncoat_store::{Delivery, Notification};

/// Tries before a webhook notification goes to the dead letters.
pub const WEBHOOK_ATTEMPTS: u32 = 8;
/// The longest wait between tries: a webhook's, a syslog collector's.
const WEBHOOK_MAX_WAIT: Duration = Duration::from_secs(3600);
const SYSLOG_MAX_WAIT: Duration = Duration::from_secs(60);
/// How long a connection or a request may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// How a failed delivery is retried.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// The first wait; each further try waits twice as long.
    pub backoff: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            backoff: Duration::from_secs(5),
        }
    }
}

impl Retry {
    /// What a delivery's result means for the notification.
    pub fn outcome(&self, n: &Notification, sent: Result<(), String>, now: Time) -> Delivery {
        let Err(error) = sent else {
            return Delivery::Delivered;
        };
        let webhook = n.target.kind == "webhook";
        if webhook && n.attempts + 1 >= WEBHOOK_ATTEMPTS {
            return Delivery::Failed {
                error,
                retry_at: None,
            };
        }
        let cap = if webhook {
            WEBHOOK_MAX_WAIT
        } else {
            SYSLOG_MAX_WAIT
        };
        let wait = self
            .backoff
            .saturating_mul(1u32 << n.attempts.min(20))
            .min(cap);
        Delivery::Failed {
            error,
            retry_at: Some(Time(now.0 + wait.as_micros() as i64)),
        }
    }
}

/// The signature header of a webhook body sent at `timestamp` (Unix
/// seconds): `t=TIMESTAMP,v1=HEX(HMAC-SHA256(secret, "TIMESTAMP.BODY"))`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    format!(
        "t={timestamp},v1={}",
        hmac_sha256_hex(secret.as_bytes(), format!("{timestamp}.{body}").as_bytes())
    )
}

fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Sends one notification to its target; `secret` signs a webhook's.
pub fn send(n: &Notification, secret: Option<&str>) -> Result<(), String> {
    let doc: Value = serde_json::from_str(&n.payload).map_err(|e| e.to_string())?;
    let format: NotifyFormat = n.target.format.parse()?;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "turncoat".into());
    let body = render(format, &doc, &host, env!("CARGO_PKG_VERSION"));
    if format.is_webhook() {
        webhook(n, secret, &body)
    } else {
        syslog(&n.target.address, n.target.ca.as_deref(), &body)
    }
}

fn webhook(n: &Notification, secret: Option<&str>, body: &str) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .build()
        .into();
    let now = Time::now().0 / 1_000_000;
    let mut request = agent
        .post(&n.target.address)
        .header("Content-Type", "application/json")
        .header(
            "User-Agent",
            concat!("turncoat/", env!("CARGO_PKG_VERSION")),
        )
        .header("X-Turncoat-Event", &n.event)
        .header("X-Turncoat-Delivery", &n.key)
        .header("Idempotency-Key", &n.key)
        .header("X-Turncoat-Timestamp", &now.to_string());
    if let Some(s) = secret {
        request = request.header("X-Turncoat-Signature", &signature(s, now, body));
    }
    request
        .send(body)
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", n.target.address))
}

/// The first address `host:port` resolves to.
fn resolve(hostport: &str) -> Result<std::net::SocketAddr, String> {
    hostport
        .to_socket_addrs()
        .map_err(|e| format!("{hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("{hostport}: no address"))
}

/// One message to a syslog collector: a UDP datagram (RFC 5426), or a
/// frame with its length (octet counting, RFC 6587) over TCP or TLS.
fn syslog(address: &str, ca: Option<&str>, line: &str) -> Result<(), String> {
    let (scheme, hostport) = address
        .split_once("://")
        .ok_or_else(|| format!("{address}: udp://, tcp:// or tls:// and host:port"))?;
    let frame = format!("{} {line}", line.len());
    match scheme {
        "udp" => {
            let to = resolve(hostport)?;
            let bind = if to.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
            let socket = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
            socket
                .send_to(line.as_bytes(), to)
                .map(|_| ())
                .map_err(|e| format!("{address}: {e}"))
        }
        "tcp" => {
            let mut stream = TcpStream::connect_timeout(&resolve(hostport)?, TIMEOUT)
                .map_err(|e| format!("{address}: {e}"))?;
            stream
                .set_write_timeout(Some(TIMEOUT))
                .map_err(|e| e.to_string())?;
            stream
                .write_all(frame.as_bytes())
                .and_then(|()| stream.flush())
                .map_err(|e| format!("{address}: {e}"))
        }
        "tls" => {
            let host = hostport
                .rsplit_once(':')
                .map_or(hostport, |(h, _)| h)
                .trim_matches(['[', ']'])
                .to_owned();
            let name = rustls::pki_types::ServerName::try_from(host)
                .map_err(|e| format!("{address}: {e}"))?;
            let mut roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            if let Some(pem) = ca {
                use rustls::pki_types::pem::PemObject;
                for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    let cert = cert.map_err(|e| format!("{address}: the CA: {e}"))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("{address}: the CA: {e}"))?;
                }
            }
            // ring, as the server's own TLS (see ARCHITECTURE.md).
            #[allow(deprecated)]
            let provider = rustls::crypto::ring::default_provider();
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            let connection = rustls::ClientConnection::new(Arc::new(config), name)
                .map_err(|e| format!("{address}: {e}"))?;
            let socket = TcpStream::connect_timeout(&resolve(hostport)?, TIMEOUT)
                .map_err(|e| format!("{address}: {e}"))?;
            socket
                .set_write_timeout(Some(TIMEOUT))
                .map_err(|e| e.to_string())?;
            let mut tls = rustls::StreamOwned::new(connection, socket);
            tls.write_all(frame.as_bytes())
                .and_then(|()| tls.flush())
                .map_err(|e| format!("{address}: {e}"))?;
            tls.conn.send_close_notify();
            let _ = tls.flush();
            Ok(())
        }
        other => Err(format!("{address}: {other}:// is none of udp, tcp, tls")),
    }
}

/// Sends each due notification (with its target's secret) and says how
/// each went: the store is not held meanwhile.
pub fn deliver(due: Vec<(Notification, Option<String>)>, retry: &Retry) -> Vec<(i64, Delivery)> {
    due.into_iter()
        .map(|(n, secret)| {
            let sent = send(&n, secret.as_deref());
            if let Err(e) = &sent {
                tracing::warn!(target = %n.target.name, key = %n.key, error = %e, "notification not delivered");
            }
            (n.id, retry.outcome(&n, sent, Time::now()))
        })
        .collect()
}

/// The due notifications, each with its target's secret.
pub fn due_with_secrets(
    store: &dyn turncoat_store::Store,
    now: Time,
) -> Result<Vec<(Notification, Option<String>)>, turncoat_store::StoreError> {
    store
        .due_notifications(now)?
        .into_iter()
        .map(|n| {
            let secret = store.notify_secret(n.target.id)?;
            Ok((n, secret))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            signature("Jefe", 7, "x"),
            format!("t=7,v1={}", hmac_sha256_hex(b"Jefe", b"7.x"))
        );
    }
}
