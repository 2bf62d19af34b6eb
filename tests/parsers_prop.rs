//! Property tests: nothing a server sends (or a user writes) may panic a parser.

use proptest::prelude::*;
use shipwatch::assert::{Assertion, Context};
use shipwatch::net::legacy::{self, Answer, Version};
use shipwatch::security::{cookies, csp, hsts, permissions};

/// Strings built from the characters these grammars care about, so the parsers' edges get hit.
fn header_like() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9 ;,=:'\"*/()._-]{0,120}").expect("regex")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn csp_never_panics(a in header_like(), b in any::<String>()) {
        for v in [&a, &b] {
            if let Ok(p) = csp::Policy::parse(&[v.as_str()]) {
                let _ = (p.script_src(), p.style_src(), p.object_src(), p.active_sources(), p.passive_sources(), p.frame_ancestors());
            }
        }
        let _ = csp::Policy::parse(&[a.as_str(), b.as_str()]);
    }

    #[test]
    fn hsts_never_panics_and_keeps_numbers(s in header_like(), n in any::<u64>()) {
        let _ = hsts::parse(&s);
        let parsed = hsts::parse(&format!("max-age={n}; includeSubDomains"));
        prop_assert_eq!(parsed.map(|h| h.max_age), Ok(n));
    }

    #[test]
    fn cookies_and_permissions_never_panic(s in header_like(), t in any::<String>()) {
        let _ = cookies::parse(&s).map(|c| (c.is_session_like(), c.same_site_problem()));
        let _ = cookies::parse(&t);
        let _ = permissions::parse(&s);
        let _ = permissions::parse(&t);
    }

    #[test]
    fn raw_tls_records_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), v in 0x0300u16..0x0305) {
        let _ = legacy::parse_answer(Version(v), &bytes);
        // A record that claims to be a handshake, followed by noise.
        let mut rec = vec![22, 3, 1, 0, 40];
        rec.extend_from_slice(&bytes);
        let _ = legacy::parse_answer(Version(v), &rec);
    }

    #[test]
    fn server_hello_versions_are_read_back(v in 0x0300u16..0x0305, asked in 0x0300u16..0x0303) {
        let mut rec = vec![22, 3, 1, 0, 42, 2, 0, 0, 38];
        rec.extend_from_slice(&v.to_be_bytes());
        rec.extend_from_slice(&[0u8; 32]);
        let want = match v.cmp(&asked) {
            std::cmp::Ordering::Equal => Answer::Accepted,
            std::cmp::Ordering::Less => Answer::Lower(Version(v)),
            std::cmp::Ordering::Greater => Answer::Higher(Version(v)),
        };
        prop_assert_eq!(legacy::parse_answer(Version(asked), &rec), want);
    }

    #[test]
    fn client_hello_length_fields_agree(name in "[a-z0-9.-]{0,60}", v in 0x0300u16..0x0303) {
        let h = legacy::client_hello(Version(v), &name);
        prop_assert_eq!(u16::from_be_bytes([h[3], h[4]]) as usize, h.len() - 5);
        let hs_len = u32::from_be_bytes([0, h[6], h[7], h[8]]) as usize;
        prop_assert_eq!(hs_len, h.len() - 9);
    }

    #[test]
    fn html_assertions_and_durations_never_panic(s in any::<String>(), t in "[a-z$.\\[\\]@?=<>!\" 0-9%]{0,60}") {
        let _ = shipwatch::html::tags(&s);
        let _ = Assertion::parse(&s, Context::Response);
        let _ = Assertion::parse(&t, Context::Latency);
        let _ = shipwatch::config::parse_duration(&t);
    }
}
