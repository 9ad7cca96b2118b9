//! Which addresses outbound requests may reach. Tools and webhooks take URLs from
//! configuration, OpenAPI documents and messages, so a URL is never trusted: loopback,
//! private, link-local (cloud metadata lives there), multicast and reserved addresses are
//! refused unless an operator allow-lists them, by network and optionally by port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

/// One allow-list entry: a network (a bare address is a /32 or /128) and, optionally, one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    pub net: IpNet,
    pub port: Option<u16>,
}

/// Outbound destinations: everything public, plus what the allow-list names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    allow: Vec<AllowRule>,
}

/// Why an address was refused, named for logs, audit and the LLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Loopback,
    Private,
    LinkLocal,
    /// 169.254.169.254 and the IPv6 metadata address: cloud credentials.
    Metadata,
    Multicast,
    Unspecified,
    /// Carrier-grade NAT, benchmarking, documentation, broadcast and future-use ranges.
    Reserved,
}

impl AddressClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link_local",
            Self::Metadata => "metadata",
            Self::Multicast => "multicast",
            Self::Unspecified => "unspecified",
            Self::Reserved => "reserved",
        }
    }
}

/// The class of a non-public address; `None` for a public one.
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            // ::ffff:a.b.c.d and the deprecated ::a.b.c.d reach the IPv4 address.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            classify_v6(v6)
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    let o = ip.octets();
    Some(if ip == Ipv4Addr::new(169, 254, 169, 254) {
        AddressClass::Metadata
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private() {
        AddressClass::Private
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if ip.is_unspecified() || o[0] == 0 {
        AddressClass::Unspecified
    } else if ip.is_broadcast()
        || ip.is_documentation()
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24
        || o[0] >= 240
    {
        AddressClass::Reserved
    } else {
        return None;
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    let s = ip.segments();
    Some(if s == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254] {
        AddressClass::Metadata
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if (s[0] & 0xfe00) == 0xfc00 {
        AddressClass::Private
    } else if (s[0] & 0xffc0) == 0xfe80 {
        AddressClass::LinkLocal
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if (s[0] == 0x2001 && s[1] == 0xdb8) || (s[0] == 0x64 && s[1] == 0xff9b) || s[0] == 0x100
    {
        // documentation, NAT64 (could reach private IPv4), discard-only
        AddressClass::Reserved
    } else {
        return None;
    })
}

impl OutboundPolicy {
    /// Parse an allow-list: comma-separated `10.0.0.0/8`, `127.0.0.1`, `127.0.0.1:8080`,
    /// `[::1]:9000` or `fd00::/8`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut allow = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            allow.push(parse_rule(entry).ok_or_else(|| {
                format!(
                    "outbound allow-list entry {entry:?} is not an address, network or address:port"
                )
            })?);
        }
        Ok(Self { allow })
    }

    pub fn rules(&self) -> &[AllowRule] {
        &self.allow
    }

    /// `Ok` when a request may connect to `addr`; else the class that refused it.
    pub fn check(&self, addr: SocketAddr) -> Result<(), AddressClass> {
        let ip = match addr.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let Some(class) = classify(ip) else {
            return Ok(());
        };
        let allowed = self
            .allow
            .iter()
            .any(|r| r.net.contains(&ip) && r.port.is_none_or(|p| p == addr.port()));
        if allowed { Ok(()) } else { Err(class) }
    }
}

fn parse_rule(entry: &str) -> Option<AllowRule> {
    if let Ok(net) = entry.parse::<IpNet>() {
        return Some(AllowRule { net, port: None });
    }
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(AllowRule {
            net: IpNet::from(ip),
            port: None,
        });
    }
    let sa: SocketAddr = entry.parse().ok()?;
    Some(AllowRule {
        net: IpNet::from(sa.ip()),
        port: Some(sa.port()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn refuses_every_internal_range_by_default() {
        let p = OutboundPolicy::default();
        for (addr, class) in [
            ("127.0.0.1:80", AddressClass::Loopback),
            ("10.1.2.3:80", AddressClass::Private),
            ("172.16.0.1:80", AddressClass::Private),
            ("192.168.1.1:80", AddressClass::Private),
            ("169.254.169.254:80", AddressClass::Metadata),
            ("169.254.1.1:80", AddressClass::LinkLocal),
            ("224.0.0.1:80", AddressClass::Multicast),
            ("0.0.0.0:80", AddressClass::Unspecified),
            ("100.64.0.1:80", AddressClass::Reserved),
            ("[::1]:80", AddressClass::Loopback),
            ("[::ffff:127.0.0.1]:80", AddressClass::Loopback),
            ("[::ffff:169.254.169.254]:80", AddressClass::Metadata),
            ("[fd00:ec2::254]:80", AddressClass::Metadata),
            ("[fc00::1]:80", AddressClass::Private),
            ("[fe80::1]:80", AddressClass::LinkLocal),
            ("[ff02::1]:80", AddressClass::Multicast),
        ] {
            assert_eq!(p.check(sa(addr)), Err(class), "{addr}");
        }
        assert_eq!(p.check(sa("93.184.215.14:443")), Ok(()));
        assert_eq!(p.check(sa("[2606:4700::1111]:443")), Ok(()));
    }

    #[test]
    fn allow_list_by_network_and_port() {
        let p = OutboundPolicy::parse("127.0.0.1:8080, 10.0.0.0/8,[::1]:9000").expect("parses");
        assert_eq!(p.check(sa("127.0.0.1:8080")), Ok(()));
        assert_eq!(p.check(sa("127.0.0.1:8081")), Err(AddressClass::Loopback));
        assert_eq!(p.check(sa("10.9.9.9:1")), Ok(()));
        assert_eq!(p.check(sa("[::1]:9000")), Ok(()));
        assert_eq!(
            p.check(sa("[::ffff:127.0.0.1]:8080")),
            Ok(()),
            "mapped form of an allowed address"
        );
        assert_eq!(
            p.check(sa("169.254.169.254:80")),
            Err(AddressClass::Metadata)
        );
        assert!(OutboundPolicy::parse("localhost").is_err());
        assert!(OutboundPolicy::parse("10.0.0.0/33").is_err());
    }

    proptest! {
        #[test]
        fn an_empty_policy_never_admits_an_internal_address(bits: u32, port: u16) {
            let ip = Ipv4Addr::from(bits);
            let p = OutboundPolicy::default();
            let v4 = p.check(SocketAddr::new(IpAddr::V4(ip), port));
            let mapped = p.check(SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), port));
            prop_assert_eq!(v4, mapped);
            if ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_multicast() {
                prop_assert!(v4.is_err());
            }
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,40}") {
            let _ = OutboundPolicy::parse(&s);
        }
    }
}
