//! The SSRF guard of custom HTTP tools: resolve the host, refuse addresses in loopback, private,
//! link-local, carrier-grade NAT, multicast, reserved and cloud-metadata ranges (IPv4 and IPv6,
//! IPv4-mapped included) unless an allowlist entry matches, and make the HTTP client connect only to
//! addresses that passed the check (its DNS resolver is the guard), so there is no rebinding window.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use url::{Host, Url};

/// Resolves host names (the system resolver in production, a table in tests).
#[async_trait]
pub trait Resolver: Send + Sync + 'static {
    /// The addresses of `host`.
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// The operating system's resolver (`getaddrinfo` on a blocking thread).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// Why a target was refused. The message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SsrfError {
    /// The URL's scheme is not http or https.
    #[error("scheme '{0}' is not allowed (only http and https)")]
    Scheme(String),
    /// The URL has no host.
    #[error("the URL has no host")]
    NoHost,
    /// An address is in a refused range.
    #[error("address {address} is in {rule} ({range}){via}")]
    Refused {
        /// The address.
        address: IpAddr,
        /// The rule (`a private range`).
        rule: &'static str,
        /// The range (`10.0.0.0/8`).
        range: &'static str,
        /// ` (host x resolves to it)` or empty.
        via: String,
    },
    /// The host does not resolve.
    #[error("host '{host}' does not resolve: {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
}

struct Rule {
    net: IpAddr,
    prefix: u8,
    range: &'static str,
    rule: &'static str,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8, range: &'static str, rule: &'static str) -> Rule {
    Rule { net: IpAddr::V4(Ipv4Addr::new(a, b, c, d)), prefix, range, rule }
}

#[allow(clippy::too_many_arguments)]
const fn v6(segs: [u16; 8], prefix: u8, range: &'static str, rule: &'static str) -> Rule {
    Rule {
        net: IpAddr::V6(Ipv6Addr::new(
            segs[0], segs[1], segs[2], segs[3], segs[4], segs[5], segs[6], segs[7],
        )),
        prefix,
        range,
        rule,
    }
}

/// The refused ranges, most specific first (the metadata addresses before their enclosing ranges).
const RULES: &[Rule] = &[
    v4(169, 254, 169, 254, 32, "169.254.169.254/32", "the cloud metadata address"),
    v4(0, 0, 0, 0, 8, "0.0.0.0/8", "the unspecified (\"this network\") range"),
    v4(10, 0, 0, 0, 8, "10.0.0.0/8", "a private range"),
    v4(100, 64, 0, 0, 10, "100.64.0.0/10", "the carrier-grade NAT range"),
    v4(127, 0, 0, 0, 8, "127.0.0.0/8", "the loopback range"),
    v4(169, 254, 0, 0, 16, "169.254.0.0/16", "the link-local range"),
    v4(172, 16, 0, 0, 12, "172.16.0.0/12", "a private range"),
    v4(192, 0, 0, 0, 24, "192.0.0.0/24", "the IETF protocol assignments range"),
    v4(192, 0, 2, 0, 24, "192.0.2.0/24", "a documentation range"),
    v4(192, 88, 99, 0, 24, "192.88.99.0/24", "the 6to4 relay range"),
    v4(192, 168, 0, 0, 16, "192.168.0.0/16", "a private range"),
    v4(198, 18, 0, 0, 15, "198.18.0.0/15", "the benchmarking range"),
    v4(198, 51, 100, 0, 24, "198.51.100.0/24", "a documentation range"),
    v4(203, 0, 113, 0, 24, "203.0.113.0/24", "a documentation range"),
    v4(224, 0, 0, 0, 4, "224.0.0.0/4", "the multicast range"),
    v4(240, 0, 0, 0, 4, "240.0.0.0/4", "the reserved range (broadcast included)"),
    v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128, "fd00:ec2::254/128", "the cloud metadata address"),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, "::/128", "the unspecified address"),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "::1/128", "the loopback range"),
    v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, "::ffff:0:0/96", "the IPv4-mapped range"),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 96, "::/96", "the IPv4-compatible range"),
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, "64:ff9b::/96", "the NAT64 range"),
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, "64:ff9b:1::/48", "the local NAT64 range"),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "100::/64", "the discard range"),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, "2001::/32", "the Teredo range"),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, "2001:db8::/32", "a documentation range"),
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, "2002::/16", "the 6to4 range"),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "fc00::/7", "the unique local (private) range"),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "fe80::/10", "the link-local range"),
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "fec0::/10", "the site-local range"),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "ff00::/8", "the multicast range"),
];

fn in_net(addr: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix.min(32))) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix.min(128))) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The rule refusing `address`, if any: `(rule, range)`.
pub fn refused_by(address: IpAddr) -> Option<(&'static str, &'static str)> {
    RULES.iter().find(|r| in_net(address, r.net, r.prefix)).map(|r| (r.rule, r.range))
}

/// Exceptions to the guard (`CUSTOM_HTTP_ALLOWLIST`): host names (exact, or `*.example.com`) and
/// addresses or CIDR ranges, comma-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    hosts: Vec<String>,
    nets: Vec<(IpAddr, u8)>,
}

impl Allowlist {
    /// Parse a comma-separated list; an entry that is neither a host name nor an address/CIDR is
    /// an error naming it.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut list = Allowlist::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            list.add(entry)?;
        }
        Ok(list)
    }

    /// Add one entry.
    pub fn add(&mut self, entry: &str) -> Result<(), String> {
        let (addr, prefix) = match entry.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (entry, None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = addr.parse::<IpAddr>() {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let prefix =
                match prefix {
                    Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
                        format!("allowlist entry '{entry}': the prefix length must be 0-{max}")
                    })?,
                    None => max,
                };
            self.nets.push((ip, prefix));
            return Ok(());
        }
        let host = entry.to_ascii_lowercase();
        let valid = prefix.is_none()
            && !host.is_empty()
            && host
                .trim_start_matches("*.")
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !valid {
            return Err(format!(
                "allowlist entry '{entry}' is neither a host name nor an address or CIDR range"
            ));
        }
        self.hosts.push(host);
        Ok(())
    }

    fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|h| match h.strip_prefix("*.") {
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => *h == host,
        })
    }

    fn allows_addr(&self, addr: IpAddr) -> bool {
        self.nets.iter().any(|(net, prefix)| in_net(addr, *net, *prefix))
    }
}

/// The guard: an allowlist and a resolver.
#[derive(Clone)]
pub struct SsrfGuard {
    allowlist: Allowlist,
    resolver: Arc<dyn Resolver>,
}

impl std::fmt::Debug for SsrfGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsrfGuard").field("allowlist", &self.allowlist).finish_non_exhaustive()
    }
}

impl SsrfGuard {
    /// A guard with the system resolver.
    pub fn new(allowlist: Allowlist) -> Self {
        Self { allowlist, resolver: Arc::new(SystemResolver) }
    }

    /// Use another resolver (tests).
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Check one address.
    pub fn check_addr(&self, address: IpAddr, via: Option<&str>) -> Result<(), SsrfError> {
        if self.allowlist.allows_addr(address) {
            return Ok(());
        }
        match refused_by(address) {
            Some((rule, range)) => Err(SsrfError::Refused {
                address,
                rule,
                range,
                via: via.map(|h| format!(" (host '{h}' resolves to it)")).unwrap_or_default(),
            }),
            None => Ok(()),
        }
    }

    /// Check a URL: scheme, then every address its host resolves to. Returns the checked
    /// addresses (the only ones the client may connect to).
    pub async fn check_url(&self, url: &Url) -> Result<Vec<SocketAddr>, SsrfError> {
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(SsrfError::Scheme(url.scheme().to_owned()));
        }
        let port = url.port_or_known_default().unwrap_or(80);
        match url.host() {
            None => Err(SsrfError::NoHost),
            Some(Host::Ipv4(ip)) => {
                self.check_addr(IpAddr::V4(ip), None)?;
                Ok(vec![SocketAddr::new(IpAddr::V4(ip), port)])
            }
            Some(Host::Ipv6(ip)) => {
                self.check_addr(IpAddr::V6(ip), None)?;
                Ok(vec![SocketAddr::new(IpAddr::V6(ip), port)])
            }
            Some(Host::Domain(host)) => self.resolve_checked(host, port).await,
        }
    }

    /// Resolve `host` and check every address (an allowlisted host name skips the address check).
    pub async fn resolve_checked(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, SsrfError> {
        let addrs = self
            .resolver
            .resolve(host, port)
            .await
            .map_err(|e| SsrfError::Resolve { host: host.to_owned(), reason: e.to_string() })?;
        if addrs.is_empty() {
            return Err(SsrfError::Resolve { host: host.to_owned(), reason: "no addresses".into() });
        }
        if !self.allowlist.allows_host(host) {
            for addr in &addrs {
                self.check_addr(addr.ip(), Some(host))?;
            }
        }
        Ok(addrs)
    }
}

/// The guard as reqwest's DNS resolver: the client can only connect to checked addresses.
#[derive(Debug, Clone)]
pub(crate) struct GuardedDns(pub(crate) SsrfGuard);

impl reqwest::dns::Resolve for GuardedDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = guard.resolve_checked(&host, 0).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct TableResolver(HashMap<&'static str, Vec<IpAddr>>);

    #[async_trait]
    impl Resolver for TableResolver {
        async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
            self.0
                .get(host)
                .map(|ips| ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect())
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "unknown host"))
        }
    }

    fn guard(allow: &str) -> SsrfGuard {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let table = HashMap::from([
            ("metadata.google.internal", vec![ip("169.254.169.254")]),
            ("internal.corp.example", vec![ip("10.1.2.3")]),
            ("mixed.example", vec![ip("93.184.215.14"), ip("192.168.1.1")]),
            ("localhost", vec![ip("127.0.0.1"), ip("::1")]),
            ("localhost.", vec![ip("127.0.0.1")]),
            ("v6private.example", vec![ip("fd12:3456::1")]),
            ("public.example", vec![ip("93.184.215.14")]),
            ("rebind.example", vec![ip("127.0.0.2")]),
        ]);
        SsrfGuard::new(Allowlist::parse(allow).expect("allowlist"))
            .with_resolver(Arc::new(TableResolver(table)))
    }

    async fn check(g: &SsrfGuard, url: &str) -> Result<Vec<SocketAddr>, String> {
        let parsed = Url::parse(url).map_err(|e| format!("unparseable: {e}"))?;
        g.check_url(&parsed).await.map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn refuses_the_table() {
        let g = guard("");
        let refused: &[(&str, &str)] = &[
            ("http://127.0.0.1/", "loopback"),
            ("http://127.1/", "loopback"),
            ("http://2130706433/", "loopback"),
            ("http://0x7f000001/", "loopback"),
            ("http://0x7f.0.0.1/", "loopback"),
            ("http://0177.0.0.1/", "loopback"),
            ("http://017700000001/", "loopback"),
            ("http://127.000.000.001/", "loopback"),
            ("http://0.0.0.0/", "unspecified"),
            ("http://0/", "unspecified"),
            ("http://[::1]/", "loopback"),
            ("http://[::]/", "unspecified"),
            ("http://[::ffff:127.0.0.1]/", "IPv4-mapped"),
            ("http://[::ffff:7f00:1]/", "IPv4-mapped"),
            ("http://[::ffff:169.254.169.254]/", "IPv4-mapped"),
            ("http://[::127.0.0.1]/", "IPv4-compatible"),
            ("http://[64:ff9b::a00:1]/", "NAT64"),
            ("http://[fc00::1]/", "unique local"),
            ("http://[fd12:3456::1]/", "unique local"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[ff02::1]/", "multicast"),
            ("http://[fd00:ec2::254]/", "cloud metadata"),
            ("http://[2002:7f00:1::]/", "6to4"),
            ("http://10.0.0.1/", "private range (10.0.0.0/8)"),
            ("http://172.16.5.4/", "private range (172.16.0.0/12)"),
            ("http://172.31.255.255/", "private"),
            ("http://192.168.0.10:8080/", "private range (192.168.0.0/16)"),
            ("http://100.64.0.1/", "carrier-grade NAT"),
            ("http://100.127.255.254/", "carrier-grade NAT"),
            ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
            ("http://169.254.1.1/", "link-local"),
            ("http://224.0.0.1/", "multicast"),
            ("http://255.255.255.255/", "reserved"),
            ("http://198.18.0.1/", "benchmarking"),
            ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata"),
            ("http://internal.corp.example/", "private"),
            ("http://mixed.example/", "private"),
            ("http://localhost:8080/", "loopback"),
            ("http://LOCALHOST./", "loopback"),
            ("http://v6private.example/", "unique local"),
            ("http://user:pass@127.0.0.1/", "loopback"),
            ("http://public.example@127.0.0.1/", "loopback"),
            ("file:///etc/passwd", "scheme 'file'"),
            ("gopher://127.0.0.1:70/_x", "scheme 'gopher'"),
            ("ftp://public.example/", "scheme 'ftp'"),
            ("http://nosuch.example/", "does not resolve"),
        ];
        assert!(refused.len() >= 30);
        for (url, expected) in refused {
            match check(&g, url).await {
                Ok(addrs) => panic!("{url} was allowed ({addrs:?})"),
                Err(message) => assert!(message.contains(expected), "{url}: '{message}' lacks '{expected}'"),
            }
        }
        let msg = check(&g, "http://10.0.0.1/").await.expect_err("refused");
        assert_eq!(msg, "address 10.0.0.1 is in a private range (10.0.0.0/8)");
        let msg = check(&g, "http://metadata.google.internal/").await.expect_err("refused");
        assert!(msg.contains("host 'metadata.google.internal' resolves to it"), "{msg}");
    }

    #[tokio::test]
    async fn allows_public_and_allowlisted_targets() {
        let g = guard("");
        assert!(check(&g, "https://public.example/x").await.is_ok());
        assert!(check(&g, "http://93.184.215.14/").await.is_ok());
        assert!(check(&g, "http://[2606:4700::1111]/").await.is_ok());
        let g = guard("127.0.0.1, 10.0.0.0/8, internal.corp.example");
        assert!(check(&g, "http://127.0.0.1:9/").await.is_ok());
        assert!(check(&g, "http://10.9.9.9/").await.is_ok());
        assert!(check(&g, "http://internal.corp.example/").await.is_ok());
        assert!(check(&g, "http://127.0.0.2/").await.is_err());
        assert!(check(&g, "http://rebind.example/").await.is_err());
        assert!(check(&g, "http://[::1]/").await.is_err());
        let g = guard("*.corp.example");
        assert!(check(&g, "http://internal.corp.example/").await.is_ok());
        assert!(Allowlist::parse("10.0.0.0/33").is_err());
        assert!(Allowlist::parse("not a host!").is_err());
    }
}
