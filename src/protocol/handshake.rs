//! The RTMP handshake: stub, being written.
