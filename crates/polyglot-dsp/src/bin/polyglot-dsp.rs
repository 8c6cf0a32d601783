//! `polyglot-dsp`: serves the `dsp` handler (the C++ FIR filter, low-pass design and
//! resampler) as a polyglot worker over the protocol, for a host that runs the module
//! as a worker process rather than in its own process.
//!
//! The worker answers under the module name the host gives in `POLYGLOT_MODULE` (its
//! manifest's `name`), or `dsp`.

use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::args().len() > 1 {
        eprintln!("usage: polyglot-dsp (started by polyglot-host; takes no arguments)");
        return ExitCode::from(2);
    }
    let name = std::env::var(polyglot_protocol::env::MODULE)
        .unwrap_or_else(|_| polyglot_dsp::MODULE.to_owned());
    polyglot_dsp::worker(name).serve()
}
