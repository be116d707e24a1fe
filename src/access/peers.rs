//! Connections per IP address, server-wide. SO_REUSEPORT spreads one
//! address's connections over every shard, so the count is shared: a
//! mutex taken once when a connection is accepted and once when it closes,
//! never per message.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default)]
pub struct PeerCounts {
    peers: Mutex<HashMap<IpAddr, Peer>>,
}

#[derive(Debug, Default)]
struct Peer {
    connections: usize,
    /// A refusal was logged since the address was last under its cap.
    refusal_logged: bool,
}

/// One admitted connection of an address; dropping it gives the place back.
#[derive(Debug)]
pub struct PeerSlot {
    counts: Arc<PeerCounts>,
    ip: IpAddr,
}

/// An address at its cap.
#[derive(Debug, PartialEq, Eq)]
pub struct AtCap {
    /// The first refusal since the address was under its cap: the one to
    /// log, so a flood makes one line.
    pub first: bool,
}

impl PeerCounts {
    /// Admits one more connection from `ip` unless it holds `cap` already
    /// (`cap` 0: no cap).
    pub fn admit(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Result<PeerSlot, AtCap> {
        let ip = ip.to_canonical();
        let mut peers = self.lock();
        let peer = peers.entry(ip).or_default();
        if cap != 0 && peer.connections >= cap {
            let first = !peer.refusal_logged;
            peer.refusal_logged = true;
            return Err(AtCap { first });
        }
        peer.connections += 1;
        Ok(PeerSlot {
            counts: self.clone(),
            ip,
        })
    }

    /// Connections `ip` holds now.
    pub fn connections(&self, ip: IpAddr) -> usize {
        self.lock()
            .get(&ip.to_canonical())
            .map_or(0, |p| p.connections)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, Peer>> {
        // Every update is a single step on one entry: a panic elsewhere
        // cannot leave the map half-changed.
        self.peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut peers = self.counts.lock();
        if let Some(peer) = peers.get_mut(&self.ip) {
            peer.connections = peer.connections.saturating_sub(1);
            peer.refusal_logged = false;
            if peer.connections == 0 {
                peers.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_capped_and_gets_its_place_back_on_close() {
        let counts = Arc::new(PeerCounts::default());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let first = counts.admit(ip, 2).unwrap();
        let _second = counts.admit(ip, 2).unwrap();
        assert_eq!(counts.admit(ip, 2).unwrap_err(), AtCap { first: true });
        assert_eq!(counts.admit(ip, 2).unwrap_err(), AtCap { first: false });
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(counts.admit(other, 2).is_ok(), "other addresses are apart");
        drop(first);
        assert_eq!(counts.connections(ip), 1);
        let _third = counts.admit(ip, 2).unwrap();
        assert_eq!(counts.admit(ip, 2).unwrap_err(), AtCap { first: true });
    }

    #[test]
    fn no_cap_counts_anyway_and_entries_go_away() {
        let counts = Arc::new(PeerCounts::default());
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let slots: Vec<_> = (0..100).map(|_| counts.admit(mapped, 0).unwrap()).collect();
        assert_eq!(counts.connections("192.0.2.1".parse().unwrap()), 100);
        drop(slots);
        assert!(counts.lock().is_empty());
    }
}
