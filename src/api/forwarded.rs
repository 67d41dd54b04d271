//! Who the client really is behind a reverse proxy: `Forwarded` (RFC 7239) or
//! `X-Forwarded-For`/`-Proto`/`-Host`, believed only from a peer in the trusted-proxy
//! list. The chain of addresses is read from the right (the nearest hop) and every
//! trusted proxy skipped, so a client cannot put a fake address in front of the real one.

use axum::http::{header, HeaderMap};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The client of a request as the server should see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The client's address (the peer's, unless a trusted proxy said otherwise).
    pub ip: Option<IpAddr>,
    /// The client reached the server (or its proxy) over HTTPS.
    pub https: bool,
    /// The host name the client asked for.
    pub host: Option<String>,
}

impl Client {
    pub fn address(&self) -> String {
        self.ip.map(|i| i.to_string()).unwrap_or_default()
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|n| n.contains(&ip))
}

/// A host as a URL may carry it, else nothing (header junk stays out of logs and URLs).
fn clean_host(h: &str) -> Option<String> {
    let h = h.trim();
    let ok = !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'));
    ok.then(|| h.to_ascii_lowercase())
}

/// A node of `for=`: `192.0.2.1`, `"192.0.2.1:80"`, `"[2001:db8::1]:4711"`; `unknown`
/// and obfuscated names are not addresses.
fn parse_node(v: &str) -> Option<IpAddr> {
    let v = v.trim().trim_matches('"');
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = v.parse::<SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    let inner = v.strip_prefix('[').and_then(|r| r.split(']').next())?;
    inner.parse::<IpAddr>().ok().map(canonical)
}

#[derive(Default, Debug)]
struct Element {
    for_: Option<String>,
    proto: Option<String>,
    host: Option<String>,
}

/// The elements of every `Forwarded` header, in order (quoted commas respected).
fn forwarded_elements(headers: &HeaderMap) -> Vec<Element> {
    let mut out = Vec::new();
    for value in headers.get_all(header::FORWARDED) {
        let Ok(text) = value.to_str() else { continue };
        for element in split_outside_quotes(text, ',') {
            let mut e = Element::default();
            for pair in split_outside_quotes(&element, ';') {
                let Some((k, v)) = pair.split_once('=') else { continue };
                let v = v.trim().trim_matches('"').to_string();
                match k.trim().to_ascii_lowercase().as_str() {
                    "for" => e.for_ = Some(v),
                    "proto" => e.proto = Some(v.to_ascii_lowercase()),
                    "host" => e.host = Some(v),
                    _ => {}
                }
            }
            out.push(e);
        }
    }
    out
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<String> {
    let (mut parts, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in s.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if c == sep && !quoted {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// The rightmost hop that is not a trusted proxy (or the leftmost, when all are).
fn client_hop<T>(hops: &[T], ip_of: impl Fn(&T) -> Option<IpAddr>, trusted: &[IpNet]) -> Option<usize> {
    let mut i = hops.len().checked_sub(1)?;
    while i > 0 && ip_of(&hops[i]).is_some_and(|ip| is_trusted(ip, trusted)) {
        i -= 1;
    }
    Some(i)
}

fn first_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?;
    v.split(',')
        .next()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The client of a request that came from `peer` (`direct_tls`: over this server's own
/// TLS listener).
pub fn client(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[IpNet], direct_tls: bool) -> Client {
    let peer_ip = peer.map(|p| canonical(p.ip()));
    let direct = Client {
        ip: peer_ip,
        https: direct_tls,
        host: headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(clean_host),
    };
    if !peer_ip.is_some_and(|ip| is_trusted(ip, trusted)) {
        return direct;
    }
    let elements = forwarded_elements(headers);
    if !elements.is_empty() {
        let Some(i) = client_hop(&elements, |e| e.for_.as_deref().and_then(parse_node), trusted) else {
            return direct;
        };
        let e = &elements[i];
        return Client {
            ip: e.for_.as_deref().and_then(parse_node).or(direct.ip),
            https: e.proto.as_deref().map(|p| p == "https").unwrap_or(direct.https),
            host: e.host.as_deref().and_then(clean_host).or(direct.host),
        };
    }
    let chain: Vec<String> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let ip = client_hop(&chain, |s| parse_node(s), trusted)
        .and_then(|i| parse_node(&chain[i]))
        .or(direct.ip);
    Client {
        ip,
        https: first_value(headers, "x-forwarded-proto")
            .map(|p| p.eq_ignore_ascii_case("https"))
            .unwrap_or(direct.https),
        host: first_value(headers, "x-forwarded-host")
            .and_then(|h| clean_host(&h))
            .or(direct.host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter()
            .map(|s| crate::config::parse_trusted_proxy(s).unwrap())
            .collect()
    }

    const PROXY: &str = "10.0.0.5:4000";

    #[test]
    fn untrusted_peers_cannot_spoof() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=198.51.100.1;proto=https"),
            ("host", "direct.example"),
        ]);
        let c = client(
            Some("192.0.2.7:5000".parse().unwrap()),
            &h,
            &nets(&["10.0.0.0/8"]),
            false,
        );
        assert_eq!(c.ip, Some("192.0.2.7".parse().unwrap()));
        assert!(!c.https);
        assert_eq!(c.host.as_deref(), Some("direct.example"));
    }

    #[test]
    fn x_forwarded_chain_skips_trusted_hops_from_the_right() {
        // The client prepended a fake address; the real one is the rightmost untrusted.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "Media.Example.com"),
        ]);
        let c = client(Some(PROXY.parse().unwrap()), &h, &nets(&["10.0.0.0/8"]), false);
        assert_eq!(c.ip, Some("203.0.113.9".parse().unwrap()));
        assert!(c.https);
        assert_eq!(c.host.as_deref(), Some("media.example.com"));
    }

    #[test]
    fn forwarded_header_wins_and_understands_quotes_and_ports() {
        let h = headers(&[
            (
                "forwarded",
                r#"for="[2001:db8::17]:4711";proto=https;host=a.example, for=10.1.2.3"#,
            ),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        let c = client(Some(PROXY.parse().unwrap()), &h, &nets(&["10.0.0.0/8"]), false);
        assert_eq!(c.ip, Some("2001:db8::17".parse().unwrap()));
        assert!(c.https);
        assert_eq!(c.host.as_deref(), Some("a.example"));
        let h = headers(&[("forwarded", r#"for="192.0.2.60:8080";proto=http"#)]);
        let c = client(Some(PROXY.parse().unwrap()), &h, &nets(&["10.0.0.5"]), true);
        assert_eq!(c.ip, Some("192.0.2.60".parse().unwrap()));
        assert!(!c.https);
    }

    #[test]
    fn unknown_nodes_and_junk_fall_back_to_the_peer() {
        let h = headers(&[("forwarded", "for=unknown"), ("x-forwarded-host", "evil.example/x")]);
        let c = client(Some(PROXY.parse().unwrap()), &h, &nets(&["10.0.0.0/8"]), true);
        assert_eq!(c.ip, Some("10.0.0.5".parse().unwrap()));
        assert!(c.https, "no proto given: the connection's own");
        let h = headers(&[("x-forwarded-for", "not-an-ip"), ("x-forwarded-host", "bad host")]);
        let c = client(Some(PROXY.parse().unwrap()), &h, &nets(&["10.0.0.0/8"]), false);
        assert_eq!(c.ip, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(c.host, None);
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_ranges() {
        let h = headers(&[("x-forwarded-for", "203.0.113.1")]);
        let c = client(
            Some("[::ffff:127.0.0.1]:80".parse().unwrap()),
            &h,
            &nets(&["127.0.0.1"]),
            false,
        );
        assert_eq!(c.ip, Some("203.0.113.1".parse().unwrap()));
    }
}
