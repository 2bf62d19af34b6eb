//! `kind = "grpc"`: `grpc.health.v1.Health/Check` over the engine's HTTP/2 (h2 over TLS, or h2c
//! for `http://`), judged by `grpc.code` (the call's `grpc-status`) and `grpc.status` (SERVING).
//!
//! The request and the answer are one-field protobuf messages, encoded here by hand. The answer
//! is read up to [`MAX_MESSAGE`] bytes and until its trailers, within the check's deadline.

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use tokio::time::Instant;
use url::Url;

use crate::check::build::Build;
use crate::check::read::required;
use crate::doc::{Diagnostics, Spanned, Table};
use crate::net::{H2, NetError, Phase, Timings};
use crate::outcome::{Details, GrpcDetails, ProbeError};

use super::{Ctx, Finding, Probed, Status};

/// The most bytes of answer read; a health answer is a few bytes.
const MAX_MESSAGE: usize = 64 << 10;

const METHOD: &str = "grpc.health.v1.Health/Check";

/// gRPC status codes by number, as the gRPC specification names them.
const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// HealthCheckResponse.ServingStatus by number.
const STATUSES: [&str; 4] = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

/// A health check call: where, for which service, with which metadata.
#[derive(Debug, Clone)]
pub struct GrpcProbe {
    pub url: Url,
    pub service: String,
    pub headers: Vec<(String, String)>,
    pub insecure: bool,
}

/// What came back: the HTTP status, the data frames and the trailers (or a trailers-only answer).
struct Reply {
    http_status: u16,
    content_type: String,
    data: BytesMut,
    /// `grpc-status` and `grpc-message`, from the trailers or a trailers-only answer.
    code: Option<u32>,
    message: Option<String>,
}

impl GrpcProbe {
    pub async fn run(&self, ctx: &Ctx<'_>) -> Probed {
        let started = Instant::now();
        let h2 = ctx.engine.open_h2(&self.url, ctx.overrides, ctx.deadline);
        let mut h2 = match h2.await {
            Ok(c) => c,
            Err(e) => return Probed::failed(e),
        };
        if let Some(tls) = h2.tls.as_ref().filter(|t| !t.verified() && !self.insecure) {
            return Probed::failed(NetError::Untrusted(tls.problem().unwrap_or_default()));
        }
        let mut timings = h2.setup;
        let reply = match self.call(&mut h2, ctx.deadline, &mut timings).await {
            Ok(r) => r,
            Err(e) => return Probed::failed(e),
        };
        timings.total = started.elapsed();
        let mut p = self.judge(&reply);
        p.timings = Some(timings);
        p
    }

    fn request(&self, deadline: Instant) -> Result<http::Request<Full<Bytes>>, NetError> {
        let prefix = self.url.path().trim_end_matches('/');
        // As written in the URL: IPv6 hosts keep their brackets.
        let authority = &self.url[url::Position::BeforeHost..url::Position::AfterPort];
        let uri = format!("{}://{authority}{prefix}/{METHOD}", self.url.scheme());
        let left = deadline.saturating_duration_since(Instant::now());
        let mut b = http::Request::post(uri)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-timeout", format!("{}m", left.as_millis().max(1)))
            .header(
                "user-agent",
                concat!("shipwatch/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in &self.headers {
            b = b.header(k.to_ascii_lowercase(), v);
        }
        b.body(Full::new(frame(&health_request(&self.service))))
            .map_err(|e| NetError::Setup(format!("invalid gRPC request to {}: {e}", self.url)))
    }

    async fn call(
        &self,
        h2: &mut H2,
        deadline: Instant,
        timings: &mut Timings,
    ) -> Result<Reply, ProbeError> {
        let request = self.request(deadline)?;
        let started = Instant::now();
        let head =
            async {
                h2.sender.ready().await.map_err(|e| {
                    NetError::Protocol(format!("the HTTP/2 connection failed: {e}"))
                })?;
                h2.sender.send_request(request).await.map_err(|e| {
                    NetError::Protocol(format!("no gRPC answer from {}: {e}", self.url))
                })
            };
        let response = match tokio::time::timeout_at(deadline, head).await {
            Ok(r) => r?,
            Err(_) => return Err(NetError::timed_out(Phase::Ttfb, started).into()),
        };
        timings.ttfb = started.elapsed();
        let (parts, body) = response.into_parts();
        let mut reply = Reply {
            http_status: parts.status.as_u16(),
            content_type: header(&parts.headers, "content-type").unwrap_or_default(),
            data: BytesMut::new(),
            code: None,
            message: None,
        };
        reply.read_status(&parts.headers);
        match tokio::time::timeout_at(deadline, reply.read_body(body)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(ProbeError {
                    kind: "timeout",
                    message: format!(
                        "the server sent no gRPC trailers within {:.1}s (the call never ended)",
                        started.elapsed().as_secs_f64()
                    ),
                });
            }
        }
        timings.transfer = started.elapsed() - timings.ttfb;
        Ok(reply)
    }

    fn judge(&self, reply: &Reply) -> Probed {
        let target = match self.service.as_str() {
            "" => "the server".to_string(),
            s => format!("service \"{s}\""),
        };
        let (code, status) = judge_reply(reply, &target);
        let details = GrpcDetails {
            status: status.1.clone(),
            code: reply.code.unwrap_or(2),
            code_name: code_name(reply.code.unwrap_or(2)),
            message: reply.message.clone(),
        };
        let findings = vec![code, status.0];
        Probed {
            findings,
            details: Details::Grpc(details),
            ..Probed::default()
        }
    }
}

impl Reply {
    fn read_status(&mut self, headers: &http::HeaderMap) {
        if let Some(code) = header(headers, "grpc-status") {
            self.code = Some(code.trim().parse().unwrap_or(2));
        }
        if let Some(m) = header(headers, "grpc-message").filter(|m| !m.is_empty()) {
            let decoded = percent_encoding::percent_decode_str(&m).decode_utf8_lossy();
            self.message = Some(decoded.chars().take(500).collect());
        }
    }

    async fn read_body(&mut self, mut body: hyper::body::Incoming) -> Result<(), NetError> {
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| NetError::Protocol(format!("the answer broke off: {e}")))?;
            match frame.into_data() {
                Ok(data) if self.data.len() + data.len() > MAX_MESSAGE => {
                    return Err(NetError::Protocol(format!(
                        "the health answer is longer than {MAX_MESSAGE} bytes"
                    )));
                }
                Ok(data) => self.data.extend_from_slice(&data),
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        self.read_status(&trailers);
                    }
                }
            }
        }
        Ok(())
    }
}

/// `grpc.code` and `grpc.status` (with the status's name) for a reply.
fn judge_reply(reply: &Reply, target: &str) -> (Finding, (Finding, String)) {
    let grpc_status = |status: Status, msg: String, actual: &str| {
        Finding::new("grpc.status", status, msg).with_values("SERVING", actual)
    };
    let code_finding = |status: Status, msg: String, actual: String| {
        Finding::new("grpc.code", status, msg).with_values("0 (OK)", actual)
    };
    let not_grpc = reply.http_status != 200 || !reply.content_type.starts_with("application/grpc");
    if not_grpc && reply.code.is_none() {
        let what = format!(
            "HTTP {} with content-type \"{}\" instead of a gRPC answer",
            reply.http_status, reply.content_type
        );
        let code = code_finding(Status::Fail, format!("the server answered {what}"), what);
        let status = grpc_status(Status::Fail, "no health status: the call failed".into(), "");
        return (code, (status, String::new()));
    }
    let Some(code) = reply.code else {
        let msg = "the answer ended without a grpc-status trailer".to_string();
        let code = code_finding(Status::Fail, msg, "no grpc-status".into());
        let status = grpc_status(Status::Fail, "no health status: the call failed".into(), "");
        return (code, (status, String::new()));
    };
    if code != 0 {
        let name = code_name(code);
        let said = reply.message.as_deref().unwrap_or("no message");
        let msg = match code {
            12 => format!("the server does not implement {METHOD} (UNIMPLEMENTED: {said})"),
            5 => format!("the server does not know {target} (NOT_FOUND: {said})"),
            _ => format!("the health call failed with {name} ({code}): {said}"),
        };
        let code = code_finding(Status::Fail, msg, format!("{code} ({name})"));
        let status = grpc_status(
            Status::Fail,
            format!("no health status for {target}: the call failed with {name}"),
            "",
        );
        return (code, (status, String::new()));
    }
    let ok = code_finding(
        Status::Pass,
        "the health call returned OK".into(),
        "0 (OK)".into(),
    );
    let status = match health_status(&reply.data) {
        Ok(s) => s,
        Err(why) => {
            let msg = format!("the answer is not a HealthCheckResponse: {why}");
            return (
                ok,
                (grpc_status(Status::Fail, msg, "unreadable"), String::new()),
            );
        }
    };
    let name = STATUSES.get(status as usize).copied().unwrap_or("UNKNOWN");
    let serving = name == "SERVING";
    let msg = format!("{target} is {name}");
    let finding = grpc_status(if serving { Status::Pass } else { Status::Fail }, msg, name);
    (ok, (finding, name.to_string()))
}

fn code_name(code: u32) -> String {
    CODES
        .get(code as usize)
        .map_or_else(|| format!("CODE_{code}"), |n| n.to_string())
}

fn header(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// HealthCheckRequest { string service = 1; }: empty for the whole server.
fn health_request(service: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if !service.is_empty() {
        out.push(0x0a);
        put_varint(&mut out, service.len() as u64);
        out.extend_from_slice(service.as_bytes());
    }
    out
}

/// A gRPC message frame: not compressed, a four-byte length, the message.
fn frame(message: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + message.len());
    b.put_u8(0);
    b.put_u32(message.len() as u32);
    b.extend_from_slice(message);
    b.freeze()
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// The `status` field of one framed HealthCheckResponse; an absent field is UNKNOWN (0).
fn health_status(data: &[u8]) -> Result<u64, String> {
    let [flag, l0, l1, l2, l3, rest @ ..] = data else {
        return Err(format!("{} bytes, shorter than a gRPC frame", data.len()));
    };
    if *flag != 0 {
        return Err("the message is compressed, which shipwatch did not ask for".into());
    }
    let len = u32::from_be_bytes([*l0, *l1, *l2, *l3]) as usize;
    let msg = rest
        .get(..len)
        .ok_or_else(|| format!("the frame says {len} bytes but {} came", rest.len()))?;
    let mut at = 0;
    let mut status = 0;
    while at < msg.len() {
        let bad = || "a malformed protobuf field".to_string();
        let key = varint(msg, &mut at).ok_or_else(bad)?;
        match key & 7 {
            0 => {
                let v = varint(msg, &mut at).ok_or_else(bad)?;
                if key >> 3 == 1 {
                    status = v;
                }
            }
            1 => at += 8,
            2 => at += varint(msg, &mut at).ok_or_else(bad)? as usize,
            5 => at += 4,
            _ => return Err(bad()),
        }
    }
    Ok(status)
}

// The `[[check]]` keys of this kind, read and validated with positions.

/// The keys a `kind = "grpc"` check takes besides the common ones.
pub(crate) const KEYS: &[&str] = &["url", "service", "headers"];

/// `kind = "grpc"`: a server and the service whose health to ask.
#[derive(Debug, Clone)]
pub struct GrpcSpec {
    pub url: Spanned<String>,
    pub service: Option<Spanned<String>>,
    pub headers: Vec<(String, Spanned<String>)>,
}

pub(crate) fn read(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<GrpcSpec> {
    let url = required(t, "url", diags);
    let service = t.str("service", diags);
    let headers = t.str_map("headers", diags).unwrap_or_default();
    Some(GrpcSpec {
        url: url?,
        service,
        headers,
    })
}

/// The job of a `kind = "grpc"` check, its strings interpolated.
pub(crate) fn build(spec: &GrpcSpec, b: &mut Build<'_>) -> Option<GrpcProbe> {
    let url = b.url(&spec.url)?;
    let service = spec.service.as_ref().map(|s| b.text(s)).unwrap_or_default();
    let headers = spec
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), b.text(v)))
        .collect();
    Some(GrpcProbe {
        url,
        service,
        headers,
        insecure: b.insecure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_messages_round_trip() {
        assert_eq!(health_request(""), Vec::<u8>::new());
        assert_eq!(health_request("a.B"), vec![0x0a, 3, b'a', b'.', b'B']);
        assert_eq!(frame(&[8, 1]).as_ref(), &[0, 0, 0, 0, 2, 8, 1]);
        assert_eq!(health_status(&frame(&[8, 1])), Ok(1));
        assert_eq!(health_status(&frame(&[8, 2])), Ok(2));
        // An empty message is the default status, UNKNOWN; unknown fields are skipped.
        assert_eq!(health_status(&frame(&[])), Ok(0));
        assert_eq!(health_status(&frame(&[0x12, 1, b'x', 8, 1])), Ok(1));
        assert!(health_status(&[1, 0, 0, 0, 0]).is_err());
        assert!(health_status(&[0, 0, 0, 0, 9, 8]).is_err());
        assert!(health_status(&frame(&[8])).is_err());
        let mut buf = Vec::new();
        put_varint(&mut buf, 300);
        assert_eq!(varint(&buf, &mut 0), Some(300));
    }
}
