//! Builds the C shim against the installed libntfs-3g headers and links
//! the library. The shim exists so that every struct field and macro we
//! touch is compiled from the real headers: no struct layout is copied by
//! hand into Rust.

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    println!("cargo:rerun-if-env-changed=NTFS3G_INCLUDE_DIR");
    let mut build = cc::Build::new();
    build.file("src/shim.c").warnings(true);
    if let Ok(dir) = std::env::var("NTFS3G_INCLUDE_DIR") {
        build.include(dir);
    }
    build.compile("tasq_ntfs3g_shim");
    println!("cargo:rustc-link-lib=ntfs-3g");
}
