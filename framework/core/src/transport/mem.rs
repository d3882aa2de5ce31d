//! `mem://name`: an in-process transport for tests. A [`MemNetwork`] is one
//! shared namespace; platforms given the same network can reach each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{
    Connection, DEFAULT_MAX_FRAME_LEN, FrameSink, FrameSource, Listener, Scheme, Transport,
    TransportAddress, TransportError,
};

/// Frames buffered per direction before a sender waits: backpressure as a
/// socket buffer would give it.
const CHANNEL_FRAMES: usize = 64;

/// A namespace of in-process listeners.
#[derive(Debug, Clone, Default)]
pub struct MemNetwork {
    listeners: Arc<Mutex<HashMap<String, mpsc::Sender<Connection>>>>,
}

impl MemNetwork {
    pub fn new() -> Self {
        Self::default()
    }

    fn listeners(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<Connection>>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.listeners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The `mem://` transport over one [`MemNetwork`].
#[derive(Debug, Clone)]
pub struct MemTransport {
    network: MemNetwork,
    max_frame_len: usize,
}

impl MemTransport {
    pub fn new(network: MemNetwork) -> Self {
        Self {
            network,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }

    pub fn with_max_frame_len(mut self, max_frame_len: usize) -> Self {
        self.max_frame_len = max_frame_len;
        self
    }
}

struct MemSink {
    tx: Option<mpsc::Sender<Vec<u8>>>,
    max_frame_len: usize,
}

struct MemSource {
    rx: mpsc::Receiver<Vec<u8>>,
}

struct MemListener {
    address: TransportAddress,
    incoming: mpsc::Receiver<Connection>,
    network: MemNetwork,
}

#[async_trait]
impl FrameSink for MemSink {
    async fn send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        if frame.len() > self.max_frame_len {
            return Err(TransportError::FrameTooLarge {
                len: frame.len(),
                max: self.max_frame_len,
            });
        }
        let tx = self.tx.as_ref().ok_or(TransportError::Closed)?;
        tx.send(frame).await.map_err(|_| TransportError::Closed)
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.tx = None;
        Ok(())
    }
}

#[async_trait]
impl FrameSource for MemSource {
    async fn recv(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        Ok(self.rx.recv().await)
    }
}

#[async_trait]
impl Listener for MemListener {
    fn local_address(&self) -> &TransportAddress {
        &self.address
    }

    async fn accept(&mut self) -> Result<Connection, TransportError> {
        self.incoming.recv().await.ok_or(TransportError::Closed)
    }
}

impl Drop for MemListener {
    fn drop(&mut self) {
        self.network.listeners().remove(self.address.authority());
    }
}

fn connection(
    tx: mpsc::Sender<Vec<u8>>,
    rx: mpsc::Receiver<Vec<u8>>,
    remote: String,
    max_frame_len: usize,
) -> Connection {
    Connection {
        sink: Box::new(MemSink {
            tx: Some(tx),
            max_frame_len,
        }),
        source: Box::new(MemSource { rx }),
        remote,
    }
}

#[async_trait]
impl Transport for MemTransport {
    fn scheme(&self) -> Scheme {
        Scheme::Mem
    }

    async fn listen(
        &self,
        address: &TransportAddress,
    ) -> Result<Box<dyn Listener>, TransportError> {
        let (tx, incoming) = mpsc::channel(CHANNEL_FRAMES);
        let mut listeners = self.network.listeners();
        if listeners
            .get(address.authority())
            .is_some_and(|l| !l.is_closed())
        {
            return Err(TransportError::Io(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{address} is already in use"),
            )));
        }
        listeners.insert(address.authority().to_owned(), tx);
        Ok(Box::new(MemListener {
            address: address.clone(),
            incoming,
            network: self.network.clone(),
        }))
    }

    async fn connect(&self, address: &TransportAddress) -> Result<Connection, TransportError> {
        let listener = self
            .network
            .listeners()
            .get(address.authority())
            .cloned()
            .ok_or_else(|| TransportError::Unreachable(address.to_string()))?;
        let (to_server, server_rx) = mpsc::channel(CHANNEL_FRAMES);
        let (to_client, client_rx) = mpsc::channel(CHANNEL_FRAMES);
        let server_side = connection(
            to_client,
            server_rx,
            format!("mem-client-of-{address}"),
            self.max_frame_len,
        );
        listener
            .send(server_side)
            .await
            .map_err(|_| TransportError::Unreachable(address.to_string()))?;
        Ok(connection(
            to_server,
            client_rx,
            address.to_string(),
            self.max_frame_len,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_travel_both_ways_and_close_is_seen() {
        let transport = MemTransport::new(MemNetwork::new());
        let address: TransportAddress = "mem://a".parse().expect("address");
        let mut listener = transport.listen(&address).await.expect("listen");
        let mut client = transport.connect(&address).await.expect("connect");
        let mut server = listener.accept().await.expect("accept");
        client.sink.send(b"ping".to_vec()).await.expect("send");
        assert_eq!(
            server.source.recv().await.expect("recv"),
            Some(b"ping".to_vec())
        );
        server.sink.send(b"pong".to_vec()).await.expect("send");
        assert_eq!(
            client.source.recv().await.expect("recv"),
            Some(b"pong".to_vec())
        );
        client.sink.close().await.expect("close");
        assert_eq!(server.source.recv().await.expect("recv"), None);
    }

    #[tokio::test]
    async fn oversize_frames_and_unknown_names_are_errors() {
        let transport = MemTransport::new(MemNetwork::new()).with_max_frame_len(8);
        let address: TransportAddress = "mem://b".parse().expect("address");
        assert!(matches!(
            transport.connect(&address).await,
            Err(TransportError::Unreachable(_))
        ));
        let _listener = transport.listen(&address).await.expect("listen");
        assert!(
            transport.listen(&address).await.is_err(),
            "name already taken"
        );
        let mut client = transport.connect(&address).await.expect("connect");
        assert!(matches!(
            client.sink.send(vec![0; 9]).await,
            Err(TransportError::FrameTooLarge { len: 9, max: 8 })
        ));
    }
}
