//! espeak-ng (built from source by espeak-rs-sys) uses libsonic for speed changes but does not
//! link it. Link Debian's static libsonic into every binary that uses this crate, so the
//! binary has no run-time dependency on libsonic.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for dir in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
        "/usr/local/lib",
    ] {
        if std::path::Path::new(dir).join("libsonic.a").exists() {
            println!("cargo:rustc-link-search=native={dir}");
            println!("cargo:rustc-link-lib=static:-bundle=sonic");
            return;
        }
    }
    println!("cargo:warning=libsonic.a not found: install libsonic-dev (apt) or linking will fail");
}
