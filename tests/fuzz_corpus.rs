//! Replays every fuzz target's corpus and past crashes on stable, so a
//! regression fails `cargo test` without nightly or cargo-fuzz.
//!
//! `tests/fuzz/corpus/<target>/` holds the minimised corpus of each target
//! (`cargo fuzz cmin`), `tests/fuzz/regressions/<target>/` the inputs that
//! once crashed it.

use std::fs;
use std::path::Path;

#[test]
fn every_fuzz_target_survives_its_corpus_and_past_crashes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    for (target, run) in ringcast::fuzzing::TARGETS {
        let mut replayed = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = fs::read_dir(root.join(dir).join(target)) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("readable corpus dir").path();
                let data = fs::read(&path).expect("readable corpus file");
                run(&data);
                replayed += 1;
            }
        }
        assert!(replayed > 0, "fuzz target {target} has no corpus to replay");
    }
}
