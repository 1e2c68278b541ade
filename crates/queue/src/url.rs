//! `nats://host:port[,host:port…][/namespace]`: where the queue is.

use crate::QueueError;

/// A queue's servers and the namespace its streams are named under
/// (`turncoat` unless the URL's path gives one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueUrl {
    servers: String,
    namespace: String,
}

/// Namespaces become stream and bucket names: kept short and plain.
const MAX_NAMESPACE: usize = 32;

impl QueueUrl {
    pub fn parse(url: &str) -> Result<QueueUrl, QueueError> {
        let bad = |why: &str| QueueError::Url(format!("{url:?}: {why}"));
        let rest = url
            .strip_prefix("nats://")
            .or_else(|| url.strip_prefix("tls://"))
            .ok_or_else(|| bad("must start with nats:// or tls://"))?;
        let (hosts, namespace) = match rest.split_once('/') {
            Some((hosts, ns)) if !ns.is_empty() => (hosts, ns),
            Some((hosts, _)) => (hosts, "turncoat"),
            None => (rest, "turncoat"),
        };
        if hosts.is_empty() {
            return Err(bad("names no server"));
        }
        if namespace.len() > MAX_NAMESPACE
            || !namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(bad(
                "the namespace (the path) takes at most 32 letters, digits, '_' or '-'",
            ));
        }
        let scheme = &url[..url.find("://").unwrap_or(0) + 3];
        let servers = hosts
            .split(',')
            .map(|h| format!("{scheme}{h}"))
            .collect::<Vec<_>>()
            .join(",");
        Ok(QueueUrl {
            servers,
            namespace: namespace.to_owned(),
        })
    }

    /// The servers, as the NATS client takes them.
    pub fn servers(&self) -> &str {
        &self.servers
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

impl std::fmt::Display for QueueUrl {
    /// The URL without credentials a server list may carry.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts: Vec<String> = self
            .servers
            .split(',')
            .map(|s| match s.split_once("://") {
                Some((scheme, rest)) => match rest.rsplit_once('@') {
                    Some((_, host)) => format!("{scheme}://***@{host}"),
                    None => s.to_owned(),
                },
                None => s.to_owned(),
            })
            .collect();
        write!(f, "{}/{}", hosts.join(","), self.namespace)
    }
}

impl std::str::FromStr for QueueUrl {
    type Err = QueueError;
    fn from_str(s: &str) -> Result<QueueUrl, QueueError> {
        QueueUrl::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_and_namespace() {
        let u = QueueUrl::parse("nats://a:4222,b:4222/acme-prod").unwrap();
        assert_eq!(u.servers(), "nats://a:4222,nats://b:4222");
        assert_eq!(u.namespace(), "acme-prod");
        assert_eq!(
            QueueUrl::parse("nats://a:4222").unwrap().namespace(),
            "turncoat"
        );
        assert_eq!(
            QueueUrl::parse("nats://a:4222/").unwrap().namespace(),
            "turncoat"
        );
    }

    #[test]
    fn refuses_what_would_break_a_stream_name() {
        for bad in [
            "http://a",
            "nats://",
            "nats://a/x.y",
            "nats://a/x*",
            "nats://a/a b",
        ] {
            assert!(QueueUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_hides_credentials() {
        let u = QueueUrl::parse("nats://user:pw@a:4222/t").unwrap();
        assert_eq!(u.to_string(), "nats://***@a:4222/t");
        assert_eq!(u.servers(), "nats://user:pw@a:4222");
    }
}
