use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use k8s_cri::v1::MountPropagation;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapProjection, ConfigMapVolumeSource, Container, DownwardAPIProjection,
    DownwardAPIVolumeFile, DownwardAPIVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource,
    KeyToPath, ObjectFieldSelector, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimStatus, PersistentVolumeClaimVolumeSource,
    PersistentVolumeSpec, Pod, PodSpec, ProjectedVolumeSource, ResourceFieldSelector,
    ResourceRequirements, Secret, SecretVolumeSource, ServiceAccountTokenProjection, Volume,
    VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

use super::*;
use crate::env::tests::cluster;

/// Unmounts whatever a failed test left mounted below `root` (a passing test tears down).
struct MountGuard(PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let Ok(root) = self.0.canonicalize() else {
            return;
        };
        if let Ok(left) = mounts::mount_points_under(&root) {
            for m in left {
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(&m)
                    .status();
            }
        }
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..Default::default()
    }
}

fn one_volume(dir: &Path, read_only: bool) -> PodVolumes {
    PodVolumes {
        volumes: BTreeMap::from([(
            "data".to_string(),
            HostVolume {
                host_path: dir.to_path_buf(),
                read_only,
            },
        )]),
    }
}

fn container(mounts: Vec<VolumeMount>) -> Container {
    Container {
        name: "app".into(),
        volume_mounts: Some(mounts),
        ..Default::default()
    }
}

#[test]
fn mounts_resolve_sub_paths_inside_the_volume() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let vol = tmp.path().join("vol");
    fs::create_dir(&vol).expect("mkdir");
    fs::set_permissions(&vol, fs::Permissions::from_mode(0o750)).expect("chmod");
    let vols = one_volume(&vol, false);
    let env = vec![("POD_NAME".to_string(), "web-0".to_string())];
    let c = container(vec![
        VolumeMount {
            read_only: Some(true),
            mount_propagation: Some("HostToContainer".into()),
            ..mount("data", "/data")
        },
        VolumeMount {
            sub_path: Some("logs/app".into()),
            ..mount("data", "var/log")
        },
        VolumeMount {
            sub_path_expr: Some("pods/$(POD_NAME)".into()),
            mount_propagation: Some("Bidirectional".into()),
            ..mount("data", "/per-pod")
        },
    ]);
    let got = vols.mounts(&c, &env).expect("mounts");
    let real = vol.canonicalize().expect("canonical");
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].host_path, vol.to_string_lossy());
    assert_eq!(got[0].container_path, "/data");
    assert!(got[0].readonly);
    assert_eq!(
        got[0].propagation,
        MountPropagation::PropagationHostToContainer as i32
    );
    assert_eq!(got[1].host_path, real.join("logs/app").to_string_lossy());
    assert_eq!(
        got[1].container_path, "/var/log",
        "relative mount paths are made absolute"
    );
    assert!(!got[1].readonly);
    assert_eq!(
        got[1].propagation,
        MountPropagation::PropagationPrivate as i32
    );
    let created = fs::metadata(real.join("logs/app")).expect("subPath created");
    assert!(created.is_dir());
    assert_eq!(
        created.permissions().mode() & 0o777,
        0o750,
        "with the volume's mode"
    );
    assert_eq!(got[2].host_path, real.join("pods/web-0").to_string_lossy());
    assert_eq!(
        got[2].propagation,
        MountPropagation::PropagationBidirectional as i32
    );

    // A read-only volume makes every mount of it read-only.
    let ro = one_volume(&vol, true);
    let got = ro
        .mounts(&container(vec![mount("data", "/d")]), &[])
        .expect("mounts");
    assert!(got[0].readonly);
}

#[test]
fn mounts_report_bad_sub_paths_with_upstream_messages() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let vol = tmp.path().join("vol");
    fs::create_dir(&vol).expect("mkdir");
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).expect("mkdir");
    symlink(&outside, vol.join("escape")).expect("symlink");
    let vols = one_volume(&vol, false);
    let err = |m: VolumeMount, env: &[(String, String)]| {
        vols.mounts(&container(vec![m]), env)
            .expect_err("must fail")
            .to_string()
    };
    let with = |f: fn(&mut VolumeMount)| {
        let mut m = mount("data", "/d");
        f(&mut m);
        m
    };
    assert_eq!(
        err(mount("other", "/x"), &[]),
        "cannot find volume \"other\" to mount into container \"app\""
    );
    assert_eq!(
        err(with(|m| m.sub_path = Some("/etc".into())), &[]),
        "error SubPath `/etc` must not be an absolute path"
    );
    assert_eq!(
        err(with(|m| m.sub_path = Some("a/../../b".into())), &[]),
        "unable to provision SubPath `a/../../b`: must not contain '..'"
    );
    assert_eq!(
        err(
            with(|m| m.sub_path_expr = Some("$(B)/$(A)/$(C)".into())),
            &[("C".into(), "c".into())]
        ),
        "missing value for A, B"
    );
    assert_eq!(
        err(with(|m| m.sub_path = Some("escape/inner".into())), &[]),
        "failed to prepare subPath for volumeMount \"data\" of container \"app\""
    );
    assert!(
        !outside.join("inner").exists(),
        "nothing is created outside the volume"
    );
    assert_eq!(
        err(with(|m| m.mount_propagation = Some("Sideways".into())), &[]),
        "invalid MountPropagation mode: \"Sideways\""
    );
    assert_eq!(
        err(
            with(|m| m.recursive_read_only = Some("Enabled".into())),
            &[]
        ),
        "failed to resolve recursive read-only mode: volume \"data\" requested recursive read-only mode, but it is not read-only"
    );
}

fn pod(uid: &str, volumes: Vec<Volume>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("pod-{uid}")),
            namespace: Some("default".into()),
            uid: Some(uid.into()),
            labels: Some(BTreeMap::from([
                ("app".to_string(), "web".to_string()),
                ("release".to_string(), "2024 \"q2\"".to_string()),
            ])),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                resources: Some(ResourceRequirements {
                    limits: Some(BTreeMap::from([(
                        "memory".to_string(),
                        Quantity("64Mi".into()),
                    )])),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            volumes: Some(volumes),
            ..Default::default()
        }),
        status: None,
    }
}

fn volume(name: &str) -> Volume {
    Volume {
        name: name.into(),
        ..Default::default()
    }
}

fn data_target(dir: &Path) -> PathBuf {
    fs::read_link(dir.join("..data")).expect("..data is a symlink")
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

fn is_tmpfs(path: &Path) -> bool {
    let real = path.canonicalize().expect("canonical");
    let table = fs::read_to_string("/proc/self/mounts").expect("mounts");
    table.lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        f.len() > 2 && Path::new(f[1]) == real && f[2] == "tmpfs"
    })
}

async fn put_config_map(client: &kube::Client, name: &str, data: &[(&str, &str)]) {
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    };
    match api.get_opt(name).await.expect("get") {
        Some(old) => {
            let mut new = cm;
            new.metadata.resource_version = old.metadata.resource_version;
            api.replace(name, &PostParams::default(), &new)
                .await
                .expect("replace");
        }
        None => {
            api.create(&PostParams::default(), &cm)
                .await
                .expect("create");
        }
    }
}

#[tokio::test]
async fn config_map_volume_files_modes_and_updates() {
    let c = cluster().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let _guard = MountGuard(tmp.path().to_path_buf());
    let vm = VolumeManager::new(c.client.clone(), tmp.path().join("pods"));
    put_config_map(
        &c.client,
        "app-config",
        &[("app.conf", "v=1"), ("extra", "e")],
    )
    .await;
    let p = pod(
        "cm-1",
        vec![
            Volume {
                config_map: Some(ConfigMapVolumeSource {
                    name: "app-config".into(),
                    default_mode: Some(0o640),
                    items: Some(vec![
                        KeyToPath {
                            key: "app.conf".into(),
                            path: "conf/app.conf".into(),
                            mode: Some(0o600),
                        },
                        KeyToPath {
                            key: "extra".into(),
                            path: "extra.txt".into(),
                            mode: None,
                        },
                    ]),
                    optional: None,
                }),
                ..volume("cfg")
            },
            Volume {
                config_map: Some(ConfigMapVolumeSource {
                    name: "app-config".into(),
                    ..Default::default()
                }),
                ..volume("all")
            },
        ],
    );
    let vols = vm.setup(&p).await.expect("setup");
    let dir = tmp
        .path()
        .join("pods/cm-1/volumes/kubernetes.io~configmap/cfg");
    assert_eq!(vols.get("cfg").map(|v| &v.host_path), Some(&dir));
    assert!(
        vols.get("cfg").is_some_and(|v| v.read_only),
        "configMap volumes are read-only"
    );
    assert_eq!(
        fs::read_to_string(dir.join("conf/app.conf")).expect("read"),
        "v=1"
    );
    assert_eq!(mode_of(&dir.join("conf/app.conf")), 0o600, "item mode");
    assert_eq!(mode_of(&dir.join("extra.txt")), 0o640, "defaultMode");
    assert!(!dir.join("app.conf").exists(), "only the listed items");
    // Upstream's layout: visible names are links through ..data.
    assert_eq!(
        fs::read_link(dir.join("conf")).expect("link"),
        Path::new("..data/conf")
    );
    assert_eq!(
        fs::read_link(dir.join("extra.txt")).expect("link"),
        Path::new("..data/extra.txt")
    );
    let first = data_target(&dir);
    assert!(first.to_string_lossy().starts_with(".."), "{first:?}");
    let all = tmp
        .path()
        .join("pods/cm-1/volumes/kubernetes.io~configmap/all");
    assert_eq!(fs::read_to_string(all.join("extra")).expect("read"), "e");
    assert_eq!(
        mode_of(&all.join("app.conf")),
        0o644,
        "upstream's default mode"
    );

    // Same content: nothing is rewritten.
    vm.setup(&p).await.expect("setup again");
    assert_eq!(data_target(&dir), first);

    // An update shows through the same paths after the next sync.
    put_config_map(&c.client, "app-config", &[("app.conf", "v=2")]).await;
    let err = vm.setup(&p).await.expect_err("the extra key is gone");
    assert_eq!(
        err.to_string(),
        "MountVolume.SetUp failed for volume \"cfg\" : configmap references non-existent config key: extra"
    );
    let second = data_target(&all);
    assert_eq!(
        fs::read_to_string(all.join("app.conf")).expect("read"),
        "v=2"
    );
    assert!(!all.join("extra").exists(), "removed keys disappear");
    assert!(
        fs::symlink_metadata(all.join("extra")).is_err(),
        "their links too"
    );
    put_config_map(
        &c.client,
        "app-config",
        &[("app.conf", "v=3"), ("extra", "e")],
    )
    .await;
    vm.setup(&p).await.expect("setup after update");
    assert_eq!(
        fs::read_to_string(dir.join("conf/app.conf")).expect("read"),
        "v=3"
    );
    let moved = data_target(&dir);
    assert_ne!(moved, first, "..data points at a new version");
    assert!(!dir.join(&first).exists(), "the old version is removed");
    assert_ne!(data_target(&all), second);

    vm.teardown("cm-1").await.expect("teardown");
    assert!(!tmp.path().join("pods/cm-1").exists());
}

#[tokio::test]
async fn missing_and_optional_sources() {
    let c = cluster().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let _guard = MountGuard(tmp.path().to_path_buf());
    let vm = VolumeManager::new(c.client.clone(), tmp.path().join("pods"));
    let missing = pod(
        "miss-1",
        vec![Volume {
            config_map: Some(ConfigMapVolumeSource {
                name: "nope".into(),
                ..Default::default()
            }),
            ..volume("cfg")
        }],
    );
    let err = vm.setup(&missing).await.expect_err("must fail");
    assert_eq!(
        err.to_string(),
        "MountVolume.SetUp failed for volume \"cfg\" : configmap \"nope\" not found"
    );
    let secret = pod(
        "miss-2",
        vec![Volume {
            secret: Some(SecretVolumeSource {
                secret_name: Some("nope".into()),
                ..Default::default()
            }),
            ..volume("s")
        }],
    );
    let err = vm.setup(&secret).await.expect_err("must fail");
    assert_eq!(
        err.to_string(),
        "MountVolume.SetUp failed for volume \"s\" : secret \"nope\" not found"
    );
    let optional = pod(
        "miss-3",
        vec![Volume {
            config_map: Some(ConfigMapVolumeSource {
                name: "nope".into(),
                optional: Some(true),
                items: Some(vec![KeyToPath {
                    key: "k".into(),
                    path: "k".into(),
                    mode: None,
                }]),
                ..Default::default()
            }),
            ..volume("cfg")
        }],
    );
    let vols = vm.setup(&optional).await.expect("optional is fine");
    let dir = &vols.get("cfg").expect("volume").host_path;
    assert!(dir.is_dir());
    assert!(!dir.join("k").exists());
    for uid in ["miss-1", "miss-2", "miss-3"] {
        vm.teardown(uid).await.expect("teardown");
    }
}

#[tokio::test]
async fn secret_downward_and_projected_volumes() {
    let c = cluster().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let _guard = MountGuard(tmp.path().to_path_buf());
    let vm = VolumeManager::new(c.client.clone(), tmp.path().join("pods"));
    vm.set_node_allocatable(BTreeMap::from([("cpu".to_string(), Quantity("2".into()))]));
    let secrets: Api<Secret> = Api::default_namespaced(c.client.clone());
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some("db".into()),
                    ..Default::default()
                },
                data: Some(BTreeMap::from([(
                    "password".to_string(),
                    ByteString(b"hunter2\n".to_vec()),
                )])),
                ..Default::default()
            },
        )
        .await
        .expect("create secret");
    put_config_map(&c.client, "kube-root-ca.crt", &[("ca.crt", "PEM")]).await;
    let field = |path: &str, file: &str| DownwardAPIVolumeFile {
        path: file.into(),
        field_ref: Some(ObjectFieldSelector {
            api_version: Some("v1".into()),
            field_path: path.into(),
        }),
        ..Default::default()
    };
    let res = |resource: &str, divisor: &str, file: &str| DownwardAPIVolumeFile {
        path: file.into(),
        resource_field_ref: Some(ResourceFieldSelector {
            container_name: Some("app".into()),
            resource: resource.into(),
            divisor: Some(Quantity(divisor.into())),
        }),
        ..Default::default()
    };
    let p = pod(
        "sec-1",
        vec![
            Volume {
                secret: Some(SecretVolumeSource {
                    secret_name: Some("db".into()),
                    default_mode: Some(0o400),
                    ..Default::default()
                }),
                ..volume("db")
            },
            Volume {
                downward_api: Some(DownwardAPIVolumeSource {
                    items: Some(vec![
                        field("metadata.labels", "labels"),
                        field("metadata.labels['app']", "app"),
                        field("metadata.name", "name"),
                        res("limits.memory", "1Mi", "mem"),
                        res("limits.cpu", "1m", "cpu"),
                    ]),
                    ..Default::default()
                }),
                ..volume("info")
            },
            Volume {
                projected: Some(ProjectedVolumeSource {
                    default_mode: Some(0o644),
                    sources: Some(vec![
                        VolumeProjection {
                            service_account_token: Some(ServiceAccountTokenProjection {
                                path: "token".into(),
                                expiration_seconds: Some(3607),
                                audience: None,
                            }),
                            ..Default::default()
                        },
                        VolumeProjection {
                            config_map: Some(ConfigMapProjection {
                                name: "kube-root-ca.crt".into(),
                                items: Some(vec![KeyToPath {
                                    key: "ca.crt".into(),
                                    path: "ca.crt".into(),
                                    mode: None,
                                }]),
                                optional: None,
                            }),
                            ..Default::default()
                        },
                        VolumeProjection {
                            downward_api: Some(DownwardAPIProjection {
                                items: Some(vec![field("metadata.namespace", "namespace")]),
                            }),
                            ..Default::default()
                        },
                    ]),
                }),
                ..volume("kube-api-access-x1")
            },
        ],
    );
    let vols = vm.setup(&p).await.expect("setup");
    let secret_dir = &vols.get("db").expect("secret").host_path;
    assert!(secret_dir.ends_with("pods/sec-1/volumes/kubernetes.io~secret/db"));
    assert_eq!(
        fs::read(secret_dir.join("password")).expect("read"),
        b"hunter2\n",
        "decoded"
    );
    assert_eq!(mode_of(&secret_dir.join("password")), 0o400);
    assert!(is_tmpfs(secret_dir), "secrets live on a tmpfs");

    let info = &vols.get("info").expect("downward").host_path;
    assert_eq!(
        fs::read_to_string(info.join("labels")).expect("read"),
        "app=\"web\"\nrelease=\"2024 \\\"q2\\\"\""
    );
    assert_eq!(fs::read_to_string(info.join("app")).expect("read"), "web");
    assert_eq!(
        fs::read_to_string(info.join("name")).expect("read"),
        "pod-sec-1"
    );
    assert_eq!(fs::read_to_string(info.join("mem")).expect("read"), "64");
    assert_eq!(
        fs::read_to_string(info.join("cpu")).expect("read"),
        "2000",
        "no cpu limit: the node's allocatable"
    );

    let access = &vols.get("kube-api-access-x1").expect("projected").host_path;
    assert_eq!(
        fs::read_to_string(access.join("ca.crt")).expect("read"),
        "PEM"
    );
    assert_eq!(
        fs::read_to_string(access.join("namespace")).expect("read"),
        "default"
    );
    // rkube's API server does not serve TokenRequest: no token file, the rest is there.
    assert!(!access.join("token").exists());
    assert!(is_tmpfs(access));

    vm.teardown("sec-1").await.expect("teardown");
    assert!(!secret_dir.exists() && !is_mounted_under(tmp.path()));
}

fn is_mounted_under(root: &Path) -> bool {
    let root = root.canonicalize().expect("canonical");
    !mounts::mount_points_under(&root)
        .expect("mounts")
        .is_empty()
}

#[tokio::test]
async fn memory_empty_dir_is_a_tmpfs_until_teardown() {
    let c = cluster().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let _guard = MountGuard(tmp.path().to_path_buf());
    let vm = VolumeManager::new(c.client.clone(), tmp.path().join("pods"));
    let p = pod(
        "ed-1",
        vec![
            Volume {
                empty_dir: Some(EmptyDirVolumeSource {
                    medium: Some("Memory".into()),
                    size_limit: Some(Quantity("16Mi".into())),
                }),
                ..volume("scratch")
            },
            Volume {
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..volume("disk")
            },
        ],
    );
    let vols = vm.setup(&p).await.expect("setup");
    let mem = vols.get("scratch").expect("scratch").host_path.clone();
    assert!(mem.ends_with("ed-1/volumes/kubernetes.io~empty-dir/scratch"));
    let real = mem.canonicalize().expect("canonical");
    let table = fs::read_to_string("/proc/self/mounts").expect("mounts");
    let line = table
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(&*real.to_string_lossy()))
        .expect("scratch is mounted");
    assert!(line.starts_with("tmpfs "), "{line}");
    assert!(line.contains("size=16384k"), "sizeLimit bounds it: {line}");
    assert_eq!(mode_of(&mem), 0o777);
    let disk = vols.get("disk").expect("disk").host_path.clone();
    assert!(disk.is_dir() && !is_tmpfs(&disk));
    fs::write(mem.join("f"), "x").expect("write into the tmpfs");

    // Idempotent: a second sync does not stack a second tmpfs.
    vm.setup(&p).await.expect("setup again");
    let count = fs::read_to_string("/proc/self/mounts")
        .expect("mounts")
        .lines()
        .filter(|l| l.split(' ').nth(1) == Some(&*real.to_string_lossy()))
        .count();
    assert_eq!(count, 1);
    assert_eq!(fs::read_to_string(mem.join("f")).expect("kept"), "x");

    assert_eq!(vm.pod_dirs(), vec!["ed-1".to_string()]);
    vm.teardown("ed-1").await.expect("teardown");
    assert!(!is_mounted_under(tmp.path()), "unmounted");
    assert!(!tmp.path().join("pods/ed-1").exists(), "removed");
    assert!(vm.pod_dirs().is_empty());
    vm.teardown("ed-1").await.expect("teardown is idempotent");
}

#[tokio::test]
async fn host_path_types_and_claims() {
    let c = cluster().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let vm = VolumeManager::new(c.client.clone(), tmp.path().join("pods"));
    let host = tmp.path().join("host");
    let host_vol = |name: &str, path: &Path, kind: &str| Volume {
        host_path: Some(HostPathVolumeSource {
            path: path.to_string_lossy().into_owned(),
            type_: Some(kind.into()),
        }),
        ..volume(name)
    };
    let created = host.join("a/b");
    let p = pod(
        "hp-1",
        vec![
            host_vol("mk", &created, "DirectoryOrCreate"),
            host_vol("file", &host.join("new.txt"), "FileOrCreate"),
            host_vol("any", &host.join("whatever"), ""),
        ],
    );
    let vols = vm.setup(&p).await.expect("setup");
    assert!(created.is_dir(), "DirectoryOrCreate creates");
    assert_eq!(mode_of(&created), 0o755);
    assert!(host.join("new.txt").is_file(), "FileOrCreate creates");
    assert_eq!(
        vols.get("mk").map(|v| v.host_path.clone()),
        Some(created.clone())
    );
    assert!(vols.get("mk").is_some_and(|v| !v.read_only));

    let cases = [
        ("File", host.join("missing"), "is not a file"),
        ("Directory", host.join("new.txt"), "is not a directory"),
        ("Socket", host.join("new.txt"), "is not a socket file"),
        ("CharDevice", created.clone(), "is not a character device"),
        (
            "BlockDevice",
            PathBuf::from("/dev/null"),
            "is not a block device",
        ),
    ];
    for (kind, path, what) in cases {
        let bad = pod("hp-2", vec![host_vol("v", &path, kind)]);
        let err = vm.setup(&bad).await.expect_err("must fail");
        assert_eq!(
            err.to_string(),
            format!(
                "MountVolume.SetUp failed for volume \"v\" : hostPath type check failed: {} {what}",
                path.display()
            )
        );
    }
    let ok = pod(
        "hp-3",
        vec![host_vol("null", Path::new("/dev/null"), "CharDevice")],
    );
    vm.setup(&ok)
        .await
        .expect("/dev/null is a character device");

    // Claims: not bound, then bound to a hostPath PV.
    let claims: Api<PersistentVolumeClaim> = Api::default_namespaced(c.client.clone());
    let pvc = claims
        .create(
            &PostParams::default(),
            &PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some("data".into()),
                    ..Default::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".into()]),
                    resources: Some(k8s_openapi::api::core::v1::VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_string(),
                            Quantity("1Gi".into()),
                        )])),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                status: None,
            },
        )
        .await
        .expect("create claim");
    let claim_pod = pod(
        "pvc-1",
        vec![Volume {
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: "data".into(),
                read_only: Some(true),
            }),
            ..volume("data")
        }],
    );
    let err = vm.setup(&claim_pod).await.expect_err("not bound");
    assert_eq!(
        err.to_string(),
        "MountVolume.SetUp failed for volume \"data\" : error processing PVC default/data: PVC is not bound"
    );

    let pv_dir = tmp.path().join("pv");
    let pvs: Api<PersistentVolume> = Api::all(c.client.clone());
    pvs.create(
        &PostParams::default(),
        &PersistentVolume {
            metadata: ObjectMeta {
                name: Some("pv-data".into()),
                ..Default::default()
            },
            spec: Some(PersistentVolumeSpec {
                capacity: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity("1Gi".into()),
                )])),
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                host_path: Some(HostPathVolumeSource {
                    path: pv_dir.to_string_lossy().into_owned(),
                    type_: Some("DirectoryOrCreate".into()),
                }),
                claim_ref: Some(k8s_openapi::api::core::v1::ObjectReference {
                    name: Some("data".into()),
                    namespace: Some("default".into()),
                    uid: pvc.metadata.uid.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: None,
        },
    )
    .await
    .expect("create pv");
    let mut bound = claims.get("data").await.expect("claim");
    if let Some(spec) = bound.spec.as_mut() {
        spec.volume_name = Some("pv-data".into());
    }
    let bound = claims
        .replace("data", &PostParams::default(), &bound)
        .await
        .expect("set volumeName");
    let mut with_status = bound;
    with_status.status = Some(PersistentVolumeClaimStatus {
        phase: Some("Bound".into()),
        ..Default::default()
    });
    claims
        .replace_status("data", &PostParams::default(), &with_status)
        .await
        .expect("status Bound");
    let vols = vm.setup(&claim_pod).await.expect("bound claim");
    let v = vols.get("data").expect("volume");
    assert_eq!(v.host_path, pv_dir);
    assert!(v.read_only, "the claim source's readOnly");
    assert!(pv_dir.is_dir(), "the PV's hostPath type applies");

    for uid in ["hp-1", "hp-2", "hp-3", "pvc-1"] {
        vm.teardown(uid).await.expect("teardown");
    }
    assert!(created.is_dir(), "teardown leaves host paths alone");
}
