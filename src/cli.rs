//! Command line: stub, being written.
