//! The Kubernetes manifests of `deploy/kubernetes`, checked against what the host really
//! accepts: the ConfigMap's `polyglot.toml` through the real binary, its `module.json`
//! files through `polyglot_core::Manifest`, mounted where the config says the modules
//! are; the remote worker's `endpoint` is a Service of the manifests; and the shutdown
//! timing (preStop, shutdown-delay, drain-timeout, grace period) and ports agree.
//! (`scripts/test.sh` validates the same files against the Kubernetes schemas.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use polyglot_core::Manifest;
use serde_yaml_ng::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes")
}

/// Every resource file, by file name (the kustomization apart).
fn resources() -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.ends_with(".yaml") && name != "kustomization.yaml" {
            let text = std::fs::read_to_string(&path).unwrap();
            let v: Value = serde_yaml_ng::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            all.insert(name, v);
        }
    }
    all
}

fn find<'a>(all: &'a BTreeMap<String, Value>, kind: &str, name: &str) -> &'a Value {
    all.values()
        .find(|v| v["kind"].as_str() == Some(kind) && v["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/kubernetes"))
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v:?}"))
}

fn secs(v: &Value, what: &str) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v:?}"))
}

/// The container `name` of a Deployment.
fn container<'a>(deployment: &'a Value, name: &str) -> &'a Value {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// The port number of a container's port named `name`.
fn container_port(c: &Value, name: &str) -> u64 {
    let port = c["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no port {name}"));
    secs(&port["containerPort"], "containerPort")
}

fn env_value<'a>(c: &'a Value, name: &str) -> &'a Value {
    c["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no env {name}"))
}

/// A setting of `--print-config`'s output, as TOML.
fn printed(config: &toml::Table, key: &str) -> String {
    match config.get(key) {
        Some(toml::Value::String(s)) => s.clone(),
        other => panic!("{key} in the printed config: {other:?}"),
    }
}

fn duration(s: &str) -> Duration {
    humantime::parse_duration(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

#[test]
fn the_kustomization_lists_every_resource_file() {
    let text = std::fs::read_to_string(dir().join("kustomization.yaml")).unwrap();
    let k: Value = serde_yaml_ng::from_str(&text).unwrap();
    let listed: Vec<&str> = k["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let files: Vec<String> = resources().into_keys().collect();
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, files, "kustomization.yaml's resources");
}

#[test]
fn the_configmap_is_what_the_host_and_the_loader_accept_where_it_is_mounted() {
    let all = resources();
    let cm = find(&all, "ConfigMap", "polyglot-host-config");
    let host = find(&all, "Deployment", "polyglot-host");
    let c = container(host, "host");
    let spec = &host["spec"]["template"]["spec"];

    // The ConfigMap is mounted where POLYGLOT_CONFIG points, each key at its path.
    let mount = c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"].as_str() == Some("config"))
        .expect("the config volume is mounted");
    let mount_path = Path::new(str_of(&mount["mountPath"], "mountPath"));
    let volume = spec["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"].as_str() == Some("config"))
        .unwrap();
    assert_eq!(
        volume["configMap"]["name"].as_str(),
        Some("polyglot-host-config")
    );
    let root = tempfile::tempdir().unwrap();
    let data = cm["data"].as_mapping().unwrap();
    let items = volume["configMap"]["items"].as_sequence().unwrap();
    assert_eq!(
        items.len(),
        data.len(),
        "every key of the ConfigMap is mounted"
    );
    for item in items {
        let key = str_of(&item["key"], "key");
        let text = str_of(&data[key], key);
        let path = root.path().join(str_of(&item["path"], "path"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    let config_path = str_of(&env_value(c, "POLYGLOT_CONFIG")["value"], "POLYGLOT_CONFIG");
    let config_file = root.path().join(
        Path::new(config_path)
            .strip_prefix(mount_path)
            .expect("under the mount"),
    );
    assert!(config_file.is_file(), "{config_path} is in the ConfigMap");
    assert_eq!(
        env_value(c, "POLYGLOT_API_KEY")["valueFrom"]["secretKeyRef"]["key"].as_str(),
        Some("api-key"),
        "the API key comes from a Secret"
    );

    // The host accepts the file.
    let out = Command::new(env!("CARGO_BIN_EXE_polyglot-host"))
        .arg("--config")
        .arg(&config_file)
        .args(["serve", "--print-config"])
        .env_remove("POLYGLOT_API_KEY")
        .current_dir(root.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: toml::Table = String::from_utf8(out.stdout).unwrap().parse().unwrap();

    // The modules it names are the ConfigMap's module.json files, each valid.
    let modules = Path::new(&printed(&config, "modules")).to_path_buf();
    let modules = root.path().join(
        modules
            .strip_prefix(mount_path)
            .expect("the modules are in the ConfigMap"),
    );
    let mut loaded = Vec::new();
    for entry in std::fs::read_dir(&modules).unwrap() {
        let m = Manifest::load(&entry.unwrap().path()).unwrap_or_else(|e| panic!("{e}"));
        loaded.push(m);
    }
    let json_keys = data
        .keys()
        .filter(|k| k.as_str().is_some_and(|k| k.ends_with("module.json")))
        .count();
    assert_eq!(
        loaded.len(),
        json_keys,
        "each module.json in a folder of its own"
    );

    // A remote worker's endpoint is a Service of these manifests, on its port, in front
    // of a Deployment whose pods listen there.
    let remote: Vec<&Manifest> = loaded.iter().filter(|m| m.endpoint.is_some()).collect();
    assert!(!remote.is_empty(), "a module served by a remote worker");
    for m in remote {
        let endpoint = m.endpoint.as_deref().unwrap();
        let (service, port) = endpoint
            .strip_prefix("http://")
            .and_then(|a| a.rsplit_once(':'))
            .unwrap_or_else(|| panic!("{endpoint}: http://service:port"));
        let port: u64 = port.parse().unwrap();
        let svc = find(&all, "Service", service);
        let svc_port = svc["spec"]["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|p| p["port"].as_u64() == Some(port))
            .unwrap_or_else(|| panic!("Service {service} has no port {port}"));
        let selector = &svc["spec"]["selector"];
        let worker = all
            .values()
            .find(|v| {
                v["kind"].as_str() == Some("Deployment")
                    && v["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
                        == selector["app.kubernetes.io/name"]
            })
            .unwrap_or_else(|| panic!("no Deployment behind Service {service}"));
        let wc = &worker["spec"]["template"]["spec"]["containers"][0];
        let target = str_of(&svc_port["targetPort"], "targetPort");
        let listen = str_of(&env_value(wc, "POLYGLOT_GRPC_LISTEN")["value"], "listen");
        assert_eq!(
            listen,
            format!("0.0.0.0:{}", container_port(wc, target)),
            "the worker listens on its Service's target port"
        );
        assert_eq!(
            str_of(&env_value(wc, "POLYGLOT_MODULE")["value"], "module"),
            m.name
        );
        assert_eq!(
            str_of(&env_value(wc, "POLYGLOT_TRANSPORT")["value"], "t"),
            "grpc"
        );
    }

    // The host listens on the pod's interfaces, on the ports the probes and the Service use.
    let http = printed(&config, "http-addr");
    let grpc = printed(&config, "grpc-addr");
    assert_eq!(http, format!("0.0.0.0:{}", container_port(c, "http")));
    assert_eq!(grpc, format!("0.0.0.0:{}", container_port(c, "grpc")));
    for (probe, path) in [
        ("livenessProbe", "/health/live"),
        ("readinessProbe", "/health/ready"),
        ("startupProbe", "/health/startup"),
    ] {
        assert_eq!(c[probe]["httpGet"]["path"].as_str(), Some(path), "{probe}");
        assert_eq!(
            c[probe]["httpGet"]["port"].as_str(),
            Some("http"),
            "{probe}"
        );
    }
    let service = find(&all, "Service", "polyglot-host");
    let ports: Vec<u64> = service["spec"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [50051, 9464]);
    assert_eq!(
        service["metadata"]["annotations"]["prometheus.io/port"].as_str(),
        Some("9464")
    );

    // Shutdown: the preStop sleep is the shutdown delay, and the grace period outlasts
    // preStop, delay and drain together.
    let delay = duration(&printed(&config, "shutdown-delay"));
    let drain = duration(&printed(&config, "drain-timeout"));
    let pre_stop = Duration::from_secs(secs(
        &c["lifecycle"]["preStop"]["sleep"]["seconds"],
        "preStop sleep",
    ));
    assert!(!delay.is_zero(), "a shutdown delay in Kubernetes");
    assert_eq!(pre_stop, delay, "the preStop sleep matches shutdown-delay");
    let grace = Duration::from_secs(secs(
        &spec["terminationGracePeriodSeconds"],
        "terminationGracePeriodSeconds",
    ));
    assert!(
        grace > pre_stop + delay + drain,
        "terminationGracePeriodSeconds {grace:?} must outlast preStop {pre_stop:?} + \
         shutdown-delay {delay:?} + drain-timeout {drain:?}"
    );
    assert_eq!(
        host["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"].as_u64(),
        Some(0)
    );
}
