//! A transport wrapper that injects faults on command: corrupt data frames in
//! flight, or cut every open connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use jadeite::transport::{
    Connection, FrameSink, FrameSource, Listener, Scheme, Transport, TransportAddress,
    TransportError,
};
use tokio::sync::watch;

/// Shared switches for every connection made through one [`FaultyTransport`].
#[derive(Debug)]
pub struct Faults {
    corrupt_data_frames: AtomicUsize,
    cut: watch::Sender<u64>,
}

impl Faults {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            corrupt_data_frames: AtomicUsize::new(0),
            cut: watch::channel(0).0,
        })
    }

    /// Flips one byte in the ciphertext of the next `count` data frames sent.
    pub fn corrupt_next_data_frames(&self, count: usize) {
        self.corrupt_data_frames.store(count, Ordering::SeqCst);
    }

    /// Closes every connection open now (new ones are unaffected).
    pub fn cut_connections(&self) {
        self.cut.send_modify(|generation| *generation += 1);
    }

    fn take_corruption(&self) -> bool {
        self.corrupt_data_frames
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Wraps a transport; every connection it makes or accepts obeys `faults`.
pub struct FaultyTransport {
    inner: Arc<dyn Transport>,
    faults: Arc<Faults>,
}

impl std::fmt::Debug for FaultyTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyTransport")
            .field("scheme", &self.inner.scheme())
            .finish_non_exhaustive()
    }
}

impl FaultyTransport {
    pub fn new(inner: Arc<dyn Transport>, faults: Arc<Faults>) -> Self {
        Self { inner, faults }
    }
}

fn wrap(connection: Connection, faults: &Arc<Faults>) -> Connection {
    let cut = faults.cut.subscribe();
    Connection {
        sink: Box::new(FaultySink {
            inner: connection.sink,
            faults: Arc::clone(faults),
            cut: cut.clone(),
        }),
        source: Box::new(FaultySource {
            inner: connection.source,
            cut,
        }),
        remote: connection.remote,
    }
}

struct FaultySink {
    inner: Box<dyn FrameSink>,
    faults: Arc<Faults>,
    cut: watch::Receiver<u64>,
}

struct FaultySource {
    inner: Box<dyn FrameSource>,
    cut: watch::Receiver<u64>,
}

/// Data frames carry kind 3 in their second byte (routing header).
const DATA_FRAME: u8 = 3;

#[async_trait]
impl FrameSink for FaultySink {
    async fn send(&mut self, mut frame: Vec<u8>) -> Result<(), TransportError> {
        if self.cut.has_changed().unwrap_or(true) {
            return Err(TransportError::Closed);
        }
        if frame.get(1) == Some(&DATA_FRAME) && self.faults.take_corruption() {
            let last = frame.len() - 1;
            frame[last] ^= 0x01;
        }
        self.inner.send(frame).await
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.inner.close().await
    }
}

#[async_trait]
impl FrameSource for FaultySource {
    async fn recv(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        tokio::select! {
            frame = self.inner.recv() => frame,
            _ = self.cut.changed() => Err(TransportError::Closed),
        }
    }
}

struct FaultyListener {
    inner: Box<dyn Listener>,
    faults: Arc<Faults>,
}

#[async_trait]
impl Listener for FaultyListener {
    fn local_address(&self) -> &TransportAddress {
        self.inner.local_address()
    }

    async fn accept(&mut self) -> Result<Connection, TransportError> {
        Ok(wrap(self.inner.accept().await?, &self.faults))
    }
}

#[async_trait]
impl Transport for FaultyTransport {
    fn scheme(&self) -> Scheme {
        self.inner.scheme()
    }

    async fn listen(
        &self,
        address: &TransportAddress,
    ) -> Result<Box<dyn Listener>, TransportError> {
        let inner = self.inner.listen(address).await?;
        Ok(Box::new(FaultyListener {
            inner,
            faults: Arc::clone(&self.faults),
        }))
    }

    async fn connect(&self, address: &TransportAddress) -> Result<Connection, TransportError> {
        Ok(wrap(self.inner.connect(address).await?, &self.faults))
    }
}
