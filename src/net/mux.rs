//! HTTP/2 for latency runs: the connections whose streams a run's workers share, spoken
//! through the h2 crate directly. hyper's HTTP/2 client spawns a task for every request and
//! hands its answer back over a channel; at tens of thousands of streams a second that is more
//! work than the stream itself. Every other HTTP/2 exchange goes through hyper.

use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::conn::{AbortOnDrop, Link, drive};
use super::{Alarm, NetError, Phase, Request, within};

/// The request of a run as its streams send it, built once.
#[derive(Debug, Clone)]
pub(crate) struct Stream2 {
    head: http::Request<()>,
    body: Bytes,
}

impl Stream2 {
    /// The whole URL (without credentials) as the target, and the headers every request of
    /// shipwatch carries.
    pub(crate) fn new(req: &Request) -> Result<Stream2, NetError> {
        let head = super::conn::h2_request(req)?.map(|_| ());
        Ok(Stream2 {
            head,
            body: req.body.clone(),
        })
    }
}

/// A handle on an HTTP/2 connection; clones share it, and the last one dropped closes it.
#[derive(Clone)]
pub(crate) struct Mux {
    sender: h2::client::SendRequest<Bytes>,
    driver: Arc<AbortOnDrop>,
    /// The request timeout of this handle's streams.
    alarm: Alarm,
}

impl Mux {
    /// Starts HTTP/2 over a link that negotiated it.
    pub(crate) async fn over(link: Link, deadline: Instant) -> Result<Mux, NetError> {
        let started = Instant::now();
        let handshake = async {
            h2::client::handshake(link.io)
                .await
                .map_err(|e| NetError::Protocol(format!("HTTP/2 set-up failed: {e}")))
        };
        let (sender, conn) = within(deadline, Phase::Ttfb, started, handshake).await?;
        Ok(Mux {
            sender,
            driver: Arc::new(drive(conn, deadline)),
            alarm: Alarm::default(),
        })
    }

    /// True once the connection has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.driver.is_finished()
    }

    /// Sends the request on a stream of its own and reads the answer's body through, keeping
    /// none of it: the answer's status.
    pub(crate) async fn status_of(
        &mut self,
        req: &Stream2,
        sent: Instant,
        deadline: Instant,
    ) -> Result<u16, NetError> {
        let mut answered = false;
        let sender = &mut self.sender;
        let exchange = async {
            std::future::poll_fn(|cx| sender.poll_ready(cx))
                .await
                .map_err(|e| failed("the connection is not usable", &e))?;
            let end = req.body.is_empty();
            let (response, mut outgoing) = sender
                .send_request(req.head.clone(), end)
                .map_err(|e| failed("the request could not be sent", &e))?;
            if !end {
                outgoing
                    .send_data(req.body.clone(), true)
                    .map_err(|e| failed("the request body could not be sent", &e))?;
            }
            let head = response
                .await
                .map_err(|e| failed("no valid HTTP response", &e))?;
            answered = true;
            let status = head.status().as_u16();
            let mut body = head.into_body();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.map_err(|e| failed("the response was cut short", &e))?;
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            Ok(status)
        };
        match self.alarm.within(deadline, exchange).await {
            Some(r) => r,
            None if answered => Err(NetError::timed_out(Phase::Transfer, sent)),
            None => Err(NetError::timed_out(Phase::Ttfb, sent)),
        }
    }
}

/// An h2 error in words: a connection the server ended (GOAWAY, reset, closed socket) is
/// [`NetError::Closed`], anything else a protocol error.
fn failed(what: &str, e: &h2::Error) -> NetError {
    if e.is_go_away() || e.is_io() {
        NetError::Closed(format!("{what}: the connection closed ({e})"))
    } else {
        NetError::Protocol(format!("{what}: {e}"))
    }
}
