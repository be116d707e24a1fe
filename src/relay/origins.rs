//! Which origin an edge pulls a stream from: rendezvous (highest random
//! weight) hashing of the stream name over the origin list, so every edge
//! with the same list picks the same origin for a stream without talking
//! to the others, and the rest of the order is the failover order. Adding
//! or removing an origin moves only the streams that hashed to it.

use crate::protocol::url::RtmpUrl;

/// The origins to try for `stream`, best first.
pub fn order<'a>(stream: &str, origins: &'a [RtmpUrl]) -> Vec<&'a RtmpUrl> {
    let mut scored: Vec<(u64, &RtmpUrl)> = origins
        .iter()
        .map(|origin| (weight(stream, origin), origin))
        .collect();
    // Highest weight first; ties (practically impossible) by list order.
    scored.sort_by_key(|(weight, _)| std::cmp::Reverse(*weight));
    scored.into_iter().map(|(_, origin)| origin).collect()
}

/// A stable 64-bit hash of (stream, origin): FNV-1a, then a finaliser so
/// nearby inputs spread. Stable across versions and machines on purpose:
/// edges built at different times must agree.
fn weight(stream: &str, origin: &RtmpUrl) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
    };
    feed(stream.as_bytes());
    feed(&[0]);
    feed(origin.host.as_bytes());
    feed(&origin.port.to_be_bytes());
    feed(origin.path.as_bytes());
    // splitmix64 finaliser.
    h ^= h >> 30;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(list: &[&str]) -> Vec<RtmpUrl> {
        list.iter()
            .map(|u| RtmpUrl::parse(u).expect("valid"))
            .collect()
    }

    #[test]
    fn every_edge_picks_the_same_origin_whatever_the_list_order() {
        let a = urls(&[
            "rtmp://o1:1935/live",
            "rtmp://o2:1935/live",
            "rtmp://o3:1935/live",
        ]);
        let b = urls(&[
            "rtmp://o3:1935/live",
            "rtmp://o1:1935/live",
            "rtmp://o2:1935/live",
        ]);
        for stream in ["cam", "news", "sport-1", "x"] {
            let first_a = order(stream, &a)[0].host.clone();
            let first_b = order(stream, &b)[0].host.clone();
            assert_eq!(first_a, first_b, "{stream}");
        }
    }

    #[test]
    fn streams_spread_over_origins_and_removing_one_moves_only_its_streams() {
        let all = urls(&["rtmp://o1/live", "rtmp://o2/live", "rtmp://o3/live"]);
        let without_o2 = urls(&["rtmp://o1/live", "rtmp://o3/live"]);
        let mut per_origin = std::collections::BTreeMap::new();
        for n in 0..3000 {
            let stream = format!("stream-{n}");
            let chosen = order(&stream, &all)[0].host.clone();
            *per_origin.entry(chosen.clone()).or_insert(0) += 1;
            if chosen != "o2" {
                assert_eq!(
                    order(&stream, &without_o2)[0].host,
                    chosen,
                    "{stream} moved"
                );
            }
        }
        assert!(
            per_origin.values().all(|n| (800..1200).contains(n)),
            "{per_origin:?}"
        );
    }

    #[test]
    fn the_order_lists_every_origin_once() {
        let all = urls(&["rtmp://o1/live", "rtmp://o2/live"]);
        let mut hosts: Vec<_> = order("cam", &all).iter().map(|u| u.host.clone()).collect();
        hosts.sort();
        assert_eq!(hosts, vec!["o1", "o2"]);
    }
}
