//! Keep-alive connections for a run that sends many requests: one open connection per origin,
//! reused the way browsers and load generators reuse them.
//!
//! Servers and proxies close connections: after `Connection: close`, after an idle timeout, or
//! after some number of requests. A closed connection is replaced before the next request, and
//! when a reused connection turns out to be closed before any byte of the response arrived, an
//! idempotent request is sent again on a new connection. That is a reconnect, not an error.

use tokio::time::Instant;

use super::{Conn, Engine, Exchange, Hop, NetError, Overrides, Protocol, Request, Response};

/// Open connections by origin, and how often one had to be replaced.
pub struct Pool {
    conns: Vec<(String, Conn)>,
    /// Keep connections open between requests; without it, every request opens its own.
    keep: bool,
    /// Requests sent again because a reused connection was found closed.
    pub reconnects: u64,
    /// The HTTP new connections speak.
    protocol: Protocol,
}

impl Default for Pool {
    fn default() -> Pool {
        Pool::new()
    }
}

/// Methods that may be sent twice without changing the outcome (RFC 9110 §9.2.2).
pub(crate) fn idempotent(m: &http::Method) -> bool {
    matches!(
        *m,
        http::Method::GET
            | http::Method::HEAD
            | http::Method::OPTIONS
            | http::Method::PUT
            | http::Method::DELETE
            | http::Method::TRACE
    )
}

fn origin_key(req: &Request) -> String {
    req.url.origin().ascii_serialization()
}

impl Pool {
    /// A pool that keeps connections alive.
    pub fn new() -> Pool {
        Pool {
            conns: Vec::new(),
            keep: true,
            reconnects: 0,
            protocol: Protocol::Auto,
        }
    }

    /// The same pool, opening connections that speak `protocol`.
    pub(crate) fn speaking(self, protocol: Protocol) -> Pool {
        Pool { protocol, ..self }
    }

    /// A pool that opens a new connection (and handshake) for every request, so each response's
    /// timings include the whole set-up.
    pub(crate) fn single_use() -> Pool {
        Pool {
            keep: false,
            ..Pool::new()
        }
    }

    /// Sends `req`, on the origin's open connection when there is one.
    pub async fn send(
        &mut self,
        engine: &Engine,
        req: &Request,
        overrides: &Overrides,
        deadline: Instant,
    ) -> Result<Response, NetError> {
        let key = origin_key(req);
        let mut conn = match self.take(&key) {
            Some(c) => c,
            None => {
                engine
                    .open_speaking(req, self.protocol, overrides, deadline)
                    .await?
            }
        };
        let reused = conn.is_reused();
        let result = match conn.send(req, deadline).await {
            Err(NetError::Closed(_)) if reused && idempotent(&req.method) => {
                self.reconnects += 1;
                conn = engine
                    .open_speaking(req, self.protocol, overrides, deadline)
                    .await?;
                conn.send(req, deadline).await
            }
            other => other,
        };
        let resp = result?;
        if self.keep && keeps_alive(&resp) && !conn.is_closed() {
            self.conns.push((key, conn));
        }
        Ok(resp)
    }

    /// Sends a request and follows up to `max_redirects` redirects, recording each hop. A loop or
    /// one redirect too many is an error.
    pub(crate) async fn fetch(
        &mut self,
        engine: &Engine,
        req: &Request,
        overrides: &Overrides,
        deadline: Instant,
        max_redirects: usize,
    ) -> Result<Exchange, NetError> {
        let mut req = req.clone();
        let mut hops: Vec<Hop> = Vec::new();
        loop {
            let response = self.send(engine, &req, overrides, deadline).await?;
            let next = match (response.is_redirect(), response.location()) {
                (true, Some(loc)) => req.url.join(loc).map_err(|e| {
                    NetError::Protocol(format!("invalid Location \"{loc}\" from {}: {e}", req.url))
                })?,
                _ => return Ok(Exchange { hops, response }),
            };
            hops.push(Hop {
                url: req.url.clone(),
                status: response.status,
                location: response.location().map(str::to_string),
                timings: response.timings,
            });
            if hops.iter().any(|h| h.url == next) {
                let chain: Vec<String> = hops.iter().map(|h| h.url.to_string()).collect();
                return Err(NetError::Protocol(format!(
                    "redirect loop: {} → {next}",
                    chain.join(" → ")
                )));
            }
            if hops.len() > max_redirects {
                return Err(NetError::Protocol(format!(
                    "more than {max_redirects} redirects, last to {next}"
                )));
            }
            req.redirect(response.status, next);
        }
    }

    /// Closes every connection, so the next request opens a new one.
    pub fn clear(&mut self) {
        self.conns.clear();
    }

    /// The open connection for `key`, if it is still open.
    fn take(&mut self, key: &str) -> Option<Conn> {
        let i = self.conns.iter().position(|(k, _)| k == key)?;
        let (_, conn) = self.conns.swap_remove(i);
        (!conn.is_closed()).then_some(conn)
    }
}

/// False when the response ends its connection: `Connection: close`, HTTP/1.0 without
/// `keep-alive`, or a body cut at the cap and so left unread on the wire.
pub(super) fn keeps_alive(resp: &Response) -> bool {
    let has = |token: &str| {
        resp.headers
            .get_all(http::header::CONNECTION)
            .iter()
            .any(|v| {
                v.to_str()
                    .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            })
    };
    let http10 = resp.version == http::Version::HTTP_10;
    let persistent = if http10 {
        has("keep-alive")
    } else {
        !has("close")
    };
    persistent && !resp.truncated
}
