//! Compiles the C++ routines in `cpp/` together with the code `cxx` generates for the
//! bridge in `src/ffi.rs`, as C++17 with every warning an error.

fn main() {
    cxx_build::bridge("src/ffi.rs")
        .file("cpp/dsp.cc")
        .std("c++17")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile("polyglot-dsp");

    for path in ["src/ffi.rs", "cpp/dsp.h", "cpp/dsp.cc"] {
        println!("cargo:rerun-if-changed={path}");
    }
}
