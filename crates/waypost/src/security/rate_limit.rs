//! Rate limiting per route: who is counted (user id, else client IP), under which key, and the
//! `RateLimit` / `RateLimit-Policy` / `Retry-After` headers.
//!
//! The client IP is the socket's peer address. `X-Forwarded-For` is read only when that peer is a
//! trusted proxy, and then from the right: the first address that is not itself a trusted proxy
//! is the client. Anything a client writes further left is ignored, so spoofing the header from
//! an untrusted peer changes nothing. An IPv6 client is counted by its /64 network
//! ([`counted_address`]).

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Mutex,
};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{request::Parts, Extensions, HeaderMap, HeaderName, HeaderValue},
};
use ipnet::IpNet;

use crate::{config::ConfigError, security::Security, store::Decision, RateLimit};

/// The client's IP address as the framework counts it (peer address, or `X-Forwarded-For`
/// behind a trusted proxy), as an extractor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The client IP of a request from its peer address (`peer` when the app's server gave it, else
/// `ConnectInfo` in its extensions) and headers, behind the trusted proxies of `security` (none
/// without it).
pub(crate) fn request_client_ip(
    peer: Option<IpAddr>,
    extensions: &Extensions,
    headers: &HeaderMap,
    security: Option<&Security>,
) -> IpAddr {
    let peer = peer
        .or_else(|| {
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip())
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    match security {
        Some(security) => client_ip(peer, headers, &security.settings().trusted_proxies),
        None => peer,
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(crate::context::with_current(|context| {
            let connection = context.and_then(|context| context.connection.as_ref());
            request_client_ip(
                context.and_then(|context| context.peer),
                &parts.extensions,
                &parts.headers,
                connection.map(|connection| &*connection.security),
            )
        })))
    }
}

/// The client's address, honouring `X-Forwarded-For` only from `trusted` proxies.
///
/// Addresses are compared in their canonical form: over a dual-stack socket (`HOST=::`) an IPv4
/// proxy arrives as `::ffff:10.0.0.5`, which `10.0.0.0/8` must still cover, or every client
/// behind it would share the proxy's allowance (`trusted` is canonical too, as
/// [`parse_trusted_proxies`] makes it).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        let Some(ip) = forwarded_hop(hop) else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// The address of one `X-Forwarded-For` entry, canonical: a bare address, or one with a port
/// (`203.0.113.9:41234`, `[2001:db8::1]:443`) or in brackets, as some proxies write them.
fn forwarded_hop(hop: &str) -> Option<IpAddr> {
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|at| at.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse::<std::net::Ipv6Addr>().ok())
                .map(IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

/// The address a per-client limit counts for `ip`: an IPv4 address as it is (also when it comes
/// IPv4-mapped, over a dual-stack socket), an IPv6 address as its /64 network. A subscriber is
/// usually given a whole /64, so counting each address of it apart would hand out a fresh
/// allowance per address to anyone who rotates through them (django-ratelimit masks the same
/// way).
pub fn counted_address(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(ip) => {
            let network = u128::from(ip) & !(u128::MAX >> 64);
            IpAddr::V6(std::net::Ipv6Addr::from(network))
        }
        ipv4 => ipv4,
    }
}

/// Parses `TRUSTED_PROXIES`: IPs or CIDR ranges, comma-separated.
///
/// # Errors
/// An entry that is neither; the message names the variable.
pub fn parse_trusted_proxies(entries: &[String]) -> Result<Vec<IpNet>, ConfigError> {
    entries
        .iter()
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map(canonical_net)
                .map_err(|_| {
                    ConfigError::invalid(
                        "TRUSTED_PROXIES",
                        entry,
                        "expected IP addresses or CIDR ranges",
                    )
                })
        })
        .collect()
}

/// `net` as the canonical addresses [`client_ip`] compares with it: a range of IPv4-mapped IPv6
/// addresses (`::ffff:10.0.0.0/104`) as the IPv4 range it stands for (`10.0.0.0/8`).
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        _ => net,
    }
}

/// Parses a limit such as `300/60s`, `10/1m` or `5/s`.
///
/// # Errors
/// Anything else; the message names `variable`.
pub fn parse_rate_limit(variable: &str, raw: &str) -> Result<RateLimit, ConfigError> {
    let invalid =
        || ConfigError::invalid(variable, raw, "expected <requests>/<window>, like 300/60s");
    let (requests, window) = raw.trim().split_once('/').ok_or_else(invalid)?;
    let requests: u32 = requests.trim().parse().map_err(|_| invalid())?;
    let window = window.trim();
    let window = if window.starts_with(|c: char| c.is_ascii_digit()) {
        crate::config::parse_duration(window)
    } else {
        crate::config::parse_duration(&format!("1{window}"))
    }
    .ok_or_else(invalid)?;
    if requests == 0 || window.is_zero() {
        return Err(invalid());
    }
    Ok(RateLimit::new(requests, window))
}

/// `RateLimit-Policy` (IETF httpapi-ratelimit-headers).
pub(crate) const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` (IETF httpapi-ratelimit-headers).
pub(crate) const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The name of the app-wide policy, `RATE_LIMIT_DEFAULT`, in `RateLimit-Policy` and `RateLimit`.
pub(crate) const DEFAULT_POLICY_NAME: &str = "default";

/// A limit together with its name and its `RateLimit-Policy` value,
/// `"<name>";q=<requests>;w=<window s>`, rendered once rather than on every response.
///
/// The app-wide limit is named `default`; a route's own limit is named after the route's
/// pattern (`"/api/auth/login"`), so a client reading the headers knows which budget it spent.
#[derive(Debug)]
pub(crate) struct RatePolicy {
    pub(crate) limit: RateLimit,
    /// The policy's name as an RFC 8941 string, quotes included: `"default"`.
    quoted_name: &'static str,
    header: HeaderValue,
}

impl RatePolicy {
    /// The policy named `name` for `limit`, interned: each distinct pair is rendered (and kept
    /// for the life of the process) once — there are only as many as the app configures — so a
    /// request carries a plain reference to it, and its header value is over static bytes,
    /// cloned onto each response without a reference count.
    pub(crate) fn of(name: &str, limit: RateLimit) -> &'static RatePolicy {
        static INTERNED: Mutex<Vec<&'static RatePolicy>> = Mutex::new(Vec::new());
        let quoted_name = quoted_policy_name(name);
        let mut interned = INTERNED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(policy) = interned
            .iter()
            .find(|policy| policy.limit == limit && policy.quoted_name == quoted_name)
        {
            return policy;
        }
        let quoted_name: &'static str = Box::leak(quoted_name.into_boxed_str());
        let text: &'static str = Box::leak(
            format!(
                "{quoted_name};q={};w={}",
                limit.requests,
                limit.window.as_secs().max(1)
            )
            .into_boxed_str(),
        );
        let policy: &'static RatePolicy = Box::leak(Box::new(RatePolicy {
            limit,
            quoted_name,
            header: HeaderValue::from_static(text),
        }));
        interned.push(policy);
        policy
    }
}

/// `name` as an RFC 8941 sf-string: quoted, `"` and `\` escaped, and any byte a header value
/// cannot carry as such (controls, non-ASCII) replaced by `_`.
fn quoted_policy_name(name: &str) -> String {
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('"');
    for c in name.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            ' '..='~' => quoted.push(c),
            _ => quoted.push('_'),
        }
    }
    quoted.push('"');
    quoted
}

/// `duration` in whole seconds, rounded up: what `RateLimit`'s `t`, `Retry-After` and a quota's
/// reset are told in, so a client that waits that long finds the budget back.
pub(crate) fn whole_seconds_up(duration: std::time::Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// Sets `RateLimit-Policy` and `RateLimit`: `"<name>";r=<remaining>;t=<seconds to full>`.
///
/// This runs on every response of a limited route: the policy is a prepared value and the state
/// is written with `itoa` into a buffer of the exact size, which becomes the header value
/// without a copy.
pub(crate) fn set_headers(headers: &mut HeaderMap, policy: &RatePolicy, decision: &Decision) {
    let reset = whole_seconds_up(decision.reset_after);
    let mut remaining = itoa::Buffer::new();
    let remaining = remaining.format(decision.remaining).as_bytes();
    let mut reset_text = itoa::Buffer::new();
    let reset_text = reset_text.format(reset).as_bytes();
    let name = policy.quoted_name.as_bytes();
    let mut state = Vec::with_capacity(name.len() + 3 + remaining.len() + 3 + reset_text.len());
    state.extend_from_slice(name);
    state.extend_from_slice(b";r=");
    state.extend_from_slice(remaining);
    state.extend_from_slice(b";t=");
    state.extend_from_slice(reset_text);
    if let Ok(state) = HeaderValue::from_maybe_shared(bytes::Bytes::from(state)) {
        headers.insert(RATELIMIT_POLICY, policy.header.clone());
        headers.insert(RATELIMIT, state);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(xff).unwrap());
        headers
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_network_and_ipv4_ones_as_they_are() {
        let counted = |ip: &str| counted_address(ip.parse().unwrap()).to_string();
        assert_eq!(
            counted("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
            "2001:db8:1:2::"
        );
        assert_eq!(counted("2001:db8:1:2::1"), counted("2001:db8:1:2:ffff::9"));
        assert_ne!(counted("2001:db8:1:2::1"), counted("2001:db8:1:3::1"));
        assert_eq!(counted("::1"), "::");
        assert_eq!(counted("203.0.113.9"), "203.0.113.9");
        assert_eq!(counted("::ffff:203.0.113.9"), "203.0.113.9");
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(peer, &headers("1.2.3.4"), &[]), peer);
        let trusted = parse_trusted_proxies(&["10.0.0.0/8".into()]).unwrap();
        assert_eq!(client_ip(peer, &headers("1.2.3.4"), &trusted), peer);
    }

    #[test]
    fn forwarded_for_is_read_from_the_right_behind_trusted_proxies() {
        let trusted = parse_trusted_proxies(&["10.0.0.0/8".into(), "127.0.0.1".into()]).unwrap();
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let ip = client_ip(peer, &headers("6.6.6.6, 1.2.3.4, 10.0.0.5"), &trusted);
        assert_eq!(ip, "1.2.3.4".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(peer, &HeaderMap::new(), &trusted), peer);
    }

    #[test]
    fn an_ipv4_proxy_on_a_dual_stack_socket_is_still_trusted() {
        let trusted = parse_trusted_proxies(&["10.0.0.0/8".into()]).unwrap();
        let mapped_peer: IpAddr = "::ffff:10.0.0.5".parse().unwrap();
        let client = client_ip(mapped_peer, &headers("198.51.100.7"), &trusted);
        assert_eq!(client, "198.51.100.7".parse::<IpAddr>().unwrap());
        // A mapped hop is the same client as its IPv4 form; an untrusted mapped peer is
        // answered in its canonical form too.
        let client = client_ip(mapped_peer, &headers("::ffff:198.51.100.7"), &trusted);
        assert_eq!(client, "198.51.100.7".parse::<IpAddr>().unwrap());
        // A list written in the mapped form still covers the proxy: it is read as IPv4.
        let mapped_list = parse_trusted_proxies(&["::ffff:10.0.0.0/104".into()]).unwrap();
        assert_eq!(
            mapped_list,
            parse_trusted_proxies(&["10.0.0.0/8".into()]).unwrap()
        );
        let client = client_ip(mapped_peer, &headers("198.51.100.7"), &mapped_list);
        assert_eq!(client, "198.51.100.7".parse::<IpAddr>().unwrap());
        let stranger: IpAddr = "::ffff:203.0.113.9".parse().unwrap();
        assert_eq!(
            client_ip(stranger, &headers("1.2.3.4"), &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn forwarded_hops_with_ports_or_brackets_are_read() {
        let trusted = parse_trusted_proxies(&["10.0.0.0/8".into()]).unwrap();
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        for (hop, client) in [
            ("198.51.100.7:41234", "198.51.100.7"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
        ] {
            let ip = client_ip(peer, &headers(&format!("{hop}, 10.0.0.9")), &trusted);
            assert_eq!(ip, client.parse::<IpAddr>().unwrap(), "{hop}");
        }
        // An entry that is no address stops the walk at the last proxy read.
        let ip = client_ip(peer, &headers("198.51.100.7, unknown, 10.0.0.9"), &trusted);
        assert_eq!(ip, "10.0.0.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn policy_names_are_quoted_strings_a_header_can_carry() {
        assert_eq!(quoted_policy_name("default"), "\"default\"");
        assert_eq!(quoted_policy_name("/api/posts/{id}"), "\"/api/posts/{id}\"");
        assert_eq!(quoted_policy_name("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quoted_policy_name("/api/caf\u{e9}\n"), "\"/api/caf__\"");
    }

    #[test]
    fn a_policy_is_rendered_once_per_name_and_limit() {
        let limit = RateLimit::new(7, Duration::from_secs(30));
        let login = RatePolicy::of("/api/auth/login", limit);
        assert!(std::ptr::eq(
            login,
            RatePolicy::of("/api/auth/login", limit)
        ));
        assert_eq!(login.header, "\"/api/auth/login\";q=7;w=30");
        let other = RatePolicy::of("/api/generate", limit);
        assert!(!std::ptr::eq(login, other));
        let mut headers = HeaderMap::new();
        let decision = Decision {
            allowed: true,
            remaining: 6,
            reset_after: Duration::from_millis(29_001),
            retry_after: Duration::ZERO,
        };
        set_headers(&mut headers, other, &decision);
        assert_eq!(headers[RATELIMIT_POLICY], "\"/api/generate\";q=7;w=30");
        assert_eq!(headers[RATELIMIT], "\"/api/generate\";r=6;t=30");
    }

    #[test]
    fn limits_parse() {
        assert_eq!(
            parse_rate_limit("X", "300/60s").unwrap(),
            RateLimit::new(300, Duration::from_secs(60))
        );
        assert_eq!(
            parse_rate_limit("X", "10/m").unwrap(),
            RateLimit::new(10, Duration::from_secs(60))
        );
        for bad in ["", "300", "0/60s", "x/60s", "10/0s", "10/fortnight"] {
            assert!(parse_rate_limit("X", bad).is_err(), "{bad}");
        }
    }
}
