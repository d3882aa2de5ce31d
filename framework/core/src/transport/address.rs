use std::fmt;
use std::str::FromStr;

use super::TransportError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Tcp,
    WebSocket,
    Mem,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::WebSocket => "ws",
            Self::Mem => "mem",
        }
    }
}

/// A transport address: `tcp://host:port`, `ws://host:port/path` or `mem://name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransportAddress {
    scheme: Scheme,
    /// `host:port` for tcp and ws, the name for mem.
    authority: String,
    /// `/path` for ws (at least `/`), empty otherwise.
    path: String,
}

const MAX_ADDRESS_LEN: usize = 512;

impl TransportAddress {
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// `host:port` (tcp, ws) or the name (mem).
    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The same address with another authority (e.g. the port a listener got).
    pub fn with_authority(&self, authority: impl Into<String>) -> Self {
        Self {
            authority: authority.into(),
            ..self.clone()
        }
    }
}

impl FromStr for TransportAddress {
    type Err = TransportError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| TransportError::InvalidAddress {
            address: text.to_owned(),
            reason,
        };
        if text.len() > MAX_ADDRESS_LEN {
            return Err(invalid("longer than 512 bytes"));
        }
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| invalid("expected scheme://..."))?;
        let scheme = match scheme {
            "tcp" => Scheme::Tcp,
            "ws" => Scheme::WebSocket,
            "mem" => Scheme::Mem,
            _ => return Err(invalid("scheme must be tcp, ws or mem")),
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        if authority.is_empty()
            || authority
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid("missing or malformed host"));
        }
        match scheme {
            Scheme::Tcp | Scheme::WebSocket => {
                let (host, port) = authority
                    .rsplit_once(':')
                    .ok_or_else(|| invalid("expected host:port"))?;
                if host.is_empty() || port.parse::<u16>().is_err() {
                    return Err(invalid("expected host:port with a port in 0..=65535"));
                }
            }
            Scheme::Mem => {}
        }
        let path = match scheme {
            Scheme::WebSocket if path.is_empty() => "/".to_owned(),
            Scheme::WebSocket => path.to_owned(),
            _ if !path.is_empty() => return Err(invalid("only ws addresses have a path")),
            _ => String::new(),
        };
        Ok(Self {
            scheme,
            authority: authority.to_owned(),
            path,
        })
    }
}

impl fmt::Display for TransportAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority,
            self.path
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_scheme() {
        let tcp: TransportAddress = "tcp://127.0.0.1:7000".parse().expect("tcp");
        assert_eq!(
            (tcp.scheme(), tcp.authority(), tcp.path()),
            (Scheme::Tcp, "127.0.0.1:7000", "")
        );
        let ws: TransportAddress = "ws://localhost:8080/jadeite".parse().expect("ws");
        assert_eq!(
            (ws.scheme(), ws.authority(), ws.path()),
            (Scheme::WebSocket, "localhost:8080", "/jadeite")
        );
        assert_eq!(
            "ws://h:1".parse::<TransportAddress>().expect("ws").path(),
            "/"
        );
        let mem: TransportAddress = "mem://shop".parse().expect("mem");
        assert_eq!(mem.to_string(), "mem://shop");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "tcp:/x:1",
            "udp://h:1",
            "tcp://h",
            "tcp://:1",
            "tcp://h:99999",
            "tcp://h:1/p",
            "mem://",
            "tcp://h x:1",
        ] {
            assert!(bad.parse::<TransportAddress>().is_err(), "{bad}");
        }
        assert!(
            "mem://"
                .to_owned()
                .repeat(200)
                .parse::<TransportAddress>()
                .is_err()
        );
    }
}
