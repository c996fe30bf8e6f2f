//! Links the system libhivex (Debian `libhivex-dev`).
fn main() {
    println!("cargo:rustc-link-lib=hivex");
}
