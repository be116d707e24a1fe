//! The chunk stream codec: stub, being written.
