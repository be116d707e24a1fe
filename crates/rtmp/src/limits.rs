//! Every bound ringcast places on what a peer can make it hold or do, in one
//! place: what each bounds, its default, why that value, and the worst-case
//! memory it allows. Crossing a bound closes that peer, never the process
//! (house rule 2). Bounds that relate are const-asserted at the bottom.
//!
//! The config layer may lower (or, where said, raise) the defaults; it
//! validates against the `*_MAX` protocol ceilings here.

// ---------------------------------------------------------------------------
// Messages and chunks (RTMP 1.0 §5.3, §5.4.1)
// ---------------------------------------------------------------------------

/// The largest message length the 24-bit length field can express.
pub const MESSAGE_SIZE_PROTOCOL_MAX: u32 = 0x00FF_FFFF;

/// Default largest audio, video or aggregate message accepted from a peer
/// (every other type has a smaller bound of its own, below).
/// Why: a keyframe of 4K video at 50 Mbit/s with a 2 s GOP is about 3 MB;
/// 8 MiB leaves room while halving what a hostile peer can make us buffer
/// compared with the protocol ceiling.
/// Worst case: one message of this size assembling per chunk stream, capped
/// in total by [`PARTIAL_BYTES_MAX_DEFAULT`].
pub const MESSAGE_SIZE_MAX_DEFAULT: u32 = 8 * 1024 * 1024;

/// Largest protocol control message (types 1–6) accepted. Why: the
/// longest legal one is 6 bytes (Set Peer Bandwidth) and the longest user
/// control event any peer sends is a SWF verification answer (event 27: 2
/// bytes of event and 42 of data); 64 leaves room while a control message
/// can no longer be megabytes reassembled for nothing. Checked from the
/// message header, before reassembly. Worst case: 64 bytes per message.
pub const CONTROL_MESSAGE_SIZE_MAX: u32 = 64;

/// Largest command (types 20, 17), shared object (19, 16) or unknown-type
/// message accepted. Why: ffmpeg's and OBS's `connect` is under 300 bytes
/// and every name in one is capped at [`NAME_BYTES_MAX`] or
/// [`CONNECT_STRING_BYTES_MAX`], so a few KiB suffice; 64 KiB leaves room
/// for Flash clients' extra `connect` arguments. Shared objects and unknown
/// types are ignored, so they get no more; nor does any message until a
/// publish is accepted (only commands matter before; only a publisher
/// sends media). Checked from the message header, before reassembly.
/// Worst case: 64 KiB per chunk stream, within
/// [`PARTIAL_BYTES_MAX_DEFAULT`] (a peer that does not publish:
/// [`CHUNK_STREAMS_MAX`] × 64 KiB = 4 MiB), then an AMF decode bounded by
/// [`AMF_EXPANSION_PER_BYTE`].
pub const COMMAND_MESSAGE_SIZE_MAX: u32 = 64 * 1024;

/// Largest data message (types 18, 15: `@setDataFrame`, `onMetaData`,
/// `|RtmpSampleAccess`) accepted. Why: ffmpeg's and OBS's `onMetaData` is
/// under 1 KiB, but a file published as is (librtmp, `ffmpeg -c copy` of
/// an FLV with an injected index, nginx-rtmp relaying it) carries its
/// keyframe index: two numbers (18 bytes) per keyframe, so a two-hour file
/// with a 2 s GOP sends ~65 KB. 256 KiB holds an eight-hour index.
/// Checked from the message header, before reassembly. Worst case: 256
/// KiB per chunk stream, then an AMF decode bounded by
/// [`AMF_EXPANSION_PER_BYTE`]; a stream keeps one such message for its
/// players.
pub const DATA_MESSAGE_SIZE_MAX: u32 = 256 * 1024;

/// Default total bytes of partially received messages held for one
/// connection, across all its chunk streams. Why: a publisher interleaves
/// one large video message with small audio and data messages, so one
/// maximal message plus 1 MiB covers every real encoder, while a peer that
/// opens many chunk streams and never finishes a message is cut off here.
/// Worst case: this many bytes per connection.
pub const PARTIAL_BYTES_MAX_DEFAULT: u32 = MESSAGE_SIZE_MAX_DEFAULT + 1024 * 1024;

/// Chunk size every connection starts with, in both directions (§5.4.1).
pub const CHUNK_SIZE_INITIAL: u32 = 128;

/// Smallest chunk size a Set Chunk Size message may carry (§5.4.1: 1..=2^31-1).
pub const CHUNK_SIZE_MIN: u32 = 1;

/// Largest chunk size a Set Chunk Size message may carry (the top bit must
/// be zero). Sizes above [`MESSAGE_SIZE_PROTOCOL_MAX`] mean "whole messages
/// in one chunk", since no message is longer.
pub const CHUNK_SIZE_MAX: u32 = 0x7FFF_FFFF;

/// Default chunk size the server asks for on its own output. Why: larger
/// chunks mean fewer headers and fewer, larger copies; 4096 is what
/// nginx-rtmp uses and every client we target accepts it.
pub const CHUNK_SIZE_OUT_DEFAULT: u32 = 4096;

/// Chunk streams one connection may have in use at once. Why: real
/// encoders use under ten (ffmpeg: 2..=8, OBS: 2..=6); the spec allows
/// 65597, each holding a header and a partial message.
/// Worst case: 64 × ~64 bytes of header state; partial payload bytes are
/// capped by [`PARTIAL_BYTES_MAX_DEFAULT`].
pub const CHUNK_STREAMS_MAX: usize = 64;

// ---------------------------------------------------------------------------
// AMF (commands and metadata)
// ---------------------------------------------------------------------------

/// Nesting depth of AMF objects and arrays. Why: real commands and
/// metadata nest two or three levels; recursion depth is stack use.
/// Worst case: 32 decoder frames of a few hundred bytes each.
pub const AMF_DEPTH_MAX: usize = 32;

/// Values decoded from one message, counting copies made when resolving
/// references. Why: `onMetaData` of a long FLV file carries keyframe index
/// arrays of a few thousand numbers; 64 Ki values is ample, and references
/// that copy subtrees cannot amplify past it.
/// Each message is further held to [`AMF_EXPANSION_PER_BYTE`] values per
/// byte of its body. Worst case: 65 536 × `size_of::<Value>()` (about 40
/// bytes) ≈ 2.5 MiB, transient while one message decodes.
pub const AMF_ITEMS_MAX: usize = 65_536;

/// String, key and byte-array bytes decoded from one message, counting
/// copies made when resolving references. Why: without references a message
/// can hold no more than its own length in strings; with them a 64 KiB
/// string referenced a thousand times would become 64 MiB. Each message is
/// further held to [`AMF_EXPANSION_PER_BYTE`] bytes per byte of its body.
/// Worst case: this many bytes, transient while one message decodes.
pub const AMF_BYTES_MAX: usize = 16 * 1024 * 1024;

/// What one message's AMF may decode to, per byte of its body, in values
/// and in string bytes alike (the budget of a message of `n` bytes is
/// `min(absolute cap, AMF_EXPANSION_PER_BYTE × n + AMF_EXPANSION_SLACK)`).
/// Why: without references a body decodes to at most one value per byte
/// (every value has a marker) and three string bytes per byte (strings are
/// decoded lossily, and an invalid UTF-8 byte becomes U+FFFD, three bytes),
/// so 3 is the least factor that accepts every message without references;
/// the rest of it, and the slack, is what references may add. Real peers
/// use references little: ffmpeg, OBS and nginx-rtmp write none, Flash
/// Player and FMS reuse a few AMF3 strings and traits. Unbounded, the
/// reference bomb (arrays that each reference the previous one twice,
/// doubling every 7 to 11 bytes) turns 1.3 KB into the absolute caps' 16
/// MiB. Worst case: a message of `n` bytes decodes (and, where it is
/// re-encoded, encodes) to 3n values and 3n string bytes plus the slack.
pub const AMF_EXPANSION_PER_BYTE: usize = 3;

/// Values and string bytes every message may decode to beyond
/// [`AMF_EXPANSION_PER_BYTE`] times its length. Why: a short AMF3 command
/// from Flash that reuses a traits object or a key expands more than 3× in
/// relative terms while costing nothing in absolute ones.
/// Worst case: 1024 values (~40 KiB) and 1 KiB of strings per message.
pub const AMF_EXPANSION_SLACK: usize = 1024;

/// Entries in each AMF3 reference table (strings, objects, traits) of one
/// message. Why: commands and metadata reuse a handful of strings.
/// Worst case: three tables of 4096 entries (the objects' copies are
/// bounded by [`AMF_ITEMS_MAX`] and [`AMF_BYTES_MAX`]).
pub const AMF3_REFERENCE_TABLE_MAX: usize = 4096;

// ---------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------

/// Message streams (`createStream`) one connection may hold open. Why:
/// ffmpeg and OBS open one; players that switch streams open a few. Beyond
/// this, `createStream` is answered with `_error`.
/// Worst case: 16 small stream records per connection.
pub const STREAMS_PER_CONNECTION_MAX: usize = 16;

/// Bytes in an app or stream name (`connect`'s app, the stream name of
/// `publish`, `play` and the commands around them, query included). Why:
/// real names are tens of bytes, a few hundred with an auth token; a name
/// is stored in the stream directory and quoted in statuses and log
/// lines, and the message limit would let one be megabytes. Longer names
/// are refused (`_error`, or a close for `connect`).
pub const NAME_BYTES_MAX: usize = 1024;

/// Bytes of each other string `connect` carries that is kept for the
/// connection's life or copied into what the server builds from it:
/// `tcUrl`, `flashVer`, `swfUrl`, `pageUrl` (queries included). Why: a
/// `tcUrl` is a scheme, a host and the app (itself at most
/// [`NAME_BYTES_MAX`], query and token included), so under 1.5 KiB; a
/// `pageUrl` is a browser URL (browsers and CDNs cut those near 2 KiB);
/// `flashVer` is tens of bytes. 4 KiB leaves room, while the message limit
/// would let one be megabytes kept per connection. Over it `connect` is
/// refused. Worst case: four such strings, 16 KiB per connection.
pub const CONNECT_STRING_BYTES_MAX: usize = 4096;

/// Bytes of peer-chosen text (an unknown command's name) quoted back in an
/// `_error` description or a log line; the rest is cut. Why: enough to
/// recognise the command, while a peer cannot make us echo or log
/// megabytes.
pub const QUOTED_BYTES_MAX: usize = 64;

/// Messages one aggregate (type 22) may hold. Why: FMS, Wowza and
/// nginx-rtmp aggregate up to a second or so of media, tens of messages
/// (50 video and 47 audio frames at 50 fps and 48 kHz AAC); an 8 MiB
/// aggregate of empty tags would otherwise become ~560 000 events at once,
/// past [`SESSION_EVENTS_MAX`]. More is a protocol error that closes the
/// peer. Worst case: a session queues [`SESSION_EVENTS_MAX`] plus this
/// many events.
pub const AGGREGATE_MESSAGES_MAX: usize = 256;

/// Window Acknowledgement Size the server announces, and the default a
/// client announces. Why: 2.5 MB is what ffmpeg, OBS and nginx-rtmp use.
pub const ACK_WINDOW_DEFAULT: u32 = 2_500_000;

/// Smallest acknowledgement window we honour from a peer. Why: a peer
/// announcing a 1-byte window would make us acknowledge every byte; below
/// this we acknowledge at this interval instead.
pub const ACK_WINDOW_MIN: u32 = 4096;

/// Messages a session keeps queued for the layer above before it stops
/// decoding input (back-pressure on one connection's reader, never a drop).
/// Why: one read of 64 KiB of tiny messages must not become an unbounded
/// event queue. The queue is checked between messages, and one aggregate
/// adds at most [`AGGREGATE_MESSAGES_MAX`]. Worst case: 1024 + 256 small
/// events per connection.
pub const SESSION_EVENTS_MAX: usize = 1024;

// ---------------------------------------------------------------------------
// Server: connections, streams, players
// ---------------------------------------------------------------------------

/// Connections the whole server holds at once (every shard's share added
/// up). Why: each costs a file descriptor, a read buffer and session state;
/// 10 000 fits a default-tuned machine (see `tuning/`), operators raise it.
/// Worst case: [`READ_BUFFER_BYTES`] + ~2 KiB of session state each, plus
/// what [`PARTIAL_BYTES_MAX_DEFAULT`] allows a publisher.
pub const CONNECTIONS_MAX_DEFAULT: usize = 10_000;

/// Bytes a connection's socket read asks for at once until it publishes.
/// Why: a connection always has a read pending, holding its buffer, and a
/// player sends only acknowledgements, pongs and a few commands (ffmpeg's
/// `connect` is under 300 bytes); the handshake takes a few more reads.
/// A thousand players hold 1 MiB of read buffers instead of 64.
/// Worst case: this per connection that does not publish, more only while
/// unparsed input is waiting (a handshake, a message split over reads).
pub const READ_BUFFER_BYTES: usize = 1024;

/// Bytes a publishing connection's socket read asks for at once. Why:
/// 64 KiB drains a publisher's socket buffer in a few reads.
/// Worst case: this per publishing connection.
pub const PUBLISHER_READ_BUFFER_BYTES: usize = 64 * 1024;

/// Bytes of frames since the last keyframe kept for new players. Why: a
/// 2 s GOP at 8 Mbit/s is 2 MB; past this bound the cache is dropped and
/// new players wait for the next keyframe. Worst case: this many bytes per
/// stream per shard that carries it (frames are shared, not copied). The
/// bound counts what frames hold (`media::Frame::held`: wire bytes in a
/// buffer of their own size, plus `media::FRAME_OVERHEAD_BYTES` each), so
/// neither tiny frames nor frames read out of a larger buffer can hold
/// more than it says.
pub const GOP_CACHE_BYTES_MAX_DEFAULT: usize = 4 * 1024 * 1024;

/// Duration of the GOP cache, in ms. Why: encoders with 10 s GOPs exist;
/// a longer cache makes new players start further behind live.
pub const GOP_CACHE_DURATION_MS_MAX_DEFAULT: u64 = 10_000;

/// Bytes queued for one player before its video is dropped until the next
/// keyframe. Why: a new player receives the whole GOP cache at once, so
/// the bound must hold it with room for live frames; beyond that a player
/// is seconds behind and better off skipping. Worst case: queued frames
/// are shared with every other player, so a stream holds at most this many
/// distinct bytes for all its players together; each player also holds
/// its queue's slots, which the bound counts (`media::QUEUE_ENTRY_BYTES`
/// per buffer), so a stream of 1-byte messages cannot queue 32 times the
/// bound in slots.
pub const PLAYER_QUEUE_BYTES_MAX_DEFAULT: usize = 2 * GOP_CACHE_BYTES_MAX_DEFAULT;

/// A player whose queue stays over its bound this long (ms) is
/// disconnected. Why: it is not keeping up even with video dropped.
pub const SLOW_DISCONNECT_MS_DEFAULT: u64 = 10_000;

/// Most bytes one `writev` to a player carries. Why: large enough to move
/// several frames per system call, small enough that one player's write
/// does not hog the shard.
pub const WRITE_BATCH_BYTES_MAX_DEFAULT: usize = 256 * 1024;

/// Most buffers in one `writev` (Linux `IOV_MAX`).
pub const WRITE_IOVECS_MAX: usize = 1024;

/// Handshake and `connect` must complete within this (ms). Why: a peer
/// that connects and sends nothing holds a descriptor for free.
pub const HANDSHAKE_TIMEOUT_MS_DEFAULT: u64 = 10_000;

/// No bytes in either direction for this long (ms) closes a connection.
pub const IDLE_TIMEOUT_MS_DEFAULT: u64 = 60_000;

/// Graceful shutdown: players are told and connections closed within this
/// (ms).
pub const SHUTDOWN_GRACE_MS_DEFAULT: u64 = 5_000;

/// A maintenance drain (SIGTERM) waits this long (ms) for publishers to
/// move and players to leave before the graceful shutdown closes the rest.
/// Why: a publisher asked to move does so at its next keyframe (2 s for
/// most encoders) and players follow their stream within a few seconds;
/// with the shutdown grace it stays within the 30 s an orchestrator
/// (Kubernetes' default `terminationGracePeriodSeconds`) allows.
pub const DRAIN_MS_DEFAULT: u64 = 10_000;

/// Bytes of an HTTP player's request head (request line and headers).
/// Why: browsers send well under 2 KiB; SRS and nginx allow 8 KiB by
/// default, and past it we answer `431` rather than buffer more.
pub const HTTP_HEAD_BYTES_MAX: usize = 8 * 1024;

/// Headers in an HTTP player's request. Why: `httparse` needs a fixed
/// array; browsers send about 15.
pub const HTTP_HEADERS_MAX: usize = 64;

/// An HTTP-FLV or WebSocket-FLV player of a stream not live here waits
/// this long (ms) for it (a publisher, or the edge's pull from an origin)
/// before it is answered `404`. Why: an origin pull needs a connect and a
/// handshake away, a second or two; an encoder reconnecting a few more.
pub const HTTP_PLAY_WAIT_MS_DEFAULT: u64 = 5_000;

/// An HLS segment ends at the first keyframe this long (ms) after it
/// began (`hls.segment_ms`). Why: Apple's authoring guide asks for 6 s,
/// low-latency deployments use 1–4 s; 2 s is what encoders' usual 1–2 s
/// GOPs cut into without waiting, and a longer GOP lengthens segments.
pub const HLS_SEGMENT_MS_DEFAULT: u64 = 2_000;

/// A Low-Latency HLS part lasts at most this long (ms; `hls.part_ms`).
/// Why: players hold back three parts (PART-HOLD-BACK), so latency is
/// about 3 × this plus a part's making; 333 ms is ten frames at 30 fps and
/// gives about 1.3 s, within the 200–500 ms the LL-HLS spec's examples use,
/// at three requests a second per player.
pub const HLS_PART_MS_DEFAULT: u64 = 333;

/// Segments a playlist lists (`hls.segments`). Why: RFC 8216bis asks for
/// at least three target durations of segments; six lets a player that
/// fell behind catch up without a stall.
pub const HLS_SEGMENTS_DEFAULT: usize = 6;

/// How long (ms) a stream's HLS segments stay after its source ended and
/// its last HLS request (`hls.idle_ms`). Why: a republishing encoder comes
/// back within seconds and players continue across a discontinuity; after
/// half a minute of nobody asking, the memory is better freed.
pub const HLS_IDLE_MS_DEFAULT: u64 = 30_000;

/// Most bytes one stream's HLS window holds (init segments and parts).
/// Why: 12 segments (six listed, six more players may still fetch) of 2 s
/// at 20 Mbit/s is 60 MiB; past it the oldest unlisted, then listed
/// segments go. The bound is what a stream can make HLS hold, whatever its
/// publisher sends.
pub const HLS_STREAM_BYTES_MAX: usize = 64 << 20;

/// Blocked HLS requests (playlist reloads and parts not made yet) one
/// address may hold on one shard (`hls.blocked_per_ip_max`). Why: an
/// LL-HLS player holds one or two at a time; a few hundred players behind
/// one NAT are plausible, thousands from one address are an attack on the
/// waiting lists.
pub const HLS_BLOCKED_PER_IP_MAX_DEFAULT: usize = 1_024;

/// Largest WebSocket message a player may send us. Why: a player
/// sends nothing but pings (up to 125 bytes) and a close; anything larger
/// is closed with 1009 before it is buffered.
pub const WEBSOCKET_MESSAGE_BYTES_MAX: usize = 4 * 1024;

/// Bytes an HTTP-FLV player may send after its request (it should send
/// none) that are read and discarded before the connection is closed.
/// Why: reading them costs a read each; a player that streams at us is
/// not a player.
pub const HTTP_PLAYER_INPUT_BYTES_MAX: usize = 64 * 1024;

/// Messages waiting in one shard's inbox from the others. Why: frames of
/// every stream this shard relays pass through it; at 60 messages/s per
/// stream this is seconds of backlog, past which the shard is treated as a
/// slow subscriber of the sender. Worst case: this many frame handles.
pub const SHARD_INBOX_MESSAGES_MAX: usize = 4096;

/// A publish of a stream that is already published (takeover "reject")
/// waits up to this (ms) for the other publisher to go before it is
/// refused. Why: an encoder reconnecting closes its old connection and
/// publishes on a new one, which another shard may handle before the old
/// close is seen; a second or so covers that race (and a close in flight
/// on a loaded server) while a real duplicate still gets `BadName` soon.
pub const PUBLISH_BUSY_WAIT_MS: u64 = 1_000;

/// Commands refused in a row (a denied publish or play, an `_error`
/// answer to misuse) before the connection is closed; a granted publish
/// or play starts the count again. Why: a real client retries a refused
/// publish a few times (OBS and ffmpeg reconnect instead, on a new
/// connection), while a loop of hundreds on one connection is someone
/// guessing keys or burning our CPU; 32 also leaves room for a client
/// that asks past its [`STREAMS_PER_CONNECTION_MAX`] streams or sends a
/// few commands we do not know.
/// Worst case: this many refusals (each logged within the budget below)
/// per connection.
pub const REFUSALS_IN_A_ROW_MAX: u32 = 32;

// ---------------------------------------------------------------------------
// Logging: lines a peer can make us write (`shard::logs`)
// ---------------------------------------------------------------------------

/// Log lines one connection may cause at once. Why: a healthy connection
/// writes four or five (connect, publish or play, an unpublish, its close);
/// eight leaves room for a player that switches streams a few times. Past
/// it the connection's lines are counted, not written, and its close line
/// carries the count (the close line itself is always allowed by the
/// connection's budget, only the shard's can drop it).
pub const LOG_LINES_PER_CONNECTION_BURST: u32 = 8;

/// A connection earns one more line every this many ms. Why: a long-lived
/// player zapping every few minutes is never cut; a loop on one connection
/// writes six lines a minute instead of 133 000 a second.
pub const LOG_LINES_PER_CONNECTION_REFILL_MS: u64 = 10_000;

/// Peer-caused log lines one shard writes per second, sustained, over all
/// its connections. Why: a flood from many connections (a botnet, a
/// restart with thousands of encoders reconnecting) must not turn the
/// shard into a log writer; 20 lines/s per shard is readable by a person
/// and costs well under 1% of a core. Worst case: this rate, plus at most
/// one summary line per written line ("… and N more lines suppressed"),
/// plus a shard summary a second.
pub const LOG_LINES_PER_SHARD_PER_S: u32 = 20;

/// Lines a shard may write at once before its rate applies. Why: a
/// restart brings every client back within seconds; the first 40 lines
/// (two seconds' worth of the rate) show who came, the rest are counted
/// in summaries, so even a one-second flood stays near 50 lines a shard.
pub const LOG_LINES_PER_SHARD_BURST: u32 = 40;

/// Lines the non-blocking log writer (the server's `logging`) holds for the writer
/// thread before it drops lines (counted by `tracing-appender`). Why: a
/// shard never waits on stderr (a slow journald, a full pipe); 16 Ki lines
/// of at most a few hundred bytes (peer text is cut to
/// [`QUOTED_BYTES_MAX`]) is under 8 MiB, and more than the shards' whole
/// budget for minutes.
pub const LOG_QUEUE_LINES_MAX: usize = 16 * 1024;

// ---------------------------------------------------------------------------
// Relay: pulling from origins, pushing to them
// ---------------------------------------------------------------------------

/// A pull stops this long (ms) after its last player left, so a player
/// arriving meanwhile reuses it. Why: players zapping between streams come
/// back within seconds; holding an idle pull costs one origin connection.
pub const RELAY_IDLE_STOP_MS_DEFAULT: u64 = 5_000;

/// Connecting to an origin or push target, handshake to `Publish.Start` or
/// `Play.Start`, must take no longer (ms). Why: a dead origin must not
/// keep players waiting; a healthy one answers in milliseconds.
pub const RELAY_CONNECT_TIMEOUT_MS_DEFAULT: u64 = 5_000;

/// Retries after every origin (or a push target) failed wait twice as long
/// each time, up to this (ms). Why: an origin that is down for long is not
/// hammered; one that comes back is used within seconds.
pub const RELAY_BACKOFF_MS_MAX_DEFAULT: u64 = 10_000;

/// First wait before retrying (ms).
pub const RELAY_BACKOFF_MS_MIN: u64 = 250;

/// Origins or push targets one list may name. Why: failover walks the list
/// in order; past a handful, an operator wants a load balancer.
pub const RELAY_TARGETS_MAX: usize = 16;

/// Pulls running at once, server-wide, counting those in their idle-stop
/// period. Why: each holds an origin connection (a descriptor, counted in
/// the open-file budget checked at startup) and a stream's GOP cache; an
/// edge relays tens to hundreds of channels, while players asking for
/// names that do not exist must not open a socket each. Past it a play
/// that needs a new pull is answered `NetStream.Play.StreamNotFound`.
/// Worst case: this many descriptors and [`GOP_CACHE_BYTES_MAX_DEFAULT`]
/// each (2 GiB), reached only by as many distinct live origin streams.
pub const RELAY_PULLS_MAX_DEFAULT: usize = 512;

/// Pulls one connection may have started that still run or wait out their
/// idle stop. Why: a player watches one stream, a multiview player a few,
/// and a player zapping on one connection leaves each stream's pull alive
/// for [`RELAY_IDLE_STOP_MS_DEFAULT`]; eight covers zapping through eight
/// channels in five seconds. A connection playing a new name per `play`
/// holds this many origin connections, not thousands.
/// Worst case: this many pulls per connection, all within
/// [`RELAY_PULLS_MAX_DEFAULT`].
pub const RELAY_PULLS_PER_CONNECTION_MAX_DEFAULT: usize = 8;

/// A relay connection (pull or push) that has received nothing for this
/// long (ms) sends a ping (User Control PingRequest); nothing for as long
/// again closes it, and a pull fails over. Why: a live stream brings
/// frames every few tens of ms, and an origin answers a ping at once
/// (nginx-rtmp, ringcast), so ten silent seconds mean a dead or half-open
/// peer; without it a half-open origin keeps a pull "live" for ever.
/// Worst case: players of a pull whose origin went silent wait twice this.
pub const RELAY_PING_MS_DEFAULT: u64 = 5_000;

/// A flood of like relay events on one shard (plays refused at a pull
/// cap, pulls no origin could serve) is logged once, then at most once per
/// this many ms with the count since. Why: an attacker's thousands of
/// plays a second must not become as many log lines; one a second still
/// shows an operator what happens and how much.
pub const RELAY_LOG_BURST_MS: u64 = 1_000;

/// Bytes of replies (acknowledgements, ping responses) a relay connection
/// may have queued for its peer and not yet written. Why: a peer earns an
/// acknowledgement per 2.5 MB and a pong per ping, a few hundred bytes
/// between two of our writes; a peer that floods pings while we have
/// nothing to send (a quiet push) or while it does not read must not grow
/// a queue without bound. Past it the connection is closed.
/// Worst case: this many bytes per relay connection, plus the replies to
/// the one read that passed it (a read takes at most the client's input
/// buffer, tens of KiB, and a reply is no longer than what it answers).
pub const RELAY_REPLY_BACKLOG_BYTES_MAX: usize = 64 * 1024;

// ---------------------------------------------------------------------------
// Recording (the server's `record`)
// ---------------------------------------------------------------------------

/// Bytes of frames one recording may have handed to the recorder thread
/// that it has not taken yet, counted as frames are kept (wire bytes and
/// [`crate::media::FRAME_OVERHEAD_BYTES`]). Why: one thread writes every
/// recording's files, so a disk that pauses (a journal commit, another
/// process's `fsync`, a network filesystem's hiccup) must cost nothing:
/// 8 MiB holds 8 s of an 8 Mbit/s stream. A disk that cannot keep up
/// fills it within seconds; that recording is then stopped (its file
/// closed with what was written) and the stream's delivery goes on.
/// Worst case: this per recording, one recording per stream whose
/// source is on the server.
pub const RECORD_QUEUE_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Bytes the recorder thread gathers for one file before it writes them
/// (it also writes whenever it has nothing more to take). Why: a write
/// per frame is a hundred system calls a second per recording; 256 KiB
/// is a fraction of a second of any stream, so a crash loses little.
/// Worst case: this per recording, besides its queue.
pub const RECORD_WRITE_BATCH_BYTES: usize = 256 * 1024;

/// Keyframes the `keyframes` index of a recorded FLV's `onMetaData`
/// holds (two AMF0 numbers, 18 bytes, each; the space is reserved when
/// the file starts, see the server's `record::flv`). Why: a one-hour file
/// with a 2 s GOP has 1800 keyframes; 2048 reserve 36 KiB, under 1% of
/// such a file. A longer file keeps every second keyframe in its index,
/// then every fourth: players still seek, to a keyframe a little further
/// back. Worst case: 36 KiB of each FLV file.
pub const RECORD_FLV_KEYFRAMES_MAX: usize = 2048;

/// Bytes of the publisher's own `onMetaData` properties (its numbers,
/// booleans and short strings: picture size, frame rate, codecs,
/// encoder) a recorded FLV's `onMetaData` keeps. Why: encoders send a
/// few hundred bytes; a file published as is may carry a keyframe index
/// of its own, which means nothing in our file. Worst case: this much of
/// each FLV file's reserved head.
pub const RECORD_FLV_METADATA_BYTES_MAX: usize = 4096;

/// Bytes of an app or stream name that go into a recording's file name,
/// once sanitised. Why: a file name is at most 255 bytes on every Linux
/// filesystem, and a name comes from a peer (up to [`NAME_BYTES_MAX`]);
/// 128 leave room for the template's own text.
pub const RECORD_NAME_BYTES_MAX: usize = 128;

/// Names tried for one recording file: the template's, then with `-1`,
/// `-2`, ... before the extension. Why: a file is never overwritten, and
/// two files of a stream can start within the template's resolution (a
/// split, a republish within the second); past a hundred something else
/// is wrong (a template without `{stream}` or `{start}`).
pub const RECORD_NAME_TRIES_MAX: u32 = 100;

// ---------------------------------------------------------------------------
// Admin API (the control thread)
// ---------------------------------------------------------------------------

/// How long the control thread waits for a shard's answer (ms). Why: a
/// healthy shard answers between two of its own tasks, in microseconds; a
/// shard silent this long is stuck or drowning, and the API must answer
/// anyway (naming that shard) rather than hang with it.
pub const ADMIN_SHARD_TIMEOUT_MS: u64 = 2_000;

/// Admin queries waiting in one shard's inbox at once. Why: each request
/// asks every shard; a stuck shard must not collect an unbounded backlog
/// from a client polling it. Worst case: this many small messages.
pub const ADMIN_QUERIES_PER_SHARD_MAX: usize = 16;

/// Clients on one page of `/api/v1/clients` by default, and at most. Why:
/// a record is about 250 bytes of JSON, so a full page is 250 KB; a
/// shard's share of the work stays a short pass over its connections.
pub const ADMIN_CLIENTS_PAGE_DEFAULT: usize = 100;
pub const ADMIN_CLIENTS_PAGE_MAX: usize = 1_000;

/// Admin connections still open at shutdown get this long (ms) before they
/// are dropped. Why: a Prometheus scraper keeps its connection alive, and
/// shutdown must not wait for it.
pub const ADMIN_SHUTDOWN_GRACE_MS: u64 = 1_000;

/// Origins `admin_origins` may list. Why: each is a dashboard's address;
/// a list longer than a handful is a typo or a wish for `*`, which we do
/// not offer (any page could then drive the API from a browser).
pub const ADMIN_ORIGINS_MAX: usize = 16;

/// Bytes of the admin bearer token (`admin_token_file`), at least. Why: the
/// API can be reached from the network; 16 random characters are beyond
/// guessing at any request rate, shorter ones are not.
pub const ADMIN_TOKEN_BYTES_MIN: usize = 16;

/// Bytes of the admin bearer token, at most, and of the token file read.
/// Why: a token travels in every request's header; 4 KiB is past any
/// generated secret, and a mistaken path (a log, `/dev/zero`) fails fast
/// instead of being read whole.
pub const ADMIN_TOKEN_BYTES_MAX: usize = 4096;

/// Streams `/metrics` gives series of their own (`metrics_streams_max`),
/// by default and at most: the ones with the most players; the rest are
/// summed under `stream="_other"`. Why: each stream is five series in
/// every scrape and in Prometheus (a few KiB of its memory each, per
/// server), so per-stream series must not grow with what publishers
/// create. 100 covers what a dashboard shows and what alerts name on most
/// edges; at 10 000 a scrape is 3.7 MB of text (about 375 bytes per
/// stream, `benches/metrics.rs`) taking 12 ms to write, and past it the
/// stream names are better read from `/api/v1/streams`.
/// Worst case: this many streams' series in one scrape, picked from every
/// stream the shards report (a pass over each shard's stream table, as
/// `/api/v1/streams` makes).
pub const METRICS_STREAMS_DEFAULT: usize = 100;
pub const METRICS_STREAMS_MAX: usize = 10_000;

// ---------------------------------------------------------------------------
// Access control
// ---------------------------------------------------------------------------

/// An HTTP hook must answer within this (ms). Why: the client waits for it
/// (a publisher's encoder, a player's start), and a local auth service
/// answers in milliseconds; a hung one must not hold clients for longer
/// than a player tolerates before giving up.
pub const HOOK_TIMEOUT_MS_DEFAULT: u64 = 3_000;

/// Hook calls waiting for an answer, server-wide. Why: each holds a client
/// that is not yet reading; past this a flood of connects meets a slow
/// hook service, and further calls fail at once (the fail-open/closed rule
/// decides) instead of queueing without bound. Worst case: this many small
/// JSON bodies and their connections.
pub const HOOK_CALLS_MAX: usize = 1024;

/// Bytes of a hook's answer body that are read. Why: the status, the
/// `Location` header and, for SRS's format, a `0` or `{"code":0}` decide;
/// the body is read (to reuse the connection) but never kept beyond this.
pub const HOOK_ANSWER_BYTES_MAX: usize = 64 * 1024;

/// While hook notifications (`on_publish_done`, `on_play_done`) keep
/// failing, one failure is logged per this many ms, with the count of
/// those not logged. Why: each end of a publish or play notifies, so a
/// dead hook service under a flood of short plays would otherwise log one
/// line per play; an operator learns of the outage at once and of its
/// extent every ten seconds.
pub const HOOK_FAILURE_LOG_INTERVAL_MS: u64 = 10_000;

/// URLs one hook may list. Why: every URL is called for each event the
/// hook is for (all must allow), so a list multiplies each client's calls
/// and their share of [`HOOK_CALLS_MAX`]; past a handful an operator wants
/// one service that fans out.
pub const HOOK_URLS_MAX: usize = 8;

/// How often `on_update` asks about each publish and play, by default
/// (ms). Why: nginx-rtmp's `notify_update_timeout` default, which hook
/// services written for it expect.
pub const HOOK_UPDATE_INTERVAL_MS_DEFAULT: u64 = 30_000;

/// Keys or address blocks in one list. Why: each publish or play walks the
/// list; thousands of keys belong in a hook, not in a config file.
pub const ACCESS_LIST_MAX: usize = 1024;

// ---------------------------------------------------------------------------
// Exec on publish: programs run while a stream is published (`exec`)
// ---------------------------------------------------------------------------

/// Programs `exec_publish` keeps at once, server-wide: running, waiting
/// to be started again, or being stopped. Why: each is a process of its
/// own, typically an ffmpeg transcoding (a ladder takes a core or more)
/// or taking thumbnails of one stream; 64 is past what one machine
/// transcodes, and it bounds what a mistake costs: a program that
/// publishes back into an app that runs one starts another, and so on,
/// until this cap. Past it a publish goes on without its program (logged,
/// counted in `ringcast_exec_refusals_total`).
/// Worst case: this many processes, each with a stderr pipe, and a task,
/// a read buffer and a line of [`EXEC_LINE_BYTES_MAX`] each on the
/// supervisor thread.
pub const EXEC_CHILDREN_MAX: usize = 64;

/// Elements an `exec_publish` vector holds, the program included. Why: a
/// four-rung ladder with its options is about 100 arguments; past 256 it
/// is a script, which belongs in a file the vector names.
pub const EXEC_ARGS_MAX: usize = 256;

/// A program that ended (or could not start) while its stream is still
/// published is started again after this long (ms), twice as long each
/// time up to [`EXEC_BACKOFF_MS_MAX`]. Why: a program that fails at once
/// (an option it does not know, a missing binary) must not be forked in
/// a loop, and one that crashed once comes back half a second later.
pub const EXEC_BACKOFF_MS_MIN: u64 = 500;

/// The longest wait before a start again (ms). Why: a program failing for
/// long is tried twice a minute, not hammered, and comes back within 30 s
/// of its cause going.
pub const EXEC_BACKOFF_MS_MAX: u64 = 30_000;

/// A run that lasted this long (ms) was no crash loop: the next start
/// again waits [`EXEC_BACKOFF_MS_MIN`]. Why: a fork every 10 s costs
/// nothing, and a program that runs for minutes and then dies should not
/// wait long for a failure of hours ago.
pub const EXEC_RUN_HEALTHY_MS: u64 = 10_000;

/// A program told to stop (SIGTERM to its process group) gets this long
/// (ms) before SIGKILL. Why: ffmpeg closes its outputs (an MP4's index, a
/// playlist's end) within a second or two; five also keeps a server's
/// stop within 30 s after the drain and [`SHUTDOWN_GRACE_MS_DEFAULT`].
pub const EXEC_STOP_GRACE_MS: u64 = 5_000;

/// Lines of one program's stderr logged at once, then
/// [`EXEC_LOG_LINES_PER_S`] a second; the rest are counted, and the count
/// is logged once a second. Why: ffmpeg starts with a banner and its
/// streams (about 20 lines at its default level), then one progress line
/// a second or an error per frame when something is wrong; a program in
/// a loop must not drown the log. Worst case: [`EXEC_CHILDREN_MAX`] ×
/// this rate, plus a count a second each.
pub const EXEC_LOG_LINES_BURST: u32 = 20;
pub const EXEC_LOG_LINES_PER_S: u32 = 5;

/// Bytes of one stderr line logged; a longer line comes as several. Why:
/// a program's line (ffmpeg's longest are its stream descriptions) fits
/// in a few hundred bytes; one without an end must not grow a buffer.
pub const EXEC_LINE_BYTES_MAX: usize = 1024;

// ---------------------------------------------------------------------------
// Relations the code relies on
// ---------------------------------------------------------------------------

const _: () = assert!(MESSAGE_SIZE_MAX_DEFAULT <= MESSAGE_SIZE_PROTOCOL_MAX);
const _: () = assert!(PARTIAL_BYTES_MAX_DEFAULT >= MESSAGE_SIZE_MAX_DEFAULT);
// The per-type bounds are what is left of the message size once lowered
// to the configured minimum (4096), and a control message holds its largest
// legal body.
const _: () = assert!(CONTROL_MESSAGE_SIZE_MAX >= 6 && CONTROL_MESSAGE_SIZE_MAX < 4096);
const _: () = assert!(COMMAND_MESSAGE_SIZE_MAX <= DATA_MESSAGE_SIZE_MAX);
const _: () = assert!(DATA_MESSAGE_SIZE_MAX <= MESSAGE_SIZE_MAX_DEFAULT);
const _: () = assert!(CHUNK_SIZE_MIN <= CHUNK_SIZE_INITIAL && CHUNK_SIZE_INITIAL <= CHUNK_SIZE_MAX);
const _: () =
    assert!(CHUNK_SIZE_MIN <= CHUNK_SIZE_OUT_DEFAULT && CHUNK_SIZE_OUT_DEFAULT <= CHUNK_SIZE_MAX);
// Chunk stream ids 2..=65599 exist on the wire; the bound must leave room
// for the control stream and a publisher's audio, video and data streams.
const _: () = assert!(CHUNK_STREAMS_MAX >= 8 && CHUNK_STREAMS_MAX <= 65598);
const _: () = assert!(ACK_WINDOW_MIN <= ACK_WINDOW_DEFAULT);
const _: () = assert!(QUOTED_BYTES_MAX <= NAME_BYTES_MAX);
const _: () = assert!(AGGREGATE_MESSAGES_MAX <= SESSION_EVENTS_MAX);
// A tcUrl holds the app (query included), a scheme and a host.
const _: () = assert!(CONNECT_STRING_BYTES_MAX >= NAME_BYTES_MAX + 512);
const _: () = assert!(AMF_ITEMS_MAX >= AMF3_REFERENCE_TABLE_MAX);
// The slack alone fits the absolute caps, so every message has some budget.
const _: () = assert!(AMF_EXPANSION_PER_BYTE >= 1 && AMF_EXPANSION_SLACK <= AMF_ITEMS_MAX);
const _: () = assert!(AMF_EXPANSION_SLACK <= AMF_BYTES_MAX);
const _: () = assert!(PLAYER_QUEUE_BYTES_MAX_DEFAULT > GOP_CACHE_BYTES_MAX_DEFAULT);
const _: () = assert!(WRITE_BATCH_BYTES_MAX_DEFAULT <= PLAYER_QUEUE_BYTES_MAX_DEFAULT);
const _: () = assert!(PUBLISHER_READ_BUFFER_BYTES >= READ_BUFFER_BYTES);
const _: () = assert!(RELAY_BACKOFF_MS_MIN <= RELAY_BACKOFF_MS_MAX_DEFAULT);
const _: () = assert!(EXEC_BACKOFF_MS_MIN > 0 && EXEC_BACKOFF_MS_MIN <= EXEC_BACKOFF_MS_MAX);
const _: () = assert!(EXEC_CHILDREN_MAX > 0 && EXEC_ARGS_MAX > 0);
// The refill period is 1000 / rate ms: a whole, non-zero number.
const _: () = assert!(EXEC_LOG_LINES_PER_S > 0 && EXEC_LOG_LINES_PER_S <= 1000);
const _: () = assert!(EXEC_LOG_LINES_BURST > 0 && EXEC_LINE_BYTES_MAX > 0);
const _: () = assert!(RELAY_PULLS_PER_CONNECTION_MAX_DEFAULT <= RELAY_PULLS_MAX_DEFAULT);
// A pong (a 12-byte header and 6 bytes) and an acknowledgement must fit.
const _: () = assert!(RELAY_REPLY_BACKLOG_BYTES_MAX >= 4096);
const _: () = assert!(ADMIN_CLIENTS_PAGE_DEFAULT <= ADMIN_CLIENTS_PAGE_MAX);
const _: () = assert!(ADMIN_TOKEN_BYTES_MIN <= ADMIN_TOKEN_BYTES_MAX);
const _: () = assert!(METRICS_STREAMS_DEFAULT <= METRICS_STREAMS_MAX);
const _: () = assert!(LOG_LINES_PER_CONNECTION_BURST > 0 && LOG_LINES_PER_CONNECTION_REFILL_MS > 0);
// The shard's refill period is 1000 / rate ms: a whole, non-zero number.
const _: () = assert!(LOG_LINES_PER_SHARD_PER_S > 0 && LOG_LINES_PER_SHARD_PER_S <= 1000);
const _: () = assert!(LOG_LINES_PER_SHARD_BURST >= LOG_LINES_PER_CONNECTION_BURST);
const _: () = assert!(REFUSALS_IN_A_ROW_MAX > 1);
// A batch is gathered from frames the queue held.
const _: () = assert!(RECORD_WRITE_BATCH_BYTES <= RECORD_QUEUE_BYTES_MAX);
const _: () = assert!(RECORD_NAME_BYTES_MAX < 255 && RECORD_NAME_BYTES_MAX <= NAME_BYTES_MAX);
const _: () = assert!(RECORD_FLV_KEYFRAMES_MAX >= 2 && RECORD_FLV_KEYFRAMES_MAX % 2 == 0);
