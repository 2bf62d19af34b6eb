//! Name resolution: `resolve` overrides first, then hickory-resolver.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

use super::NetError;

/// `HOST:PORT -> ADDR` pairs, like curl's `--resolve` (and, with a port, `--connect-to`): the
/// name is kept for SNI and Host.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    map: HashMap<String, SocketAddr>,
}

impl Overrides {
    /// `host:port` goes to `addr` on the same port.
    pub fn insert(&mut self, host: &str, port: u16, addr: IpAddr) {
        self.connect_to(host, port, SocketAddr::new(addr, port));
    }

    /// `host:port` goes to `to`, another address and maybe another port.
    pub fn connect_to(&mut self, host: &str, port: u16, to: SocketAddr) {
        self.map
            .insert(format!("{}:{port}", host.to_ascii_lowercase()), to);
    }

    /// Parses `HOST:PORT:ADDR` as given on the command line.
    pub(crate) fn parse_flag(&mut self, flag: &str) -> Result<(), NetError> {
        let mut parts = flag.splitn(3, ':');
        let (host, port, addr) = (parts.next(), parts.next(), parts.next());
        let bad = || {
            NetError::Setup(format!(
                "invalid --resolve \"{flag}\", expected HOST:PORT:ADDR"
            ))
        };
        let port: u16 = port.and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let addr = addr.map(|a| a.trim_matches(['[', ']'])).ok_or_else(bad)?;
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        self.insert(host.filter(|h| !h.is_empty()).ok_or_else(bad)?, port, addr);
        Ok(())
    }

    fn get(&self, host: &str, port: u16) -> Option<SocketAddr> {
        self.map
            .get(&format!("{}:{port}", host.to_ascii_lowercase()))
            .copied()
    }
}

/// Builds the resolver: the system's configuration, or the given name servers (tests use a loopback one).
pub(crate) fn build_resolver(nameservers: &[SocketAddr]) -> Result<TokioResolver, NetError> {
    let provider = TokioRuntimeProvider::default();
    let builder = if nameservers.is_empty() {
        TokioResolver::builder(provider).map_err(|e| {
            NetError::Setup(format!("cannot read the system DNS configuration: {e}"))
        })?
    } else {
        let servers = nameservers
            .iter()
            .map(|s| {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                NameServerConfig::new(s.ip(), true, vec![udp])
            })
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_parts(None, vec![], servers),
            provider,
        )
    };
    builder
        .build()
        .map_err(|e| NetError::Setup(format!("cannot start the DNS resolver: {e}")))
}

/// The name servers to ask directly: the given ones, or the system configuration's.
pub(crate) fn nameservers(given: &[SocketAddr]) -> Result<Vec<SocketAddr>, NetError> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let (config, _) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| NetError::Setup(format!("cannot read the system DNS configuration: {e}")))?;
    let mut out: Vec<SocketAddr> = Vec::new();
    for ns in config.name_servers() {
        let port = ns.connections.first().map_or(53, |c| c.port);
        let addr = SocketAddr::new(ns.ip, port);
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    Ok(out)
}

/// The addresses to try for `host:port`. IP literals and `localhost` never touch DNS.
pub async fn resolve(
    resolver: Result<&TokioResolver, NetError>,
    host: &str,
    port: u16,
    overrides: &Overrides,
) -> Result<Vec<SocketAddr>, NetError> {
    if let Some(addr) = overrides.get(host, port) {
        return Ok(vec![addr]);
    }
    lookup(resolver, host, port).await
}

/// The addresses DNS (or the name itself) gives for `host:port`.
async fn lookup(
    resolver: Result<&TokioResolver, NetError>,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, NetError> {
    let at = |ips: Vec<IpAddr>| {
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect()
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(at(vec![ip]));
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(at(vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]));
    }
    let resolver =
        resolver.map_err(|e| NetError::Dns(format!("cannot resolve \"{host}\": {e}")))?;
    let lookup = resolver.lookup_ip(format!("{host}.")).await.map_err(|e| {
        let why = if e.is_nx_domain() {
            "no such domain (NXDOMAIN)".to_string()
        } else if e.is_no_records_found() {
            "no address records".to_string()
        } else {
            e.to_string()
        };
        NetError::Dns(format!("cannot resolve \"{host}\": {why}"))
    })?;
    let addrs: Vec<IpAddr> = lookup.iter().collect();
    if addrs.is_empty() {
        return Err(NetError::Dns(format!(
            "cannot resolve \"{host}\": no address records"
        )));
    }
    Ok(at(addrs))
}
