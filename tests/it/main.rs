//! The integration tests: one binary (one link of libtorch and OpenCV), a module per area. Run one area with
//! `cargo test --release --test it AREA::` (e.g. `bad_input::`).
mod common;

mod bad_input;
mod batch;
mod caption;
mod cli;
mod devices;
mod download;
mod eval;
mod explain;
mod formats;
mod fuzz_corpus;
mod no_silent_loss;
mod own_model;
mod parity;
mod precision;
mod presets;
mod pth_bombs;
mod shard;
mod threads;
mod video;
mod window;
mod zoo;
