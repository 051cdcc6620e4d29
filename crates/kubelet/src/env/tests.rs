use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapEnvSource, ConfigMapKeySelector, Container, EnvFromSource, EnvVar,
    EnvVarSource, ObjectFieldSelector, Pod, PodSpec, ResourceFieldSelector, ResourceRequirements,
    Secret, SecretEnvSource, SecretKeySelector, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

use super::*;

/// A real API server in-process (memory store, free port, temp dir) and a client for it.
pub(crate) struct Cluster {
    pub client: kube::Client,
    server: apiserver::Running,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.server.stop.cancel();
    }
}

pub(crate) async fn cluster() -> Cluster {
    let (server, client, dir) = apiserver::testing::memory_server().await;
    Cluster {
        client,
        server,
        _dir: dir,
    }
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn q(s: &str) -> Quantity {
    Quantity(s.to_string())
}

fn pod() -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("web-0".into()),
            namespace: Some("default".into()),
            uid: Some("uid-1".into()),
            labels: Some(BTreeMap::from([
                ("app".to_string(), "web".to_string()),
                ("tier".to_string(), "front \"end\"".to_string()),
            ])),
            annotations: Some(BTreeMap::from([(
                "example.com/owner".to_string(),
                "team-a".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some("node-1".into()),
            service_account_name: Some("builder".into()),
            containers: vec![Container {
                name: "app".into(),
                resources: Some(ResourceRequirements {
                    limits: Some(BTreeMap::from([
                        ("cpu".to_string(), q("500m")),
                        ("memory".to_string(), q("128Mi")),
                    ])),
                    requests: Some(BTreeMap::from([("cpu".to_string(), q("250m"))])),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            init_containers: Some(vec![Container {
                name: "setup".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

fn ctx<'a>(
    pod: &'a Pod,
    ips: &'a [String],
    alloc: Option<&'a BTreeMap<String, Quantity>>,
) -> EnvContext<'a> {
    EnvContext {
        pod,
        pod_ips: ips,
        host_ip: "192.168.1.10",
        node_name: "node-1",
        allocatable: alloc,
    }
}

#[test]
fn expansion_follows_upstream_rules() {
    let env = vars(&[("A", "x"), ("B", "y"), ("A", "z")]);
    let cases = [
        ("$(B)", "y"),
        ("pre-$(B)-post", "pre-y-post"),
        ("$(A)", "z"), // the last definition wins
        ("$$(B)", "$(B)"),
        ("$$$(B)", "$y"),
        ("$(UNKNOWN)", "$(UNKNOWN)"),
        ("$(B", "$(B"),
        ("end$", "end$"),
        ("$x$(B)", "$xy"),
        ("$é$(B)", "$éy"),
        ("$()", "$()"),
        ("no refs", "no refs"),
        ("$($(B))", "$($(B))"),
    ];
    for (input, want) in cases {
        assert_eq!(expand(input, &env), want, "input {input:?}");
    }
}

fn service(name: &str, ip: &str, ports: &[(Option<&str>, i32, Option<&str>)]) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some(ip.into()),
            ports: Some(
                ports
                    .iter()
                    .map(|(n, p, proto)| ServicePort {
                        name: n.map(String::from),
                        port: *p,
                        protocol: proto.map(String::from),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        status: None,
    }
}

#[test]
fn service_link_variables_have_upstream_names() {
    let svcs = [
        service(
            "my-db",
            "10.0.0.5",
            &[
                (Some("sql"), 5432, None),
                (Some("metrics-port"), 9187, Some("UDP")),
            ],
        ),
        service("headless", "None", &[(None, 80, None)]),
        service("external", "", &[(None, 80, None)]),
        service("v6", "fd00::1", &[(None, 80, Some("TCP"))]),
    ];
    let got: BTreeMap<String, String> = service_link_vars(&svcs).into_iter().collect();
    let want: BTreeMap<String, String> = vars(&[
        ("MY_DB_SERVICE_HOST", "10.0.0.5"),
        ("MY_DB_SERVICE_PORT", "5432"),
        ("MY_DB_SERVICE_PORT_SQL", "5432"),
        ("MY_DB_SERVICE_PORT_METRICS_PORT", "9187"),
        ("MY_DB_PORT", "tcp://10.0.0.5:5432"),
        ("MY_DB_PORT_5432_TCP", "tcp://10.0.0.5:5432"),
        ("MY_DB_PORT_5432_TCP_PROTO", "tcp"),
        ("MY_DB_PORT_5432_TCP_PORT", "5432"),
        ("MY_DB_PORT_5432_TCP_ADDR", "10.0.0.5"),
        ("MY_DB_PORT_9187_UDP", "udp://10.0.0.5:9187"),
        ("MY_DB_PORT_9187_UDP_PROTO", "udp"),
        ("MY_DB_PORT_9187_UDP_PORT", "9187"),
        ("MY_DB_PORT_9187_UDP_ADDR", "10.0.0.5"),
        ("V6_SERVICE_HOST", "fd00::1"),
        ("V6_SERVICE_PORT", "80"),
        ("V6_PORT", "tcp://[fd00::1]:80"),
        ("V6_PORT_80_TCP", "tcp://[fd00::1]:80"),
        ("V6_PORT_80_TCP_PROTO", "tcp"),
        ("V6_PORT_80_TCP_PORT", "80"),
        ("V6_PORT_80_TCP_ADDR", "fd00::1"),
    ])
    .into_iter()
    .collect();
    assert_eq!(
        got, want,
        "headless and ExternalName services have no variables"
    );
}

fn field(ctx: &EnvContext<'_>, path: &str) -> Result<String, FieldPathError> {
    pod_field_runtime_value(ctx, "v1", path)
}

#[test]
fn field_refs_read_the_pod_and_the_node() {
    let p = pod();
    let ips = vec!["fd00::7".to_string(), "10.42.0.7".to_string()];
    let c = ctx(&p, &ips, None);
    let cases = [
        ("metadata.name", "web-0"),
        ("metadata.namespace", "default"),
        ("metadata.uid", "uid-1"),
        ("metadata.labels['app']", "web"),
        ("metadata.labels['missing']", ""),
        ("metadata.annotations['example.com/owner']", "team-a"),
        ("metadata.labels", "app=\"web\"\ntier=\"front \\\"end\\\"\""),
        ("metadata.annotations", "example.com/owner=\"team-a\""),
        ("spec.nodeName", "node-1"),
        ("spec.serviceAccountName", "builder"),
        ("status.hostIP", "192.168.1.10"),
        ("status.hostIPs", "192.168.1.10"),
        // The node is IPv4, so the IPv4 address comes first.
        ("status.podIP", "10.42.0.7"),
        ("status.podIPs", "10.42.0.7,fd00::7"),
    ];
    for (path, want) in cases {
        assert_eq!(field(&c, path).as_deref(), Ok(want), "{path}");
    }
    assert_eq!(
        field(&c, "spec.containers").map_err(|e| e.to_string()),
        Err("field label not supported: spec.containers".to_string())
    );
    assert_eq!(
        field(&c, "spec.nodeName['x']").map_err(|e| e.to_string()),
        Err("field label does not support subscript: spec.nodeName['x']".to_string())
    );
    assert_eq!(
        pod_field_runtime_value(&c, "v2", "metadata.name").map_err(|e| e.to_string()),
        Err("unsupported pod version: v2".to_string())
    );
    // spec.restartPolicy passes the label check but is not a readable field.
    assert_eq!(
        field(&c, "spec.restartPolicy").map_err(|e| e.to_string()),
        Err("unsupported fieldPath: spec.restartPolicy".to_string())
    );
}

fn resource(
    p: &Pod,
    res: &str,
    divisor: Option<&str>,
    container: Option<&str>,
    alloc: Option<&BTreeMap<String, Quantity>>,
) -> Result<String, String> {
    let fs = ResourceFieldSelector {
        resource: res.into(),
        divisor: divisor.map(q),
        container_name: container.map(String::from),
    };
    let own = &p.spec.as_ref().expect("spec").containers[0];
    fieldpath::container_resource_value(&fs, p, Some(own), alloc).map_err(|e| e.to_string())
}

#[test]
fn resource_refs_divide_and_round_up() {
    let p = pod();
    let alloc = BTreeMap::from([
        ("cpu".to_string(), q("4")),
        ("memory".to_string(), q("8Gi")),
        ("ephemeral-storage".to_string(), q("100Gi")),
    ]);
    let a = Some(&alloc);
    let ok = |s: &str| Ok(s.to_string());
    assert_eq!(
        resource(&p, "limits.cpu", None, None, a),
        ok("1"),
        "0.5 cpu rounds up"
    );
    assert_eq!(resource(&p, "limits.cpu", Some("1m"), None, a), ok("500"));
    assert_eq!(resource(&p, "requests.cpu", Some("1m"), None, a), ok("250"));
    assert_eq!(
        resource(&p, "limits.memory", None, None, a),
        ok("134217728")
    );
    assert_eq!(
        resource(&p, "limits.memory", Some("1Mi"), None, a),
        ok("128")
    );
    assert_eq!(resource(&p, "limits.memory", Some("1G"), None, a), ok("1"));
    assert_eq!(
        resource(&p, "limits.memory", Some("0"), None, a),
        ok("134217728"),
        "a zero divisor means 1"
    );
    // No limit set: the node's allocatable amount.
    assert_eq!(
        resource(&p, "limits.ephemeral-storage", Some("1Gi"), None, a),
        ok("100")
    );
    assert_eq!(
        resource(&p, "limits.ephemeral-storage", None, None, None),
        ok("0")
    );
    assert_eq!(
        resource(&p, "requests.memory", None, None, a),
        ok("0"),
        "requests are not defaulted"
    );
    // Another container of the pod, by name; the init container has no limits.
    assert_eq!(
        resource(&p, "limits.cpu", Some("1m"), Some("setup"), a),
        ok("4000")
    );
    assert_eq!(
        resource(&p, "limits.hugepages-2Mi", None, None, a),
        ok("0"),
        "hugepages are not defaulted"
    );
    assert_eq!(
        resource(&p, "limits.cpu", None, Some("nope"), a),
        Err("container nope not found".to_string())
    );
    assert_eq!(
        resource(&p, "limits.gpu", None, None, a),
        Err("unsupported container resource : limits.gpu".to_string())
    );
}

#[test]
fn labels_file_format_quotes_like_go() {
    let m = BTreeMap::from([
        ("b".to_string(), "tab\there".to_string()),
        ("a".to_string(), "line\nbreak \\ é".to_string()),
        ("c".to_string(), "\u{1}".to_string()),
    ]);
    assert_eq!(
        fieldpath::format_map(Some(&m)),
        "a=\"line\\nbreak \\\\ é\"\nb=\"tab\\there\"\nc=\"\\x01\""
    );
    assert_eq!(fieldpath::format_map(None), "");
}

fn env_var(name: &str, value: Option<&str>, from: Option<EnvVarSource>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: value.map(String::from),
        value_from: from,
    }
}

fn cm_key(name: &str, key: &str, optional: bool) -> EnvVarSource {
    EnvVarSource {
        config_map_key_ref: Some(ConfigMapKeySelector {
            name: name.into(),
            key: key.into(),
            optional: Some(optional),
        }),
        ..Default::default()
    }
}

fn secret_key(name: &str, key: &str, optional: bool) -> EnvVarSource {
    EnvVarSource {
        secret_key_ref: Some(SecretKeySelector {
            name: name.into(),
            key: key.into(),
            optional: Some(optional),
        }),
        ..Default::default()
    }
}

async fn seed(client: &kube::Client) -> Service {
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    cms.create(
        &PostParams::default(),
        &ConfigMap {
            metadata: ObjectMeta {
                name: Some("settings".into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([
                ("LEVEL".to_string(), "debug".to_string()),
                ("1st".to_string(), "digit first".to_string()),
                ("mode".to_string(), "fast".to_string()),
            ])),
            ..Default::default()
        },
    )
    .await
    .expect("create configmap");
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some("creds".into()),
                    ..Default::default()
                },
                data: Some(BTreeMap::from([
                    ("password".to_string(), ByteString(b"s3cr3t".to_vec())),
                    ("user".to_string(), ByteString(b"admin".to_vec())),
                ])),
                ..Default::default()
            },
        )
        .await
        .expect("create secret");
    let svcs: Api<Service> = Api::default_namespaced(client.clone());
    let mut svc = service("cache", "", &[(Some("redis"), 6379, None)]);
    svc.metadata.namespace = None;
    if let Some(spec) = svc.spec.as_mut() {
        spec.cluster_ip = None;
    }
    svcs.create(&PostParams::default(), &svc)
        .await
        .expect("create service")
}

#[tokio::test]
async fn resolves_config_maps_secrets_and_service_links_from_the_api() {
    let c = cluster().await;
    let svc = seed(&c.client).await;
    let cache_ip = svc
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("the API server allocated a cluster IP");
    let master: Api<Service> = Api::namespaced(c.client.clone(), "default");
    let master_ip = master
        .get("kubernetes")
        .await
        .expect("the kubernetes service")
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("its cluster IP");

    let p = pod();
    let ips = vec!["10.42.0.7".to_string()];
    let container = Container {
        name: "app".into(),
        env_from: Some(vec![
            EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "settings".into(),
                    optional: None,
                }),
                prefix: Some("CFG_".into()),
                secret_ref: None,
            },
            EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "absent".into(),
                    optional: Some(true),
                }),
                ..Default::default()
            },
            EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: "creds".into(),
                    optional: None,
                }),
                ..Default::default()
            },
        ]),
        env: Some(vec![
            env_var(
                "GREETING",
                Some("level=$(CFG_LEVEL) user=$(user) later=$(LATER) $$(user)"),
                None,
            ),
            env_var("PASS", None, Some(secret_key("creds", "password", false))),
            env_var("MODE", None, Some(cm_key("settings", "mode", false))),
            env_var("OPT", None, Some(cm_key("settings", "nope", true))),
            env_var("OPT2", None, Some(secret_key("missing", "k", true))),
            env_var("user", Some("override"), None),
            env_var(
                "CACHE",
                Some("$(CACHE_SERVICE_HOST):$(CACHE_SERVICE_PORT)"),
                None,
            ),
            env_var(
                "POD",
                None,
                Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        api_version: Some("v1".into()),
                        field_path: "metadata.name".into(),
                    }),
                    ..Default::default()
                }),
            ),
            env_var("LATER", Some("x"), None),
            env_var("EMPTY", None, None),
        ]),
        ..Default::default()
    };
    let got = resolve(&c.client, &ctx(&p, &ips, None), &container)
        .await
        .expect("resolve");
    let names: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    // envFrom keys (sorted per source), then env in order, then service links.
    assert_eq!(
        &names[..10],
        &[
            "CFG_1st",
            "CFG_LEVEL",
            "CFG_mode",
            "password",
            "user",
            "GREETING",
            "PASS",
            "MODE",
            "CACHE",
            "POD",
        ]
    );
    let map: BTreeMap<&str, &str> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(got.len(), map.len(), "no duplicates");
    assert_eq!(map["CFG_1st"], "digit first", "relaxed names are kept");
    assert_eq!(map["password"], "s3cr3t", "secret values are decoded");
    assert_eq!(
        map["GREETING"], "level=debug user=admin later=$(LATER) $(user)",
        "expanded against earlier variables only"
    );
    assert_eq!(map["user"], "override", "env overrides envFrom in place");
    assert_eq!(map["PASS"], "s3cr3t");
    assert_eq!(map["MODE"], "fast");
    assert!(
        !map.contains_key("OPT") && !map.contains_key("OPT2"),
        "optional misses are left out"
    );
    assert_eq!(map["CACHE"], format!("{cache_ip}:6379"));
    assert_eq!(map["POD"], "web-0");
    assert_eq!(map["EMPTY"], "");
    assert_eq!(map["CACHE_PORT_6379_TCP"], format!("tcp://{cache_ip}:6379"));
    assert_eq!(map["CACHE_SERVICE_PORT_REDIS"], "6379");
    assert_eq!(map["KUBERNETES_SERVICE_HOST"], master_ip);

    // Without service links only the master service's variables remain.
    let mut no_links = pod();
    if let Some(spec) = no_links.spec.as_mut() {
        spec.enable_service_links = Some(false);
    }
    let plain = Container {
        name: "app".into(),
        ..Default::default()
    };
    let got = resolve(&c.client, &ctx(&no_links, &ips, None), &plain)
        .await
        .expect("resolve");
    assert!(
        got.iter().all(|(k, _)| k.starts_with("KUBERNETES_")),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|(k, v)| k == "KUBERNETES_SERVICE_HOST" && *v == master_ip)
    );
}

#[tokio::test]
async fn missing_sources_fail_with_upstream_messages() {
    let c = cluster().await;
    seed(&c.client).await;
    let p = pod();
    let ips: Vec<String> = vec![];
    let cases = [
        (cm_key("nope", "k", false), "configmap \"nope\" not found"),
        (
            cm_key("settings", "k", false),
            "couldn't find key k in ConfigMap default/settings",
        ),
        (secret_key("nope", "k", false), "secret \"nope\" not found"),
        (
            secret_key("creds", "k", false),
            "couldn't find key k in Secret default/creds",
        ),
    ];
    for (source, want) in cases {
        let container = Container {
            name: "app".into(),
            env: Some(vec![env_var("X", None, Some(source))]),
            ..Default::default()
        };
        let err = resolve(&c.client, &ctx(&p, &ips, None), &container)
            .await
            .expect_err("must fail");
        assert_eq!(err.to_string(), want);
    }
    let container = Container {
        name: "app".into(),
        env_from: Some(vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: "gone".into(),
                optional: Some(false),
            }),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let err = resolve(&c.client, &ctx(&p, &ips, None), &container)
        .await
        .expect_err("must fail");
    assert_eq!(err.to_string(), "secret \"gone\" not found");
}
