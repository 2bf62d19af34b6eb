//! What a check found besides its judgements, per kind: the JSON report's `details`, as data.
//! Metrics, the text report and the status page read these fields; nothing reads string keys.
//! Times stay Unix seconds until they are written.

use serde::{Deserialize, Serialize};

use crate::assert::Redactor;

/// The facts of one check, by kind. `None` for kinds that report only findings.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Details {
    #[default]
    None,
    Http(HttpDetails),
    Redirect(RedirectDetails),
    // The large ones are boxed, so an outcome of another kind does not carry their size.
    Tls(Box<TlsDetails>),
    Headers(HeadersDetails),
    Cors(CorsDetails),
    Flow(FlowDetails),
    Latency(Box<LatencyDetails>),
    Dns(Box<DnsDetails>),
    Tcp(Box<TcpDetails>),
    Grpc(GrpcDetails),
    WebSocket(WebSocketDetails),
}

/// One hop of a redirect chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    pub url: String,
    pub status: u16,
    pub location: Option<String>,
    /// The hop's total time; the `http` kind records it, the `redirect` kind does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpDetails {
    pub final_url: String,
    pub http_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirects: Vec<Hop>,
    /// Bytes of the final response's body (up to the cap).
    #[serde(default)]
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedirectDetails {
    pub hops: Vec<Hop>,
}

/// The certificate and the connection. Fields are in the report's (alphabetical) order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsDetails {
    /// The earliest notAfter among the intermediates, in Unix seconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_rfc3339"
    )]
    pub chain_not_after: Option<i64>,
    pub cipher: String,
    pub days_left: i64,
    pub issuer: String,
    /// The leaf's key, such as "RSA 2048-bit key" or "EC P-256 key".
    #[serde(default)]
    pub key: String,
    /// The leaf's notAfter, in Unix seconds.
    #[serde(with = "rfc3339")]
    pub not_after: i64,
    pub sans: Vec<String>,
    pub subject: String,
    pub version: String,
}

/// One test of the Observatory grade and what it did to the score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Modifier {
    pub test: String,
    pub result: String,
    pub modifier: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadersDetails {
    pub final_url: String,
    pub grade: String,
    pub modifiers: Vec<Modifier>,
    pub score: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorsDetails {
    pub origins_probed: usize,
}

/// What a step that ran sent and got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRun {
    pub method: String,
    pub http_status: Option<u16>,
    pub duration_ms: f64,
    pub ttfb_ms: Option<f64>,
}

/// One step of a flow: `status` is pass, fail or skipped; a skipped step has no run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDetail {
    pub name: String,
    pub status: String,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub run: Option<StepRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowDetails {
    pub steps: Vec<StepDetail>,
}

/// One histogram bucket: requests that took at most `le_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub le_ms: f64,
    pub count: u64,
}

/// A latency run's statistics, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub requests: u64,
    pub errors: u64,
    #[serde(default)]
    pub reconnects: u64,
    pub error_rate: f64,
    pub throughput_rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p99_9_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub histogram: Vec<Bucket>,
    /// Every recorded latency (µs), as the HDR histogram's standard V2 compressed encoding in
    /// base64: what `check --baseline` compares distributions with.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hdr_histogram: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyDetails {
    pub latency: LatencySummary,
}

/// One DNS query's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsDetails {
    /// The name server that answered, as ADDR:PORT.
    pub server: String,
    /// "udp", or "tcp" (asked for, or after a truncated UDP answer).
    pub transport: String,
    pub rcode: String,
    pub authoritative: bool,
    /// The answer section in presentation form, at most [`DnsDetails::MAX_ANSWERS`] of them.
    pub answers: Vec<String>,
    /// How many records the answer section held.
    pub answers_total: usize,
    /// The smallest TTL in the answer section, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    pub lookup_ms: f64,
}

impl DnsDetails {
    /// Records kept in a report; assertions see them all.
    pub const MAX_ANSWERS: usize = 100;
}

/// A TCP connection: what the server said first, and the TLS upgrade when there was one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TcpDetails {
    pub remote: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
    /// The banner was longer than shipwatch keeps and was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub banner_truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsDetails>,
}

/// A gRPC health check's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GrpcDetails {
    /// SERVING, NOT_SERVING, SERVICE_UNKNOWN or UNKNOWN; empty when the call failed.
    pub status: String,
    /// The `grpc-status` code and its name.
    pub code: u32,
    pub code_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A WebSocket exchange: the message judged and how the server closed, if it did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebSocketDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_reason: Option<String>,
    /// Frames received before the one judged (pings, or messages while waiting).
    pub frames: u64,
}

impl Serialize for Details {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Details::None => serde::ser::SerializeMap::end(s.serialize_map(Some(0))?),
            Details::Http(d) => d.serialize(s),
            Details::Redirect(d) => d.serialize(s),
            Details::Tls(d) => d.serialize(s),
            Details::Headers(d) => d.serialize(s),
            Details::Cors(d) => d.serialize(s),
            Details::Flow(d) => d.serialize(s),
            Details::Latency(d) => d.serialize(s),
            Details::Dns(d) => d.serialize(s),
            Details::Tcp(d) => d.serialize(s),
            Details::Grpc(d) => d.serialize(s),
            Details::WebSocket(d) => d.serialize(s),
        }
    }
}

impl Details {
    /// The JSON report's `details` object.
    pub fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Reads a report's `details` back for a check of `kind` (`check --remote`); what does not
    /// fit is left out.
    pub(crate) fn from_json(kind: super::Kind, v: &serde_json::Value) -> Details {
        use super::Kind;
        fn read<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Option<T> {
            serde_json::from_value(v.clone()).ok()
        }
        let d = match kind {
            Kind::Http => read(v).map(Details::Http),
            Kind::Redirect => read(v).map(Details::Redirect),
            Kind::Tls => read(v).map(Details::Tls),
            Kind::Headers => read(v).map(Details::Headers),
            Kind::Cors => read(v).map(Details::Cors),
            Kind::Flow => read(v).map(Details::Flow),
            Kind::Latency => read(v).map(Details::Latency),
            Kind::Dns => read(v).map(Details::Dns),
            Kind::Tcp => read(v).map(Details::Tcp),
            Kind::Grpc => read(v).map(Details::Grpc),
            Kind::WebSocket => read(v).map(Details::WebSocket),
            Kind::Page | Kind::Exposure => None,
        };
        d.unwrap_or_default()
    }

    pub fn latency(&self) -> Option<&LatencySummary> {
        match self {
            Details::Latency(d) => Some(&d.latency),
            _ => None,
        }
    }

    /// The certificate of a `tls` check, or of a `tcp` check's STARTTLS upgrade.
    pub fn tls(&self) -> Option<&TlsDetails> {
        match self {
            Details::Tls(d) => Some(d),
            Details::Tcp(d) => d.tls.as_ref(),
            _ => None,
        }
    }

    pub fn grpc(&self) -> Option<&GrpcDetails> {
        match self {
            Details::Grpc(d) => Some(d),
            _ => None,
        }
    }

    pub fn dns(&self) -> Option<&DnsDetails> {
        match self {
            Details::Dns(d) => Some(d),
            _ => None,
        }
    }

    pub fn headers(&self) -> Option<&HeadersDetails> {
        match self {
            Details::Headers(d) => Some(d),
            _ => None,
        }
    }

    pub fn flow(&self) -> Option<&FlowDetails> {
        match self {
            Details::Flow(d) => Some(d),
            _ => None,
        }
    }

    /// Hides every secret or captured value in every text the details hold.
    pub fn redact(&mut self, r: &Redactor) {
        let hops = |hops: &mut Vec<Hop>| {
            for h in hops {
                r.scrub(&mut h.url);
                h.location.iter_mut().for_each(|l| r.scrub(l));
            }
        };
        match self {
            Details::None | Details::Cors(_) | Details::Latency(_) => {}
            Details::Http(d) => {
                r.scrub(&mut d.final_url);
                hops(&mut d.redirects);
            }
            Details::Redirect(d) => hops(&mut d.hops),
            Details::Tls(d) => d.redact(r),
            Details::Dns(d) => d.answers.iter_mut().for_each(|a| r.scrub(a)),
            Details::Tcp(d) => {
                d.banner.iter_mut().for_each(|b| r.scrub(b));
                d.tls.iter_mut().for_each(|t| t.redact(r));
            }
            Details::Grpc(d) => d.message.iter_mut().for_each(|m| r.scrub(m)),
            Details::WebSocket(d) => {
                d.message.iter_mut().for_each(|m| r.scrub(m));
                d.close_reason.iter_mut().for_each(|m| r.scrub(m));
            }
            Details::Headers(d) => r.scrub(&mut d.final_url),
            Details::Flow(d) => d.steps.iter_mut().for_each(|s| r.scrub(&mut s.name)),
        }
    }
}

impl TlsDetails {
    fn redact(&mut self, r: &Redactor) {
        r.scrub(&mut self.subject);
        r.scrub(&mut self.issuer);
        self.sans.iter_mut().for_each(|s| r.scrub(s));
    }
}

/// Unix seconds written as RFC 3339.
mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::units::rfc3339((*t).max(0) as u64))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp())
            .map_err(serde::de::Error::custom)
    }
}

/// [`rfc3339`] for an optional time.
mod optional_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| {
            time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                .map(|t| t.unix_timestamp())
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_details_write_times_as_rfc3339_and_read_them_back() {
        let d = Details::Tls(Box::new(TlsDetails {
            chain_not_after: None,
            cipher: "TLS13_AES_128_GCM_SHA256".into(),
            days_left: 89,
            issuer: "CN=ca".into(),
            key: "EC P-256 key".into(),
            not_after: 86_400,
            sans: vec!["localhost".into()],
            subject: "CN=localhost".into(),
            version: "TLSv1.3".into(),
        }));
        let v = d.json();
        assert_eq!(v["not_after"], "1970-01-02T00:00:00Z");
        assert!(v.get("chain_not_after").is_none());
        assert_eq!(Details::from_json(crate::outcome::Kind::Tls, &v), d);
        assert_eq!(Details::None.json(), serde_json::json!({}));
    }

    #[test]
    fn a_skipped_step_has_only_its_name_and_status() {
        let d = Details::Flow(FlowDetails {
            steps: vec![StepDetail {
                name: "me".into(),
                status: "skipped".into(),
                run: None,
            }],
        });
        assert_eq!(
            d.json(),
            serde_json::json!({"steps": [{"name": "me", "status": "skipped"}]})
        );
    }
}
