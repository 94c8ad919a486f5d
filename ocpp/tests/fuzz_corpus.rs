//! The fuzz corpus of `ocpp_frames` (`fuzz/corpus/ocpp_frames/`, seeds and past findings)
//! replayed through the fuzz target's own body, so `cargo test` keeps every finding fixed
//! without a nightly toolchain.

use std::path::Path;

#[test]
fn ocpp_frames_corpus_replays() {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/corpus/ocpp_frames"
    ));
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    for file in files {
        let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        eprintln!("{}", file.display());
        ctrl22_ocpp::fuzzing::frames(&data);
    }
}
