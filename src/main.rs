//! The `ringcast` command. The server (`ringcast serve`) is being built on
//! the protocol and session layers that this crate already has.

fn main() {
    eprintln!(
        "ringcast {}: the protocol core is in place; `ringcast serve` is not implemented yet",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
