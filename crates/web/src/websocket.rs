//! RFC 6455 framing (filled in next).
