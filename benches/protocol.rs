//! Protocol hot paths: chunk decoding (what every published byte goes
//! through), packaging (once per frame) and AMF0 decoding of a `connect`
//! (once per connection).
//!
//! `cargo bench --bench protocol`; throughput is reported per byte of RTMP
//! input or output.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringcast::protocol::amf::{Limits, Value};
use ringcast::protocol::chunk::{self, Decoder, Encoder, MessageHeader};
use ringcast::protocol::{ChunkStreamId, MessageStreamId, MessageType, Timestamp, amf0};

/// A publisher's stream: 30 fps video frames of ~10 KB with audio in
/// between (2.5 Mbit/s-ish), chunked at `chunk_size`, Set Chunk Size first.
fn published_stream(chunk_size: u32, seconds: u32) -> Vec<u8> {
    let mut encoder = Encoder::new();
    let mut out = BytesMut::new();
    let control = MessageHeader {
        chunk_stream: ChunkStreamId(2),
        timestamp: Timestamp(0),
        type_id: MessageType::SET_CHUNK_SIZE,
        stream_id: MessageStreamId(0),
    };
    encoder
        .encode(&control, &chunk_size.to_be_bytes(), &mut out)
        .expect("encodable");
    encoder.set_chunk_size(chunk_size).expect("valid size");
    for frame in 0..30 * seconds {
        let ts = Timestamp(frame * 33);
        let video_len = if frame % 60 == 0 { 60_000 } else { 10_000 };
        let video = MessageHeader {
            chunk_stream: ChunkStreamId(6),
            timestamp: ts,
            type_id: MessageType::VIDEO,
            stream_id: MessageStreamId(1),
        };
        encoder
            .encode(&video, &vec![0x27; video_len], &mut out)
            .expect("encodable");
        let audio = MessageHeader {
            chunk_stream: ChunkStreamId(4),
            type_id: MessageType::AUDIO,
            ..video
        };
        encoder
            .encode(&audio, &[0xAF; 300], &mut out)
            .expect("encodable");
    }
    out.to_vec()
}

fn chunk_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("chunk_decode");
    for chunk_size in [4096u32, 65_536] {
        let stream = published_stream(chunk_size, 10);
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(chunk_size),
            &stream,
            |b, stream| {
                b.iter(|| {
                    let mut decoder = Decoder::new(chunk::Limits::default());
                    // Arrives as 64 KiB socket reads.
                    let mut input = BytesMut::new();
                    let mut messages = 0usize;
                    for read in stream.chunks(65_536) {
                        input.extend_from_slice(read);
                        while let Some(m) = decoder.decode(&mut input).expect("valid") {
                            messages += black_box(m.payload.len()).min(1);
                        }
                    }
                    messages
                });
            },
        );
    }
    group.finish();
}

fn package(c: &mut Criterion) {
    let mut group = c.benchmark_group("package");
    for (len, chunk_size) in [(10_000usize, 4096u32), (60_000, 4096), (10_000, 65_536)] {
        let payload = vec![0x27u8; len];
        let header = MessageHeader {
            chunk_stream: ChunkStreamId(7),
            timestamp: Timestamp(123_456),
            type_id: MessageType::VIDEO,
            stream_id: MessageStreamId(1),
        };
        group.throughput(Throughput::Bytes(len as u64));
        let id = BenchmarkId::new(format!("{len}B"), chunk_size);
        group.bench_with_input(id, &payload, |b, payload| {
            b.iter(|| chunk::package(&header, black_box(payload), chunk_size).expect("valid"));
        });
    }
    group.finish();
}

fn amf0_connect(c: &mut Criterion) {
    // What ffmpeg sends (see testdata/README.md).
    let connect = [
        Value::string("connect"),
        Value::Number(1.0),
        Value::object([
            ("app", Value::string("live")),
            ("type", Value::string("nonprivate")),
            (
                "flashVer",
                Value::string("FMLE/3.0 (compatible; Lavf59.27.100)"),
            ),
            ("tcUrl", Value::string("rtmp://127.0.0.1:1935/live")),
        ]),
    ];
    let mut body = BytesMut::new();
    amf0::encode_all(&connect, &mut body);
    let limits = Limits::default();
    let mut group = c.benchmark_group("amf0");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("decode_connect", |b| {
        b.iter(|| amf0::decode_all(black_box(&body), &limits).expect("valid"));
    });
    group.finish();
}

criterion_group!(benches, chunk_decode, package, amf0_connect);
criterion_main!(benches);
