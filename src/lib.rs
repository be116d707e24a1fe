//! # ringcast: a live-video RTMP edge server
//!
//! Encoders publish a stream over RTMP; ringcast packages each message
//! once per output format in use (RTMP chunks; FLV tags for HTTP-FLV;
//! those tags in WebSocket frames for WebSocket-FLV) and fans the same
//! bytes out to every player of that format, shard per core, on io_uring.
//!
//! ## Crates and layers
//! A workspace whose crates are the layers; each depends only on those
//! above it (arrows point down), and Cargo holds the line between crates:
//!
//! | crate | owns | I/O |
//! |---|---|---|
//! | `ringcast-rtmp` (`crates/rtmp`; re-exported here as [`limits`], [`protocol`], [`session`], [`media`]) | every bound and default with its reason; handshake, chunk codec, AMF0/AMF3, messages, commands, URLs, FLV inspection; one connection's RTMP state machine, server and client side; frames packaged once, GOP cache, timestamp correction, outbound queues and the slow-player policy, write pacing | none: no async runtime in its dependency tree |
//! | `ringcast-web` (`crates/web`) | playing over HTTP: player requests parsed (httparse) and checked, response heads with CORS, RFC 6455 framing (server and client side), the FLV file header, the player page and its mpegts.js and hls.js | none |
//! | `ringcast-hls` (`crates/hls`) | HLS and LL-HLS without I/O: FLV tag bodies to decoder configurations and samples, the CMAF muxer, one stream's packager (parts, segments, the window players are served from), the media playlist, blocking-reload directives | none |
//! | `ringcast-tls` (`crates/tls`) | TLS with rustls (aws-lc-rs): one connection's records sealed and opened over owned buffers (for io_uring sockets, server and client side); the server's certificates, checked when loaded and chosen by SNI; the roots `rtmps://` relays verify against | reads certificate files |
//! | `ringcast-client` (`crates/client`) | an RTMP client connection on tokio-uring, plain or TLS (`rtmps://`); relays and the load generator use it | yes |
//! | `ringcast-bench` (`crates/bench`) | `ringcast bench` (load generator), the delivery floor, soak and churn, reports and plots (hdrhistogram, plotters) | yes |
//! | `ringcast` (this crate) | the server and the CLI, below | yes |
//!
//! Within this crate, in the same order:
//!
//! | module | owns | I/O |
//! |---|---|---|
//! | [`config`], [`cli`], [`startup`] | settings, flags, startup checks with fixes, listener binding | startup only |
//! | [`logging`] | log lines to stderr as text or JSON lines, from a writer thread; control characters in field values escaped; the token bucket that budgets lines | writes stderr |
//! | [`router`] | per shard, a state machine over plain values: who gets which frame (publish, play, takeover, fan-out, the cross-shard protocol, pulls, pushes, recordings and programs of publishes started and stopped), events in, actions out; the stream directory the shards share | none |
//! | [`relay`] | pulling from origins (rendezvous hashing, failover, backoff) and pushing to targets | yes |
//! | [`access`] | access rules (keys, percent-decoded `?key=`, address lists); HTTP hooks on their own thread, worded as ringcast, SRS or nginx-rtmp word them (pure `formats`), over HTTP or HTTPS; when each publish and play is due its `on_update` (pure `updates`); connections per address | hooks: HTTP(S) |
//! | [`exec`] | exec on publish: the programs apps run while their streams are published, on a supervisor thread of their own (spawned, logged, restarted with backoff, stopped, reaped) | processes |
//! | [`shard`] | pinned tokio-uring reactors: connections (RTMP, and HTTP-FLV and WebSocket-FLV players on the HTTP listeners), the router's driver (its events in, its actions carried out), relays, programs of publishes handed to [`exec`], the mesh between shards, the door (access decisions) | yes |
//! | [`hls`] | the HLS streams every shard serves from: each stream's window, its packager between sources, when it was last asked for | none |
//! | [`record`] | recording streams to files: the recorder thread, where each file starts and splits (a pure state machine), FLV with a keyframe index, fragmented MP4 from the HLS packager | writes files |
//! | [`reload`] | replacing the running configuration (SIGHUP, `POST /api/v1/reload`) | reads the config file |
//! | [`server`], [`drain`] | shard threads, the hook, recorder, exec and control threads, signals, graceful shutdown; the maintenance drain (SIGTERM): listeners closed, publishers asked to move (Enhanced RTMP reconnect request), players waited for | yes |
//! | [`http`] | the control thread: admin API (JSON) and Prometheus `/metrics`, off the data path; refuses browser pages of other origins and non-JSON POSTs, and asks for a bearer token when one is set | yes |
//! | [`doctor`] | checks the machine against the tuning runbook (`tuning/`) | reads `/proc/sys` |
//!
//! `ringcast-bench` is a dependency of this crate for the `ringcast bench`
//! subcommand only: of the server's modules, only [`cli`] names it.
//! `protocol`, `session`, `media`, `ringcast-web` and `router` are pure: bytes, time and
//! randomness in, bytes, events and actions out. No `async`, no sockets,
//! no clock; `tests/layering.rs` holds what Cargo cannot: that `media`
//! and the router read no clock and do no I/O, and the arrows inside this
//! crate (`relay` names no `shard`, `http` no `cli`, what travels to a
//! shard none of its handlers). The router is tested across virtual
//! shards in memory (`router::tests`), a property test included: any
//! interleaving of publishes, plays, leaves, frames, lagging inboxes and
//! time keeps every player's video in order and starting at a keyframe
//! after each gap, and leaves nothing behind. One `[workspace.lints]`
//! table denies `unwrap`, `expect`, `panic` and unchecked indexing in
//! every crate's code (tests may: `clippy.toml`).

//! ## Shard model
//! One thread per shard, pinned to a CPU, running a tokio-uring runtime.
//! Each shard binds its own SO_REUSEPORT listeners, so the kernel spreads
//! connections; it owns them (a slab), its [`router::Router`] and its
//! counters. Shards talk only through [`shard::mesh`] messages; the only
//! shared structure is the [`router::Directory`] (which shard owns each
//! stream's publisher), consulted on publish, play and unpublish, never
//! per frame. The shard turns what happens (a session's event after the
//! door, an inbox message, a pull's frame, a deadline) into a
//! [`router::Event`] and carries out the [`router::Action`]s it gets back
//! in order; the router never sees a socket, a task or the clock.
//!
//! ## The life of one frame
//! 1. The publisher's reader task reads into an owned buffer; the server
//!    session reassembles the message and reports it.
//! 2. The owner shard's router hands it to the stream's
//!    [`media::LiveStream`], which corrects its timestamp and
//!    packages it once ([`media::Frame`]: a self-contained fmt 0 chunk and
//!    fmt 3 continuations in one `Bytes` of exactly their size, which is
//!    all a frame holds: never the read buffer or aggregate its body came
//!    in), and the GOP cache keeps it.
//! 3. Fan-out: the router asks for every local player's
//!    [`media::OutboundQueue`] to be offered a refcounted clone of the same
//!    bytes; a variant is built once per frame and shard for each other
//!    shape its players use ([`router::Format`]: an RTMP stream id or
//!    chunk size, an FLV tag for HTTP-FLV, that tag in a WebSocket frame),
//!    and only when a player of that shape is there. The slow-player
//!    policy may drop video until the next keyframe.
//! 4. Every other shard with players gets the frame once through its inbox
//!    (after a snapshot of headers and GOP when it subscribed) and fans it
//!    out the same way.
//! 5. The stream's [`media::Pacing`] says when its players write: at
//!    each video frame, audio and metadata riding with it (held at most
//!    [`media::AUDIO_HOLD_MS`]), or with `player.write_window_ms` once per
//!    window, players spread over its phases. Each woken writer task
//!    gathers what is queued and writes it with one `writev`.
//!
//! ## Players over HTTP
//! An HTTP listener's connection is a [`shard::connection::Conn`] like an
//! RTMP one (same queue, writer, pacing, slow-player policy, kicks), whose
//! protocol is HTTP: it reads one request (`ringcast_web::request`), is
//! answered at once (the page, a preflight, a refusal) or becomes a player
//! through the same door (keys as `?key=`, address lists, `on_play`) and
//! the same router event as an RTMP `play`, with its format. Its response
//! head (`200`, or `101` for WebSocket) goes out with its first frames, so
//! a stream that never comes within `http.play_wait_ms` is still a `404`.
//!
//! ## HLS
//! A stream whose app has HLS on is packaged once, on the shard with its
//! source: the router taps its frames (`Action::Tap`, as for its pushes)
//! to that shard's packager (`ringcast_hls::Packager`), which makes a part
//! of CMAF fMP4 every `hls.part_ms` and publishes a new immutable
//! `Window` in the stream's [`hls::HlsStream`] (one atomic store). Any
//! shard answers a request with one atomic load and `Bytes` clones; a
//! request for what is not made yet parks its connection's reader on the
//! stream's `Notify` on that shard, and the source shard tells each shard
//! with waiters once per window (`HlsUpdated`). Between sources the
//! packager waits in the shared table, so a republish on any shard goes on
//! numbering with a discontinuity.
//!
//! ## Recording
//! A stream is recorded where its source is, like HLS: the router starts
//! a recording with a source of an app that records (or when the admin
//! API asks, `Event::RecordStart`) and ends it with the source
//! (`Action::StartRecord`, `StopRecord`), and taps its frames to it. The
//! shard hands each frame (a refcount) to the recorder thread
//! ([`record::Recorder`]) over a channel and never waits: a recording may
//! have [`limits::RECORD_QUEUE_BYTES_MAX`] bytes handed over and not
//! written, past which its shard stops it; a failed write stops it on the
//! thread. Either way only that recording ends, its file completed with
//! what it holds; the router hears it (`Event::RecordEnded`) once the
//! event in progress is over. The thread runs each recording's
//! [`record::segmenter::Segmenter`] (frames in, file operations out: files
//! start at a keyframe with the headers at 0 and split at the first
//! keyframe past a duration or size), writes with blocking file I/O, and
//! tells the app's `on_record_done` hook of each completed file.
//!
//! ## TLS
//! RTMPS and HTTPS-FLV/WSS listeners are more listeners of each shard
//! (`[tls] listen`, `http_listen`). Their connections are the same
//! [`shard::connection::Conn`] with a record layer (`ringcast_tls::Tls`):
//! its reader reads ciphertext into a buffer of its own and hands the
//! session the plaintext; its writer seals the queued shared frames into
//! that player's records and writes them. Frames are still packaged once
//! per shard and format; sealing is the one per-player copy TLS needs
//! (rustls seals into its record buffer, which is then written). Kernel
//! TLS is not used: `ringcast doctor` says whether the kernel offers it.
//! The certificates are part of the configuration: a reload reads them
//! again, new connections get the new ones, running ones keep their
//! session.
//!
//! ## Exec on publish
//! An app's `exec_publish` is run for each of its streams published here
//! (not for an edge's pulls). The router decides when
//! (`Action::StartExec` with the publish, `Action::StopExec` with its end
//! or takeover, as for pushes); the shard hands the start to the [`exec`]
//! supervisor thread over a bounded channel and keeps the
//! [`exec::Running`] it gets, whose drop is the stop, so a stop can be
//! neither lost nor overtaken. Forking, signals, waiting and the
//! children's stderr are that thread's, never a reactor's.
//!
//! ## Decisions a reader should know
//! - The control thread ([`http`]) never touches a shard's state: it
//!   reads counters each shard writes alone (relaxed atomics) and asks for
//!   anything else (streams, clients, kicks; the streams again at each
//!   `/metrics` scrape, for its per-stream series, cut to
//!   `metrics_streams_max`) with a [`shard::messages::Query`] message,
//!   awaited with a timeout, so a stuck shard cannot hang the API and the
//!   API adds nothing to the per-frame path.
//! - A session reads no further input while a `connect`, `publish` or
//!   `play` awaits the shard's answer, so replies go out in order and media
//!   sent right after `publish` finds the stream publishing. An HTTP hook
//!   makes that wait last: the connection's reader stops reading the
//!   socket until the hook thread answers (or times out), then goes on
//!   with what it holds; the shard serves everyone else meanwhile.
//!   `on_update` costs each publish and play one entry in its shard's
//!   schedule, which the shard's one timer (the router's) serves: no task
//!   or timer per client.
//! - Each shard keeps its own copy of the configuration and takes a new
//!   one from its inbox on a reload; what a reload changes applies to what
//!   starts afterwards (a connection, a publish, a play), so nothing that
//!   runs is interrupted. Listeners and shards stay as started.
//! - Packaged frames use their own chunk streams (6 audio, 7 video, 8 data)
//!   which a session's own encoder never touches, so the session's header
//!   compression state stays true on a connection that also carries frames.
//! - Logging costs a peer nothing it can multiply: every line a peer can
//!   cause passes a token bucket of its connection and one of its shard
//!   ([`shard::logs`]), in our code so it holds under any subscriber;
//!   what does not fit is counted into a summary line and the close line.
//!   Peer text is quoted cut to [`limits::QUOTED_BYTES_MAX`], and
//!   [`logging`] escapes control characters in every field value, so a
//!   name a peer chose can neither colour a log nor forge a line. The
//!   binary formats on the shard thread but writes from a thread of its
//!   own through a bounded, lossy queue, so a slow stderr never stalls a
//!   shard.
//!   A connection refused [`limits::REFUSALS_IN_A_ROW_MAX`] times in a row
//!   is closed.
//! - What a player makes an edge open on its behalf is bounded: a pull is
//!   charged to the connection whose play started it until it stops
//!   (`relay.pulls_per_connection_max`) and to the server (`relay.pulls_max`,
//!   counted by the directory and in the open-file budget checked at
//!   startup); a play past either is answered `NetStream.Play.StreamNotFound`
//!   at once, and so is one whose pull failed every origin. Client
//!   connections (`ringcast_client::connect`) wait for a non-blocking `connect(2)`
//!   through the reactor, not tokio-uring's connect op, which keeps the
//!   socket of a connect given up on until the kernel gives up too.
//! - What one peer message may cost is bounded by a small multiple of its
//!   own size (house rule 8): the chunk decoder refuses, from the header
//!   and before reassembly, any message longer than its type allows
//!   (control 64 B, commands 64 KiB, data 256 KiB; only the audio, video
//!   and aggregates of a connection whose publish was accepted reach the
//!   configured maximum, anything else stays within 64 KiB); AMF decodes
//!   within a budget
//!   of three values and three string bytes per input byte, so references
//!   cannot expand; the server session decodes commands always and data
//!   only on a publishing stream; and metadata reaches players as the
//!   publisher's own bytes, not a re-encoding of what they decoded to.
//! - Writes, not bytes, are what a live edge pays for per player: a real
//!   encoder's audio runs on its own clock (43–47 frames/s) beside 24–60
//!   fps of video, so writing each frame as it comes costs two writes per
//!   video frame. Writers write only when the pacing wakes them; a
//!   connection reads 1 KiB at a time unless it publishes, since a player's
//!   read is always pending and holds its buffer.
//! - Memory is counted by what it holds: whatever keeps frames (GOP cache,
//!   push feeds, cross-shard snapshots, player queues) counts their wire
//!   bytes and a per-entry overhead ([`media::FRAME_OVERHEAD_BYTES`],
//!   [`media::QUEUE_ENTRY_BYTES`]), and each shard asks the allocator to
//!   hand what it freed back to the OS every second, so RSS follows what
//!   the shards hold even when they go quiet.
//! - A maintenance drain ([`drain`], SIGTERM) moves load instead of cutting
//!   it: each shard shuts its listeners down (`shutdown(2)` on a duplicate
//!   of each descriptor, which takes it out of the port's SO_REUSEPORT
//!   group at once, so a ringcast started beside it with `--share-ports`
//!   gets every new connection), sends Enhanced RTMP's reconnect request
//!   to publishers that announced they act on it, and lets a player go
//!   once its stream's publisher left; the bundled client's publishers
//!   move at their next keyframe, before closing the old connection.
//! - Shard inboxes carry control messages (never dropped; few) and frames
//!   (bounded per inbox) in one ordered channel; frames carry sequence
//!   numbers, so a lagging shard sees a gap and restarts its players' video
//!   at the next keyframe, like a slow player.

pub use ringcast_rtmp::{limits, media, protocol, session};

pub mod access;
pub mod cli;
pub mod config;
pub mod doctor;
pub mod drain;
pub mod exec;
pub mod fuzzing;
pub mod hls;
pub mod http;
pub mod logging;
pub mod record;
pub mod relay;
pub mod reload;
pub mod router;
pub mod server;
pub mod shard;
pub mod startup;
