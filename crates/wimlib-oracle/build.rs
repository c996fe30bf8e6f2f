fn main() {
    // libwim is LGPL and dynamically linked; this crate is only a
    // dev-dependency of our crates (tests and benchmarks).
    println!("cargo:rustc-link-lib=dylib=wim");
}
