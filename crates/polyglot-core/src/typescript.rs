//! TypeScript and JavaScript workers: a manifest's `.ts` or `.js` entry (its `path`, or a
//! `fallback` file) runs through Node and the TypeScript SDK (`typescript/` in this
//! repository, the npm package `@polyglot/worker`), a `.ts` entry compiled first.
//!
//! How a worker finds the SDK: the runtime starts `node <sdk>/dist/src/run.js <file>`
//! (the SDK's launcher, which serves the file's exported functions or lets a file that
//! serves itself do so), and links `<module>/.polyglot/node_modules/@polyglot/worker` to
//! the SDK folder. Compiled output lives under `<module>/.polyglot/`, so Node's ordinary
//! lookup of `node_modules` finds the link from there, for CommonJS and ES modules alike;
//! `NODE_PATH` points at the same folder for a plain `.js` file elsewhere in the module
//! (CommonJS only: ES modules ignore `NODE_PATH`). Nothing is installed at run time and
//! nothing is copied: the SDK must have been built (`npm ci && npm run build` in
//! `typescript/`, which `scripts/test.sh` does). The SDK folder is, in order:
//! `POLYGLOT_TYPESCRIPT_SDK` in the host's environment; a `typescript/` folder holding
//! the package beside the module folder or one of its parents (a checkout, or a deployed
//! tree keeping the repository's layout); the `typescript/` folder of the source tree the
//! host was built from.
//!
//! How a `.ts` file is compiled: with the SDK's pinned `tsc` (its devDependency), once per
//! content. The cache key hashes (BLAKE3) every TypeScript source of the module folder,
//! its `package.json`, `package-lock.json` and `tsconfig.json`, the SDK's declarations,
//! the compiler's version and the settings below; the output goes to
//! `<module>/.polyglot/ts-cache/<hash>/out/`, written under a temporary name and renamed
//! into place, so a host never runs half an output and two hosts compiling the same folder
//! at once do the work once (a lock file) and agree. A folder whose sources changed gets
//! a new entry; the older ones of the same file are removed. The compile runs at load, as
//! part of the module's build, after its own `build` step (which may install the npm
//! packages the file imports): a file that does not compile is an error naming each
//! `file:line:column` and tsc's message, the module (or that fallback) is not started,
//! and the module's other implementations keep serving.
//!
//! Settings: a module folder's own `tsconfig.json` is extended when there is one;
//! without one, the SDK's strict settings (`strict`, `noUncheckedIndexedAccess`, ...).
//! Either way the output is Node's (`module` and `moduleResolution` `nodenext`: a file is
//! CommonJS or an ES module as its `package.json` says), with source maps (stack traces
//! name `.ts` lines), and `@polyglot/worker` resolves to the SDK's declarations.
//! A module that wants its own compilation has its `build` step compile, and names the
//! `.js` it produces as its `path` or fallback.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::error::BuildError;
use crate::manifest::{Manifest, Program};

/// The host's environment variable naming the TypeScript SDK's folder.
pub const SDK_ENV: &str = "POLYGLOT_TYPESCRIPT_SDK";

/// The SDK's npm package name, as worker files import it.
pub const SDK_PACKAGE: &str = "@polyglot/worker";

/// The SDK's launcher, inside its folder.
const LAUNCHER: &str = "dist/src/run.js";

/// The TypeScript compiler, inside the SDK's folder (its pinned devDependency).
const TSC: &str = "node_modules/typescript/bin/tsc";

/// The runtime's folder inside a module folder: hidden, so neither source stamps nor
/// `serve --watch` take what is written there for a change.
const STATE_DIR: &str = ".polyglot";

/// Where compiled output goes, inside [`STATE_DIR`].
const CACHE_DIR: &str = "ts-cache";

/// The `node_modules` folder holding the link to the SDK, inside [`STATE_DIR`].
const LINK_DIR: &str = "node_modules";

/// A compile that runs longer than this is stopped: tsc checks a worker's files in well
/// under a second (the native compiler of TypeScript 7; a few seconds for the JavaScript
/// one); two minutes leaves room for a cold disk and a loaded machine without letting a
/// hung compiler hold a module's start for ever.
pub const COMPILE_TIMEOUT: Duration = Duration::from_secs(120);

/// The diagnostics an error shows at most: enough to see what is wrong, few enough to read
/// in a log.
const MAX_DIAGNOSTICS: usize = 30;

/// Bumped whenever what is compiled changes without the inputs changing (the generated
/// settings, the cache layout): every entry is then compiled again.
const CACHE_FORMAT: &str = "polyglot ts-cache 1";

/// The strict settings a module folder without its own `tsconfig.json` is compiled with:
/// those of the SDK itself.
const STRICT_OPTIONS: &str = r#""strict": true,
    "noUncheckedIndexedAccess": true,
    "noImplicitOverride": true,
    "noImplicitReturns": true,
    "noFallthroughCasesInSwitch": true,
    "useUnknownInCatchVariables": true,
    "forceConsistentCasingInFileNames": true,
    "skipLibCheck": true,
    "target": "ES2022",
    "lib": ["ES2024"],"#;

/// A worker entry run by Node: what [`prepare`] turns into the SDK's launcher.
struct NodeEntry<'a> {
    /// The entry file (absolute, inside the module folder).
    file: &'a Path,
    /// The manifest's own arguments, after the file.
    extra: &'a [String],
}

/// The entry of a program the manifest made for a Node file (`node <absolute file>
/// [args]`, from `path` or a fallback file); `None` for any other program, such as a
/// `command` written in the manifest.
fn node_entry(p: &Program) -> Option<NodeEntry<'_>> {
    if p.command.as_os_str() != "node" {
        return None;
    }
    let (first, extra) = p.args.split_first()?;
    let file = Path::new(first);
    let node_file = matches!(
        file.extension().and_then(|e| e.to_str()),
        Some("ts" | "mts" | "cts" | "js" | "mjs" | "cjs")
    );
    (file.is_absolute() && node_file).then_some(NodeEntry { file, extra })
}

/// Whether `file` is TypeScript source, which runs only once compiled.
fn is_typescript(file: &Path) -> bool {
    matches!(
        file.extension().and_then(|e| e.to_str()),
        Some("ts" | "mts" | "cts")
    ) && !file.to_string_lossy().ends_with(".d.ts")
}

/// The manifest a Node worker of `m` is started from: its program the SDK's launcher
/// (`node --enable-source-maps <sdk>/dist/src/run.js <file> [args]`), its `.ts` entry
/// compiled (see the module docs), `NODE_PATH` set. `None` when `m` is not run by Node.
///
/// # Errors
/// A [`BuildError`]: the SDK is missing or not built, or the file does not compile (each
/// diagnostic with its file, line and column).
pub(crate) async fn prepare(m: &Manifest) -> Result<Option<Manifest>, BuildError> {
    let Some(entry) = node_entry(&m.program) else {
        return Ok(None);
    };
    let fail = |command: String, reason: String, output: Vec<String>| BuildError {
        module: m.name.clone(),
        command,
        reason,
        output,
    };
    let sdk = sdk_dir(&m.dir).map_err(|why| fail("node".into(), why, Vec::new()))?;
    let launcher = sdk.join(LAUNCHER);
    if !launcher.is_file() {
        return Err(fail(
            "node".into(),
            format!(
                "cannot run {}: the TypeScript SDK at {} is not built (run `npm ci && npm run \
                 build` there)",
                rel(&m.dir, entry.file),
                sdk.display()
            ),
            Vec::new(),
        ));
    }
    let state = m.dir.join(STATE_DIR);
    link_sdk(&state.join(LINK_DIR), &sdk).map_err(|e| {
        fail(
            "node".into(),
            format!(
                "cannot link the TypeScript SDK into {}: {e}",
                state.join(LINK_DIR).display()
            ),
            Vec::new(),
        )
    })?;
    let file = if is_typescript(entry.file) {
        compile(m, entry.file, &sdk).await?
    } else {
        entry.file.to_path_buf()
    };
    let mut launch = m.clone();
    let mut args = vec![
        "--enable-source-maps".to_owned(),
        launcher.display().to_string(),
        file.display().to_string(),
    ];
    args.extend(entry.extra.iter().cloned());
    launch.program = Program {
        command: PathBuf::from("node"),
        args,
    };
    let link_dir = state.join(LINK_DIR).display().to_string();
    let node_path = match m.env.get("NODE_PATH") {
        Some(own) if !own.is_empty() => format!("{link_dir}:{own}"),
        _ => link_dir,
    };
    launch.env.insert("NODE_PATH".into(), node_path);
    Ok(Some(launch))
}

/// The TypeScript SDK's folder for a module in `dir` (see the module docs).
fn sdk_dir(dir: &Path) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(SDK_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if is_sdk(&p) {
            Ok(p)
        } else {
            Err(format!(
                "{SDK_ENV}={} is not the TypeScript SDK (no package.json of {SDK_PACKAGE} there)",
                p.display()
            ))
        };
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../typescript");
    dir.ancestors()
        .map(|a| a.join("typescript"))
        .chain(std::iter::once(built_from))
        .find(|p| is_sdk(p))
        .map(|p| p.canonicalize().unwrap_or(p))
        .ok_or_else(|| {
            format!(
                "the TypeScript SDK ({SDK_PACKAGE}) was not found: not in {SDK_ENV}, not in a \
                 typescript/ folder beside {} or its parents; set {SDK_ENV} to the SDK's folder",
                dir.display()
            )
        })
}

/// Whether `p` is the SDK's package folder.
fn is_sdk(p: &Path) -> bool {
    std::fs::read_to_string(p.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v["name"] == SDK_PACKAGE)
}

/// Makes `<node_modules>/@polyglot/worker` a link to `sdk`, replacing a link elsewhere
/// (atomically: a new link renamed over the old one).
fn link_sdk(node_modules: &Path, sdk: &Path) -> std::io::Result<()> {
    let (scope, name) = SDK_PACKAGE.split_once('/').expect("a scoped package name");
    let link = node_modules.join(scope).join(name);
    if std::fs::read_link(&link).is_ok_and(|t| t == sdk) {
        return Ok(());
    }
    std::fs::create_dir_all(node_modules.join(scope))?;
    // Unique per call, not only per process: two runtimes of one process may link the
    // same module at once (a fallback shared by two hosts in one test binary, say).
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = node_modules
        .join(scope)
        .join(format!(".{name}.{}.{n}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(sdk, &tmp)?;
    std::fs::rename(&tmp, &link).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// `file` relative to `dir`, for messages.
fn rel(dir: &Path, file: &Path) -> String {
    file.strip_prefix(dir).unwrap_or(file).display().to_string()
}

/// Compiles `file` (a `.ts` entry of `m`) into the cache, or finds it there; returns the
/// compiled `.js` file.
async fn compile(m: &Manifest, file: &Path, sdk: &Path) -> Result<PathBuf, BuildError> {
    let dir = m.dir.clone();
    let entry = rel(&dir, file);
    let tsc = sdk.join(TSC);
    let command = |tsconfig: &Path| format!("node {} -p {}", tsc.display(), tsconfig.display());
    let fail = |command: String, reason: String, output: Vec<String>| BuildError {
        module: m.name.clone(),
        command,
        reason,
        output,
    };
    if !tsc.is_file() {
        return Err(fail(
            format!("node {}", tsc.display()),
            format!(
                "cannot compile {entry}: no TypeScript compiler at {} (run `npm ci` in {})",
                tsc.display(),
                sdk.display()
            ),
            Vec::new(),
        ));
    }
    let cache = dir.join(STATE_DIR).join(CACHE_DIR);
    let io = |what: &str, e: std::io::Error| {
        fail(
            command(&cache.join("tsconfig.json")),
            format!("cannot compile {entry}: {what}: {e}"),
            Vec::new(),
        )
    };
    let (dir2, file2, sdk2) = (dir.clone(), file.to_path_buf(), sdk.to_path_buf());
    let key = tokio::task::spawn_blocking(move || cache_key(&dir2, &file2, &sdk2))
        .await
        .map_err(|e| io("hashing the sources", std::io::Error::other(e)))?;
    let done = cache.join(&key);
    let output = done.join("out").join(compiled_name(Path::new(&entry)));
    if output.is_file() {
        return Ok(output);
    }
    std::fs::create_dir_all(&cache).map_err(|e| io("creating the cache", e))?;
    let _lock = lock(&cache.join(".lock"))
        .await
        .map_err(|e| io("taking the cache lock", e))?;
    if output.is_file() {
        return Ok(output); // compiled by another host meanwhile
    }
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{key}."))
        .tempdir_in(&cache)
        .map_err(|e| io("creating a temporary folder", e))?;
    let tsconfig = tmp.path().join("tsconfig.json");
    let config = tsconfig_text(&dir, file, sdk, &tmp.path().join("out"));
    std::fs::write(&tsconfig, config).map_err(|e| io("writing its tsconfig.json", e))?;
    std::fs::write(
        tmp.path().join("package.json"),
        format!("{{\"type\": \"{}\"}}\n", module_type(file)),
    )
    .map_err(|e| io("writing its package.json", e))?;
    std::fs::write(tmp.path().join("source"), &entry).map_err(|e| io("writing its source", e))?;
    tracing::info!(module = %m.name, file = %entry, "compiling TypeScript");
    let run = Command::new("node")
        .arg(&tsc)
        .arg("-p")
        .arg(&tsconfig)
        .args(["--pretty", "false"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = run.map_err(|e| {
        fail(
            command(&tsconfig),
            format!("cannot compile {entry}: cannot run node: {e}"),
            Vec::new(),
        )
    })?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let wait = async {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (ra, rb, status) = tokio::join!(
            out.read_to_end(&mut a),
            err.read_to_end(&mut b),
            child.wait()
        );
        ra.and(rb)?;
        a.extend_from_slice(&b);
        Ok::<_, std::io::Error>((status?, a))
    };
    let (status, text) = match tokio::time::timeout(COMPILE_TIMEOUT, wait).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(io("running tsc", e)),
        Err(_) => {
            return Err(fail(
                command(&tsconfig),
                format!(
                    "compiling {entry} did not finish within {} s",
                    COMPILE_TIMEOUT.as_secs()
                ),
                Vec::new(),
            ))
        }
    };
    let text = String::from_utf8_lossy(&text);
    if !status.success()
        || !tmp
            .path()
            .join("out")
            .join(compiled_name(Path::new(&entry)))
            .is_file()
    {
        let diagnostics = diagnostics(&text);
        let lines: Vec<String> = if diagnostics.is_empty() {
            text.lines().map(str::to_owned).collect()
        } else {
            diagnostics
        };
        let reason = match lines.first() {
            Some(first) => format!(
                "TypeScript {entry} does not compile ({} error{}): {first}",
                lines.len(),
                if lines.len() == 1 { "" } else { "s" }
            ),
            None => format!(
                "TypeScript {entry} does not compile: tsc failed with {}",
                crate::process::describe_exit(&status)
            ),
        };
        return Err(fail(
            command(&tsconfig),
            reason,
            lines.into_iter().take(MAX_DIAGNOSTICS).collect(),
        ));
    }
    let tmp = tmp.keep();
    if let Err(e) = std::fs::rename(&tmp, &done) {
        // Another host put the same output there first: keep it.
        let _ = std::fs::remove_dir_all(&tmp);
        if !output.is_file() {
            return Err(io("moving the output into the cache", e));
        }
    }
    prune(&cache, &key, &entry);
    tracing::info!(module = %m.name, file = %entry, cache = %done.display(), "compiled TypeScript");
    Ok(output)
}

/// The output's name for a source: `.ts` to `.js`, `.mts` to `.mjs`, `.cts` to `.cjs`.
fn compiled_name(source: &Path) -> PathBuf {
    let ext = match source.extension().and_then(|e| e.to_str()) {
        Some("mts") => "mjs",
        Some("cts") => "cjs",
        _ => "js",
    };
    source.with_extension(ext)
}

/// Whether Node and tsc treat `file` as CommonJS or an ES module: the `type` of the nearest
/// `package.json` above it, written beside the output so that Node reads the output as tsc
/// wrote it.
fn module_type(file: &Path) -> &'static str {
    for dir in file.ancestors().skip(1) {
        let Ok(text) = std::fs::read_to_string(dir.join("package.json")) else {
            continue;
        };
        let kind = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["type"].as_str().map(str::to_owned));
        return if kind.as_deref() == Some("module") {
            "module"
        } else {
            "commonjs"
        };
    }
    "commonjs"
}

/// The `tsconfig.json` of one compile (see the module docs).
fn tsconfig_text(dir: &Path, file: &Path, sdk: &Path, out: &Path) -> String {
    let own = dir.join("tsconfig.json");
    let extends = if own.is_file() {
        format!("\"extends\": {},\n  ", json(&own))
    } else {
        String::new()
    };
    let strict = if own.is_file() { "" } else { STRICT_OPTIONS };
    let mut type_roots = Vec::new();
    if dir.join("node_modules/@types").is_dir() {
        type_roots.push(json(&dir.join("node_modules/@types")));
    }
    type_roots.push(json(&sdk.join("node_modules/@types")));
    format!(
        r#"{{
  {extends}"compilerOptions": {{
    {strict}
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "rootDir": {root},
    "outDir": {out},
    "noEmit": false,
    "noEmitOnError": true,
    "emitDeclarationOnly": false,
    "declaration": false,
    "composite": false,
    "incremental": false,
    "sourceMap": true,
    "types": ["node"],
    "typeRoots": [{type_roots}],
    "paths": {{ "{SDK_PACKAGE}": [{sdk}] }}
  }},
  "files": [{file}],
  "include": []
}}
"#,
        root = json(dir),
        out = json(out),
        type_roots = type_roots.join(", "),
        sdk = json(sdk),
        file = json(file),
    )
}

/// A path as a JSON string.
fn json(p: &Path) -> String {
    serde_json::Value::String(p.display().to_string()).to_string()
}

/// The cache key of compiling `file` in module folder `dir` with the SDK in `sdk`: a
/// BLAKE3 hash, in hex, of everything the output depends on (see the module docs).
fn cache_key(dir: &Path, file: &Path, sdk: &Path) -> String {
    let mut h = blake3::Hasher::new();
    let mut add = |label: &str, bytes: &[u8]| {
        h.update(&(label.len() as u64).to_le_bytes());
        h.update(label.as_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    add("format", CACHE_FORMAT.as_bytes());
    add("entry", rel(dir, file).as_bytes());
    // The settings without the temporary output folder, which changes every time.
    add(
        "settings",
        tsconfig_text(dir, file, sdk, Path::new("out")).as_bytes(),
    );
    add("module type", module_type(file).as_bytes());
    for f in [
        sdk.join("package.json"),
        sdk.join("node_modules/typescript/package.json"),
        dir.join("package.json"),
        dir.join("package-lock.json"),
        dir.join("tsconfig.json"),
    ] {
        add(
            &f.display().to_string(),
            &std::fs::read(&f).unwrap_or_default(),
        );
    }
    let mut files = Vec::new();
    sources(&sdk.join("dist/src"), &mut files);
    sources(dir, &mut files);
    files.sort();
    for f in files {
        add(
            &f.display().to_string(),
            &std::fs::read(&f).unwrap_or_default(),
        );
    }
    h.finalize().to_hex()[..32].to_owned()
}

/// Folders deeper than this below a module folder are not searched for sources: deeper
/// than any real source tree, and a bound on a loop of symbolic links.
const MAX_SOURCE_DEPTH: usize = 32;

/// The TypeScript sources (and declarations) under `dir`, skipping hidden entries and the
/// folders of builds and tools, following symbolic links (a linked folder's sources are
/// compiled too).
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    sources_below(dir, out, 0);
}

fn sources_below(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = e.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if depth < MAX_SOURCE_DEPTH && !crate::build::NOT_SOURCES.contains(&name.as_ref()) {
                sources_below(&path, out, depth + 1);
            }
        } else if [".ts", ".mts", ".cts", ".tsx"]
            .iter()
            .any(|x| name.ends_with(x))
        {
            out.push(path);
        }
    }
}

/// Removes the cache entries of `entry` other than `keep`: each compile of a file
/// replaces the one before. Also removes the temporary folders of compiles that never
/// finished (a host killed meanwhile): compiles run under the cache's lock, which the
/// caller holds, so no other one is running.
fn prune(cache: &Path, keep: &str, entry: &str) {
    let Ok(list) = std::fs::read_dir(cache) else {
        return;
    };
    for e in list.flatten() {
        let name = e.file_name();
        let path = e.path();
        if name == keep || name == ".lock" {
            continue;
        }
        let stale = if name.to_string_lossy().starts_with('.') {
            path.is_dir()
        } else {
            std::fs::read_to_string(path.join("source")).is_ok_and(|s| s == entry)
        };
        if stale {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Takes the cache's lock file (released when dropped): one compile of a folder at a time,
/// across threads and processes.
async fn lock(path: &Path) -> std::io::Result<std::fs::File> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// tsc's diagnostics (`file(line,col): error TS1234: message`, with `--pretty false`)
/// written as `file:line:column: error TS1234: message`, the form editors and terminals
/// link; continuation lines (a message's details) are kept, indented.
fn diagnostics(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(d) = diagnostic(line) {
            out.push(d);
        } else if line.starts_with(' ') {
            if let Some(last) = out.last_mut() {
                last.push('\n');
                last.push_str(line);
            }
        } else if line.starts_with("error TS") {
            out.push(line.to_owned());
        }
    }
    out
}

/// One diagnostic line, `file(line,col): rest`, as `file:line:col: rest`.
fn diagnostic(line: &str) -> Option<String> {
    let (head, rest) = line.split_once("): ")?;
    let (file, pos) = head.rsplit_once('(')?;
    let (l, c) = pos.split_once(',')?;
    if file.is_empty() || l.parse::<u32>().is_err() || c.parse::<u32>().is_err() {
        return None;
    }
    Some(format!("{file}:{l}:{c}: {rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_name_file_line_and_column() {
        let text = "fallback/index.ts(7,13): error TS2322: Type 'string' is not assignable to type 'number'.\n\
                    lib/a (1).ts(120,1): error TS1005: ';' expected.\n  details of the error\n\n\
                    error TS5083: Cannot read file 'x'.\n";
        assert_eq!(
            diagnostics(text),
            [
                "fallback/index.ts:7:13: error TS2322: Type 'string' is not assignable to type 'number'.",
                "lib/a (1).ts:120:1: error TS1005: ';' expected.\n  details of the error",
                "error TS5083: Cannot read file 'x'.",
            ]
        );
    }

    #[test]
    fn only_node_files_of_the_manifest_go_through_the_launcher() {
        let prog = |cmd: &str, args: &[&str]| Program {
            command: PathBuf::from(cmd),
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        let p = prog("node", &["/m/fallback/index.ts", "--x"]);
        let e = node_entry(&p).expect("a .ts file");
        assert_eq!(
            (e.file, e.extra),
            (Path::new("/m/fallback/index.ts"), &["--x".to_owned()][..])
        );
        assert!(node_entry(&prog("node", &["/m/w.mjs"])).is_some());
        // A command the manifest wrote itself is run as written.
        assert!(node_entry(&prog("node", &["worker.js"])).is_none());
        assert!(node_entry(&prog("node", &["--inspect", "/m/w.js"])).is_none());
        assert!(node_entry(&prog("python3", &["/m/w.py"])).is_none());
        assert!(is_typescript(Path::new("/m/a.ts")) && !is_typescript(Path::new("/m/a.d.ts")));
        assert_eq!(compiled_name(Path::new("f/a.mts")), Path::new("f/a.mjs"));
    }

    #[test]
    fn linking_the_sdk_from_many_threads_at_once_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = dir.path().join("sdk");
        std::fs::create_dir(&sdk).unwrap();
        let node_modules = dir.path().join("node_modules");
        for _ in 0..20 {
            let _ = std::fs::remove_dir_all(&node_modules);
            let results: Vec<_> = std::thread::scope(|s| {
                let all: Vec<_> = (0..8)
                    .map(|_| s.spawn(|| link_sdk(&node_modules, &sdk)))
                    .collect();
                all.into_iter().map(|t| t.join().unwrap()).collect()
            });
            for r in results {
                r.unwrap();
            }
            let link = node_modules.join(SDK_PACKAGE);
            assert_eq!(std::fs::read_link(&link).unwrap(), sdk);
            let left: Vec<_> = std::fs::read_dir(link.parent().unwrap())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(left.len(), 1, "temporary links left behind: {left:?}");
        }
    }

    #[test]
    fn the_cache_key_follows_the_sources_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = tempfile::tempdir().unwrap();
        let file = dir.path().join("worker.ts");
        std::fs::write(&file, "export const a = 1;\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let first = cache_key(dir.path(), &file, sdk.path());
        assert_eq!(first, cache_key(dir.path(), &file, sdk.path()));
        // Not TypeScript, or in a folder of outputs: no new compile.
        std::fs::write(dir.path().join("notes.txt"), "y").unwrap();
        std::fs::create_dir(dir.path().join("node_modules")).unwrap();
        std::fs::write(dir.path().join("node_modules/x.ts"), "1").unwrap();
        assert_eq!(first, cache_key(dir.path(), &file, sdk.path()));
        // A source the entry may import: a new compile.
        std::fs::write(dir.path().join("helper.ts"), "export {};\n").unwrap();
        let second = cache_key(dir.path(), &file, sdk.path());
        assert_ne!(first, second);
        std::fs::write(&file, "export const a = 2;\n").unwrap();
        assert_ne!(second, cache_key(dir.path(), &file, sdk.path()));
    }
}
