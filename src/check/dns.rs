//! `kind = "dns"`: one query to a name server, its answer judged by `dns.rcode` and assertions on
//! `answers`, `ttl`, `rcode`, `authoritative` and `time`.
//!
//! The query is built and read with hickory's wire format and sent by hand, so the rcode, the
//! authoritative flag and every TTL are seen as the server sent them (a caching resolver would
//! hide them). With no `server`, the system resolver's name servers are asked in order. A UDP
//! answer marked truncated is asked again over TCP, as stub resolvers do. Reads are bounded by
//! the protocol: 65,535 bytes at most.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query as DnsQuery};
use hickory_proto::rr::{Name, RecordType};
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use crate::assert::{Assertion, Context, Query, Subject};
use crate::check::build::Build;
use crate::check::read::{read_expect, required};
use crate::doc::{Diagnostics, Spanned, Table};
use crate::net::{NetError, Phase, Timings};
use crate::outcome::{Details, DnsDetails};

use super::{Ctx, Finding, Probed, Status, judge_assertions_led};

/// The record types a check may ask for.
const TYPES: &[&str] = &[
    "A", "AAAA", "CNAME", "MX", "TXT", "NS", "CAA", "SOA", "SRV", "PTR",
];

/// The UDP payload shipwatch advertises (EDNS): what fits an unfragmented packet on any path.
const UDP_PAYLOAD: u16 = 1232;

/// How long to wait for a UDP answer before asking again.
const UDP_RETRY: Duration = Duration::from_secs(1);

/// One query and what its answer must satisfy.
#[derive(Debug, Clone)]
pub struct DnsProbe {
    pub name: Name,
    pub record_type: RecordType,
    /// The server to ask as HOST and PORT; the system's name servers when `None`.
    pub server: Option<(String, u16)>,
    pub tcp: bool,
    pub expect: Vec<Assertion>,
}

/// An answer and how it came.
struct Answer {
    message: Message,
    server: SocketAddr,
    transport: &'static str,
}

impl DnsProbe {
    pub async fn run(&self, ctx: &Ctx<'_>) -> Probed {
        let started = Instant::now();
        let servers = match self.servers(ctx).await {
            Ok(s) => s,
            Err(e) => return Probed::failed(e),
        };
        let query = self.query();
        let mut last = None;
        for server in servers {
            match self.ask(&query, server, ctx.deadline).await {
                Ok(answer) => return self.judge(&answer, started.elapsed()),
                Err(e @ NetError::Timeout { .. }) => return Probed::failed(e),
                Err(e) => last = Some(e),
            }
        }
        Probed::failed(last.unwrap_or_else(|| NetError::Dns("no name server answered".into())))
    }

    async fn servers(&self, ctx: &Ctx<'_>) -> Result<Vec<SocketAddr>, NetError> {
        match &self.server {
            Some((host, port)) => {
                let addr = ctx
                    .engine
                    .resolve(host, *port, ctx.overrides, ctx.deadline)
                    .await?;
                Ok(vec![addr])
            }
            None => {
                let system = ctx.engine.nameservers()?;
                if system.is_empty() {
                    return Err(NetError::Setup(
                        "the system names no DNS server; set `server` on the check".into(),
                    ));
                }
                Ok(system)
            }
        }
    }

    fn query(&self) -> Message {
        let mut m = Message::query();
        m.add_query(DnsQuery::query(self.name.clone(), self.record_type));
        m.metadata.recursion_desired = true;
        let mut edns = Edns::new();
        edns.set_max_payload(UDP_PAYLOAD);
        m.set_edns(edns);
        m
    }

    /// One server's answer: over UDP (then TCP when truncated), or over TCP only.
    async fn ask(
        &self,
        query: &Message,
        server: SocketAddr,
        deadline: Instant,
    ) -> Result<Answer, NetError> {
        let bytes = query.to_vec().map_err(|e| {
            NetError::Setup(format!("cannot encode the query for {}: {e}", self.name))
        })?;
        let id = query.metadata.id;
        if !self.tcp {
            let message = udp_exchange(&bytes, id, server, deadline).await?;
            if !message.metadata.truncation {
                return Ok(Answer {
                    message,
                    server,
                    transport: "udp",
                });
            }
        }
        let message = tcp_exchange(&bytes, id, server, deadline).await?;
        Ok(Answer {
            message,
            server,
            transport: "tcp",
        })
    }

    fn judge(&self, answer: &Answer, took: Duration) -> Probed {
        let meta = &answer.message.metadata;
        let rcode = rcode_name(u16::from(meta.response_code));
        let records = &answer.message.answers;
        let answers: Vec<String> = records.iter().map(|r| r.data.to_string()).collect();
        let ttl = records.iter().map(|r| r.ttl).min();
        let mut subject = Subject {
            time: Some(took),
            ..Subject::default()
        };
        subject.facts = vec![
            ("answers", Json::from(answers.clone())),
            ("rcode", Json::from(rcode.clone())),
            ("authoritative", Json::from(meta.authoritative)),
        ];
        if let Some(t) = ttl {
            subject.facts.push(("ttl", Json::from(t)));
        }
        let is_rcode = |q: &Query| matches!(q, Query::Fact("rcode"));
        let mut findings =
            judge_assertions_led(&subject, &self.expect, is_rcode, "dns.rcode", "dns.assert");
        if !findings.iter().any(|f| f.id == "dns.rcode") {
            let ok = rcode == "NOERROR";
            let msg = format!(
                "{} answered {rcode} with {} records for {} {}",
                answer.server,
                records.len(),
                self.name,
                self.record_type
            );
            let finding = Finding::judge("dns.rcode", ok, Status::Fail, msg);
            findings.insert(0, finding.with_values("NOERROR", rcode.clone()));
        }
        let details = DnsDetails {
            server: answer.server.to_string(),
            transport: answer.transport.into(),
            rcode,
            authoritative: meta.authoritative,
            answers_total: answers.len(),
            answers: answers.into_iter().take(DnsDetails::MAX_ANSWERS).collect(),
            ttl,
            lookup_ms: crate::units::ms(took),
        };
        Probed {
            findings,
            timings: Some(Timings {
                dns: took,
                total: took,
                ..Timings::default()
            }),
            error: None,
            details: Details::Dns(Box::new(details)),
            redact: Vec::new(),
        }
    }
}

/// The rcode's mnemonic, as dig and the RFCs write it.
fn rcode_name(code: u16) -> String {
    const NAMES: [&str; 11] = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH", "NOTZONE",
    ];
    NAMES
        .get(usize::from(code))
        .map_or_else(|| format!("RCODE{code}"), |n| n.to_string())
}

fn decode(buf: &[u8], server: SocketAddr) -> Result<Message, NetError> {
    Message::from_vec(buf).map_err(|e| {
        NetError::Protocol(format!(
            "the answer from {server} is not a valid DNS message ({} bytes): {e}",
            buf.len()
        ))
    })
}

/// Sends the query over UDP, again every second while nothing comes back; datagrams with another
/// id are ignored, as stub resolvers ignore them.
async fn udp_exchange(
    query: &[u8],
    id: u16,
    server: SocketAddr,
    deadline: Instant,
) -> Result<Message, NetError> {
    let started = Instant::now();
    let local: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let connect_error =
        |e: std::io::Error| NetError::Connect(format!("cannot reach {server}: {e}"));
    let socket = UdpSocket::bind(local).await.map_err(connect_error)?;
    socket.connect(server).await.map_err(connect_error)?;
    let mut buf = vec![0u8; 65535];
    loop {
        socket.send(query).await.map_err(connect_error)?;
        let wait_until = (Instant::now() + UDP_RETRY).min(deadline);
        loop {
            let received = tokio::time::timeout_at(wait_until, socket.recv(&mut buf)).await;
            let n = match received {
                Err(_) if wait_until >= deadline => {
                    return Err(NetError::timed_out(Phase::Dns, started));
                }
                Err(_) => break,
                Ok(r) => r.map_err(|e| {
                    NetError::Connect(format!("no DNS service at {server} over UDP: {e}"))
                })?,
            };
            let message = decode(&buf[..n], server)?;
            if message.metadata.id == id {
                return Ok(message);
            }
        }
    }
}

/// Sends the query over TCP with its two-byte length, and reads one answer.
async fn tcp_exchange(
    query: &[u8],
    id: u16,
    server: SocketAddr,
    deadline: Instant,
) -> Result<Message, NetError> {
    let started = Instant::now();
    let exchange = async {
        let mut tcp = TcpStream::connect(server)
            .await
            .map_err(|e| NetError::Connect(format!("cannot connect to {server}: {e}")))?;
        let lost = |e: std::io::Error| {
            NetError::Protocol(format!("the TCP connection to {server} failed: {e}"))
        };
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(query);
        tcp.write_all(&framed).await.map_err(lost)?;
        let len = tcp.read_u16().await.map_err(lost)?;
        let mut buf = vec![0u8; usize::from(len)];
        tcp.read_exact(&mut buf).await.map_err(lost)?;
        let message = decode(&buf, server)?;
        if message.metadata.id != id {
            return Err(NetError::Protocol(format!(
                "{server} answered another query over TCP (id {} instead of {id})",
                message.metadata.id
            )));
        }
        Ok(message)
    };
    tokio::time::timeout_at(deadline, exchange)
        .await
        .unwrap_or_else(|_| Err(NetError::timed_out(Phase::Dns, started)))
}

// The `[[check]]` keys of this kind, read and validated with positions.

/// The keys a `kind = "dns"` check takes besides the common ones.
pub(crate) const KEYS: &[&str] = &["query", "type", "server", "transport", "expect"];

/// `kind = "dns"`: a name, a record type, and optionally the server and transport.
#[derive(Debug, Clone)]
pub struct DnsSpec {
    pub query: Spanned<String>,
    pub record_type: RecordType,
    pub server: Option<Spanned<String>>,
    pub tcp: bool,
    pub expect: Vec<Spanned<String>>,
}

pub(crate) fn read(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<DnsSpec> {
    let query = required(t, "query", diags);
    let record_type = match t.str("type", diags) {
        None => RecordType::A,
        Some(v) => {
            let upper = v.value.to_ascii_uppercase();
            match TYPES.contains(&upper.as_str()) {
                true => RecordType::from_str(&upper).unwrap_or(RecordType::A),
                false => {
                    let msg = format!("type \"{}\" is not one of {}", v.value, TYPES.join(" "));
                    diags.error(v.span, msg);
                    RecordType::A
                }
            }
        }
    };
    let server = t.str("server", diags);
    let tcp = match t.str("transport", diags) {
        Some(v) if v.value == "tcp" => true,
        Some(v) if v.value == "udp" => false,
        Some(v) => {
            let msg = format!("transport \"{}\" must be \"udp\" or \"tcp\"", v.value);
            diags.error(v.span, msg);
            false
        }
        None => false,
    };
    let expect = read_expect(t, Context::Dns, diags);
    Some(DnsSpec {
        query: query?,
        record_type,
        server,
        tcp,
        expect,
    })
}

/// `ADDR`, `ADDR:PORT`, `[V6]:PORT` or `HOST:PORT`; the port is 53 when none is written.
fn server_address(text: &str) -> Option<(String, u16)> {
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Some((ip.to_string(), 53));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some((addr.ip().to_string(), addr.port()));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => {
            Some((host.to_string(), port.parse().ok()?))
        }
        None if !text.is_empty() && !text.contains(['/', ' ']) => Some((text.to_string(), 53)),
        _ => None,
    }
}

/// The job of a `kind = "dns"` check, its strings interpolated.
pub(crate) fn build(spec: &DnsSpec, b: &mut Build<'_>) -> Option<DnsProbe> {
    let text = b.text(&spec.query);
    let name = match Name::from_utf8(&text) {
        Ok(mut n) => {
            n.set_fqdn(true);
            Some(n)
        }
        Err(e) => {
            let msg = format!("query \"{text}\" is not a valid domain name: {e}");
            b.error(spec.query.span.clone(), msg);
            None
        }
    };
    let server = match &spec.server {
        None => None,
        Some(s) => {
            let text = b.text(s);
            let parsed = server_address(&text);
            if parsed.is_none() {
                let msg = format!("server \"{text}\" must be ADDR, ADDR:PORT or HOST:PORT");
                b.error(s.span.clone(), msg);
            }
            Some(parsed?)
        }
    };
    let expect = b.expect(&spec.expect, Context::Dns);
    Some(DnsProbe {
        name: name?,
        record_type: spec.record_type,
        server,
        tcp: spec.tcp,
        expect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_default_to_port_53() {
        assert_eq!(server_address("10.0.0.2"), Some(("10.0.0.2".into(), 53)));
        assert_eq!(
            server_address("10.0.0.2:5353"),
            Some(("10.0.0.2".into(), 5353))
        );
        assert_eq!(server_address("[::1]:53"), Some(("::1".into(), 53)));
        assert_eq!(server_address("::1"), Some(("::1".into(), 53)));
        assert_eq!(
            server_address("ns1.example.com"),
            Some(("ns1.example.com".into(), 53))
        );
        assert_eq!(server_address("ns1:x"), None);
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(23), "RCODE23");
    }
}
