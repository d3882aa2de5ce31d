//! Frames on a link: a routing header, then a handshake message or a sealed
//! channel packet. The routing header is all a relay reads; for channel
//! packets it is authenticated as associated data, so it cannot be altered
//! unnoticed either.

use jadeite_security::PlatformId;
use thiserror::Error;

pub(crate) const VERSION: u8 = 1;
/// version, kind, source platform, destination platform.
pub(crate) const ROUTING_HEADER_LEN: usize = 1 + 1 + 16 + 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum FrameKind {
    /// First frame on every link: who is at this end (unauthenticated; the
    /// session proves it).
    Hello = 1,
    Handshake = 2,
    Data = 3,
    /// The handshake was refused; the body says why (unauthenticated, so it
    /// only ends a handshake sooner than its timeout would).
    Abort = 4,
}

/// Which layer a message inside a data message is for: the application's
/// own messages (`Platform::send` / `receive`) or the service layer's calls,
/// replies and directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Channel {
    Application = 0,
    Service = 1,
    /// Empty: sent on a new link to show the peer that it reaches this
    /// platform's session.
    Link = 2,
}

impl Channel {
    pub(crate) fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Application),
            1 => Some(Self::Service),
            2 => Some(Self::Link),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RoutingHeader {
    pub(crate) kind: FrameKind,
    pub(crate) source: PlatformId,
    pub(crate) destination: PlatformId,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame shorter than its routing header")]
    Truncated,
    #[error("unsupported frame version {0}")]
    Version(u8),
    #[error("unknown frame kind {0}")]
    Kind(u8),
}

impl RoutingHeader {
    pub(crate) fn encode(&self) -> [u8; ROUTING_HEADER_LEN] {
        let mut out = [0u8; ROUTING_HEADER_LEN];
        out[0] = VERSION;
        out[1] = self.kind as u8;
        out[2..18].copy_from_slice(&self.source.0);
        out[18..34].copy_from_slice(&self.destination.0);
        out
    }

    /// Splits a frame into its routing header and body.
    pub(crate) fn decode(frame: &[u8]) -> Result<(Self, &[u8]), FrameError> {
        if frame.len() < ROUTING_HEADER_LEN {
            return Err(FrameError::Truncated);
        }
        if frame[0] != VERSION {
            return Err(FrameError::Version(frame[0]));
        }
        let kind = match frame[1] {
            1 => FrameKind::Hello,
            2 => FrameKind::Handshake,
            3 => FrameKind::Data,
            4 => FrameKind::Abort,
            other => return Err(FrameError::Kind(other)),
        };
        let id = |range: std::ops::Range<usize>| {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&frame[range]);
            PlatformId(bytes)
        };
        let header = Self {
            kind,
            source: id(2..18),
            destination: id(18..34),
        };
        Ok((header, &frame[ROUTING_HEADER_LEN..]))
    }

    /// A frame with this header and `body`.
    pub(crate) fn frame(&self, body: &[u8]) -> Vec<u8> {
        let mut frame = Vec::with_capacity(ROUTING_HEADER_LEN + body.len());
        frame.extend_from_slice(&self.encode());
        frame.extend_from_slice(body);
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let header = RoutingHeader {
            kind: FrameKind::Data,
            source: PlatformId([1; 16]),
            destination: PlatformId([2; 16]),
        };
        let frame = header.frame(b"body");
        assert_eq!(RoutingHeader::decode(&frame), Ok((header, &b"body"[..])));
        for len in 0..ROUTING_HEADER_LEN {
            assert_eq!(
                RoutingHeader::decode(&frame[..len]),
                Err(FrameError::Truncated)
            );
        }
        let mut bad = frame.clone();
        bad[0] = 9;
        assert_eq!(RoutingHeader::decode(&bad), Err(FrameError::Version(9)));
        bad = frame;
        bad[1] = 0;
        assert_eq!(RoutingHeader::decode(&bad), Err(FrameError::Kind(0)));
    }
}
