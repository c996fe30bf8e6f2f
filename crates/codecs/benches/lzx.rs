//! lzx benchmark (placeholder until the codec lands).
mod common;
fn main() {
    let _ = common::corpus(1 << 20);
}
