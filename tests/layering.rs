//! Holds what Cargo cannot of the line the architecture depends on: the
//! pure layers (`ringcast-rtmp`, `ringcast-web` and the router) read no
//! clock and do no
//! I/O; within the server crate, arrows point down.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::{Path, PathBuf};

const FORBIDDEN: &[&str] = &[
    "tokio",
    "std::net",
    // `Duration` is a value; reading a clock takes one of these.
    "SystemTime",
    "Instant",
    "std::thread",
    "std::fs",
    "rand::",
    "getrandom",
    "async",
    ".await",
];

/// `word` appears in `code` as a whole token, not inside a longer name
/// (`self.awaiting` is not `.await`).
fn contains_token(code: &str, word: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(word).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + word.len()..].chars().next();
        let starts_ident = word.starts_with(ident);
        let ends_ident = word.ends_with(ident);
        let glued_before = starts_ident && before.is_some_and(ident);
        let glued_after = ends_ident && after.is_some_and(ident);
        !(glued_before || glued_after)
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_token_check_finds_whole_tokens_only() {
    assert!(contains_token("x.await;", ".await"));
    assert!(!contains_token("self.awaiting_answer", ".await"));
    assert!(contains_token("use tokio::net;", "tokio"));
    assert!(!contains_token("let instant_ms = 1;", "Instant"));
    assert!(contains_token("Instant::now()", "Instant"));
}

#[test]
fn the_pure_layers_do_no_io_and_read_no_clock() {
    // No async runtime is in ringcast-rtmp's dependency tree (a Cargo
    // fact); std's clock, threads, files and sockets are, so this looks.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("crates/rtmp/src"), &mut files);
    rust_files(&root.join("crates/web/src"), &mut files);
    rust_files(&root.join("src/router"), &mut files);
    assert!(files.len() > 20, "found the layer sources");
    let mut violations = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("readable source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if contains_token(code, word) {
                    violations.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "impure code in a pure layer:\n{}",
        violations.join("\n")
    );
}

#[test]
fn what_travels_to_a_shard_depends_on_none_of_its_handlers() {
    let shard = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/shard");
    // The messages sit below every handler; the mesh only carries them.
    let below = [(
        "messages.rs",
        &["super::", "crate::shard", "crate::http"][..],
    )];
    let carrier = [(
        "mesh.rs",
        &["super::query", "super::driver", "super::connection"][..],
    )];
    let mut violations = Vec::new();
    for (file, forbidden) in below.iter().chain(&carrier) {
        let text = fs::read_to_string(shard.join(file)).expect("readable source");
        // Its unit tests may use anything.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if forbidden.iter().any(|word| code.contains(word)) {
                violations.push(format!("shard/{file}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "an arrow pointing up:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_server_s_layers_name_none_above_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    // Each layer and what sits above it in the map (`src/lib.rs`): the
    // router decides without the shard that drives it, relays and the
    // recorder report through their own traits, the exec supervisor knows
    // shards only as holders of its handle, the admin API reports errors with the
    // config layer's helper, and only the CLI reaches the load generator.
    let rules = [
        (
            "router",
            &["crate::shard", "crate::relay", "ringcast_client"][..],
        ),
        ("relay", &["crate::shard"][..]),
        ("record", &["crate::shard"][..]),
        ("exec", &["crate::shard", "crate::http"][..]),
        ("http", &["crate::cli", "ringcast_bench"][..]),
        ("shard", &["ringcast_bench"][..]),
        ("config", &["ringcast_bench"][..]),
    ];
    let mut violations = Vec::new();
    for (layer, forbidden) in rules {
        let mut files = Vec::new();
        rust_files(&src.join(layer), &mut files);
        assert!(!files.is_empty(), "found the {layer} sources");
        for file in &files {
            let text = fs::read_to_string(file).expect("readable source");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if forbidden.iter().any(|word| code.contains(word)) {
                    violations.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "an arrow pointing up:\n{}",
        violations.join("\n")
    );
}
