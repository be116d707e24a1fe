//! FLV tag inspection: stub, being written.
