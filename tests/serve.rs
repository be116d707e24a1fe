//! End-to-end on loopback with the bundled client: publish, play, fan-out
//! across shards, late joiners, several streams, takeover, slow players.

mod common;

use common::media::{self, frame_number};
use common::{Client, start_server};

#[test]
fn a_player_receives_every_frame_a_publisher_sends() {
    let server = start_server(1, |_| {});
    let addr = server.local_addrs()[0];
    let mut publisher = Client::connect(addr, "live");
    let p = publisher.publish("cam");
    let mut player = Client::connect(addr, "live");
    player.play("cam");
    publisher.send_metadata(p);
    publisher.send(p, &media::avc_header());
    publisher.send(p, &media::aac_header());
    for n in 0..60 {
        publisher.send(p, &media::video(n, 30, 5000));
    }
    let got = player.collect_media(62);
    let frames: Vec<u32> = got.iter().filter_map(frame_number).collect();
    assert_eq!(frames, (0..60).collect::<Vec<_>>());
    server.shutdown();
}
