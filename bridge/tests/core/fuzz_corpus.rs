//! The fuzz corpora (`fuzz/corpus/<target>/`, seeds and past findings) replayed through the
//! fuzz targets' own bodies (`ctrl22_bridge::fuzzing`), so `cargo test` keeps every finding
//! fixed without a nightly toolchain. The node firmware's corpora
//! (`node-firmware/fuzz/corpus/`) are its own crate's to replay.

use std::path::{Path, PathBuf};

use ctrl22_bridge::fuzzing;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    files
        .into_iter()
        .map(|file| {
            let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            (file, data)
        })
        .collect()
}

fn replay(target: &str, body: fn(&[u8])) {
    for (file, data) in corpus(target) {
        eprintln!("{}", file.display());
        body(&data);
    }
}

#[test]
fn ha_command_corpus_replays() {
    replay("ha_command", fuzzing::ha_command);
}

#[test]
fn api_body_corpus_replays() {
    replay("api_body", fuzzing::api_body);
}

#[test]
fn config_toml_corpus_replays() {
    replay("config_toml", fuzzing::config_toml);
}

#[test]
fn tcp_split_corpus_replays() {
    replay("tcp_split", fuzzing::tcp_split);
}

#[test]
fn solar_corpus_replays() {
    replay("solar", fuzzing::solar);
}
