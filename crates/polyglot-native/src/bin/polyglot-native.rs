//! `polyglot-native crypto|compress|text`: serves one of this crate's handlers as a
//! polyglot worker over the protocol (stdio, socket or gRPC, as the host asks).
//!
//! The worker answers under the module name the host gives in `POLYGLOT_MODULE` (its
//! manifest's `name`), or under the handler's own name (`crypto`, `compress`, `text`).
//! One binary serves all three so that the libraries are built and linked once.

use std::process::ExitCode;

use polyglot_native::{compress, crypto, text};

const USAGE: &str = "\
usage: polyglot-native <crypto|compress|text>

Serves one module of native operations as a polyglot worker. It is started by
polyglot-host from a module.json such as:

  {\"name\": \"crypto\", \"command\": \"polyglot-native\", \"args\": [\"crypto\"], ...}

crypto    blake3, encrypt, decrypt, deriveKey
compress  compress, decompress
text      jsonFormat, jsonValidate, regexFindAll, regexCount, regexReplace";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [which] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let named = |default: &str| {
        std::env::var(polyglot_protocol::env::MODULE).unwrap_or_else(|_| default.to_owned())
    };
    let worker = match which.as_str() {
        "crypto" => crypto::worker(named(crypto::MODULE)),
        "compress" => compress::worker(named(compress::MODULE)),
        "text" => text::worker(named(text::MODULE)),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("polyglot-native: unknown module {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    worker.serve()
}
