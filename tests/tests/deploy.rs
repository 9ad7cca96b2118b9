//! The deployment files cannot run here (no container runtime or cluster in CI), so what
//! can be checked is checked: they parse, every service and object they refer to exists,
//! probes point at the gateway's real endpoints, every `SWITCHBOARD_*` setting they use is
//! one the binary knows (`switchboard serve --help`), and the grace period covers the drain.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;
use switchboard_e2e::run;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path)
}

fn yaml_docs(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(deploy(path)).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| {
            let mut v =
                serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{path}: {e}"));
            Value::apply_merge(&mut v).unwrap();
            v
        })
        .collect()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = match p.parse::<usize>() {
            Ok(i) if cur.is_sequence() => &cur[i],
            _ => &cur[*p],
        };
    }
    cur.as_str()
        .unwrap_or_else(|| panic!("no string at {path:?}"))
}

/// Every `SWITCHBOARD_*` name in a text.
fn settings_in(text: &str) -> BTreeSet<String> {
    text.match_indices("SWITCHBOARD_")
        .map(|(i, _)| {
            text[i..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect()
}

fn known_settings() -> BTreeSet<String> {
    let help = run(&["serve", "--help"]);
    let mut known = settings_in(&String::from_utf8_lossy(&help.stdout));
    // Read by the container's entrypoint, not by `serve`.
    known.insert("SWITCHBOARD_FETCH_MODELS".into());
    known
}

#[test]
fn compose_file_is_consistent() {
    let compose = &yaml_docs("compose.yaml")[0];
    let services = compose["services"].as_mapping().unwrap();
    let names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
    for needed in ["gateway-a", "gateway-b", "postgres", "redis", "prometheus"] {
        assert!(names.contains(needed), "no {needed} service");
    }
    for gw in ["gateway-a", "gateway-b"] {
        let g = &compose["services"][gw];
        assert!(s(g, &["environment", "SWITCHBOARD_DATABASE_URL"]).contains("@postgres:5432/"));
        assert_eq!(
            s(g, &["environment", "SWITCHBOARD_REDIS_URL"]),
            "redis://redis:6379"
        );
        for dep in g["depends_on"].as_mapping().unwrap().keys() {
            assert!(
                names.contains(dep.as_str().unwrap()),
                "{gw} depends on unknown {dep:?}"
            );
        }
        let check: Vec<&str> = g["healthcheck"]["test"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(check.concat().contains("/readyz"), "{check:?}");
        let dockerfile = s(g, &["build", "dockerfile"]);
        assert!(
            deploy(&dockerfile.replace("deploy/", "")).is_file(),
            "{dockerfile}"
        );
    }
    // Prometheus scrapes exactly the gateways.
    let prom = &yaml_docs("prometheus.yml")[0];
    let targets: BTreeSet<String> = prom["scrape_configs"][0]["static_configs"][0]["targets"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().split(':').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        targets,
        ["gateway-a".to_owned(), "gateway-b".to_owned()].into()
    );
}

#[test]
fn kubernetes_manifests_are_consistent() {
    let docs = yaml_docs("kubernetes/switchboard.yaml");
    let by_kind = |kind: &str| -> &Value {
        docs.iter()
            .find(|d| d["kind"].as_str() == Some(kind))
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    let deployment = by_kind("Deployment");
    let config = by_kind("ConfigMap");
    let secret = by_kind("Secret");
    let spec = &deployment["spec"]["template"]["spec"];
    let gateway = &spec["containers"][0];
    assert_eq!(
        s(gateway, &["readinessProbe", "httpGet", "path"]),
        "/readyz"
    );
    assert_eq!(
        s(gateway, &["livenessProbe", "httpGet", "path"]),
        "/healthz"
    );
    // Selectors match the pod labels, everywhere.
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(
        &by_kind("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        labels
    );
    assert_eq!(&by_kind("Service")["spec"]["selector"], labels);
    // envFrom names the ConfigMap and Secret that are here.
    let refs: Vec<&str> = gateway["envFrom"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| {
            e["configMapRef"]["name"]
                .as_str()
                .or(e["secretRef"]["name"].as_str())
                .unwrap()
        })
        .collect();
    assert_eq!(
        refs,
        [
            s(config, &["metadata", "name"]),
            s(secret, &["metadata", "name"])
        ]
    );
    // The kubelet waits longer than the drain.
    let drain: u64 = s(config, &["data", "SWITCHBOARD_DRAIN_SECS"])
        .parse()
        .unwrap();
    let grace = spec["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(grace > drain, "grace {grace} s <= drain {drain} s");
    // The HPA scales this Deployment on a metric the gateway exports.
    let hpa = by_kind("HorizontalPodAutoscaler");
    assert_eq!(
        s(hpa, &["spec", "scaleTargetRef", "name"]),
        s(deployment, &["metadata", "name"])
    );
    let metric = s(hpa, &["spec", "metrics", "0", "pods", "metric", "name"]);
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipeline/src/metrics.rs"),
    )
    .unwrap();
    assert!(
        source.contains(&format!("\"{metric}\"")),
        "{metric} is not exported"
    );
}

#[test]
fn every_setting_in_the_deployment_files_is_one_the_gateway_reads() {
    let known = known_settings();
    assert!(known.contains("SWITCHBOARD_REDIS_URL"), "{known:?}");
    for file in [
        "compose.yaml",
        "kubernetes/switchboard.yaml",
        "container/Dockerfile",
        "container/entrypoint.sh",
    ] {
        let text = std::fs::read_to_string(deploy(file)).unwrap();
        for name in settings_in(&text) {
            assert!(
                known.contains(&name),
                "{file}: {name} is not a setting of the gateway"
            );
        }
    }
    let dockerfile = std::fs::read_to_string(deploy("container/Dockerfile")).unwrap();
    assert!(
        dockerfile.matches("\nFROM ").count() + usize::from(dockerfile.starts_with("FROM ")) >= 2
    );
    assert!(dockerfile.contains("COPY --from=build"));
}
