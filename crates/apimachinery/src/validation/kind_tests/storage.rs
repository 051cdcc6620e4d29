use serde_json::{Value, json};

use super::{Case, check_create, check_update};

const STORAGE: &str = "storage.k8s.io";
const SUBDOMAIN: &str = r"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn class(extra: Value) -> Value {
    let mut obj = json!({"metadata": {"name": "fast"}, "provisioner": "ebs.csi.aws.com"});
    if let (Some(o), Some(e)) = (obj.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    obj
}

#[test]
fn storage_classes() {
    let cases: Vec<Case> = vec![
        (
            STORAGE,
            "StorageClass",
            json!({"metadata": {"name": "sc"}}),
            vec!["provisioner: Required value"],
        ),
        (
            STORAGE,
            "StorageClass",
            class(json!({"provisioner": "Kubernetes.io/AWS EBS"})),
            vec![
                "provisioner: Invalid value: \"kubernetes.io/aws ebs\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            ],
        ),
        (
            STORAGE,
            "StorageClass",
            class(
                json!({"reclaimPolicy": "Recycle", "volumeBindingMode": "Later",
                "allowedTopologies": [{"matchLabelExpressions": [{"key": "zone", "values": []}]}]}),
            ),
            vec![
                "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\"",
                "volumeBindingMode: Unsupported value: \"Later\": supported values: \"Immediate\", \"WaitForFirstConsumer\"",
                "allowedTopologies[0].matchLabelExpressions[0].values: Required value",
            ],
        ),
    ];
    check_create(cases);
    check_update(
        STORAGE,
        "StorageClass",
        class(json!({"parameters": {"type": "gp2"}})),
        class(
            json!({"provisioner": "example.com/other", "parameters": {"type": "gp3"},
            "reclaimPolicy": "Retain", "volumeBindingMode": "WaitForFirstConsumer"}),
        ),
        &[
            "parameters: Forbidden: updates to parameters are forbidden.",
            "provisioner: Forbidden: updates to provisioner are forbidden.",
            "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
            "volumeBindingMode: Invalid value: \"WaitForFirstConsumer\": field is immutable",
        ],
    );
}

fn driver(spec: Value) -> Value {
    json!({"metadata": {"name": "csi.example.com"}, "spec": spec})
}

#[test]
fn csi_drivers() {
    check_create(vec![(
        STORAGE,
        "CSIDriver",
        driver(
            json!({"volumeLifecycleModes": ["Persistent", "Inline"], "fsGroupPolicy": "Always",
                "tokenRequests": [{"audience": "a", "expirationSeconds": 60}, {"audience": "a"}]}),
        ),
        vec![
            "spec.fsGroupPolicy: Unsupported value: \"Always\": supported values: \"File\", \"None\", \"ReadWriteOnceWithFSType\"",
            "spec.tokenRequests[0].expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes",
            "spec.tokenRequests[1].audience: Duplicate value: \"a\"",
            "spec.volumeLifecycleModes: Unsupported value: \"Inline\": supported values: \"Persistent\", \"Ephemeral\"",
        ],
    )]);
    check_update(
        STORAGE,
        "CSIDriver",
        driver(json!({"attachRequired": true})),
        driver(json!({"attachRequired": false, "volumeLifecycleModes": ["Ephemeral"]})),
        &[
            "spec.attachedRequired: Invalid value: false: field is immutable",
            "spec.volumeLifecycleModes: Invalid value: []storage.VolumeLifecycleMode{\"Ephemeral\"}: field is immutable",
        ],
    );
}

fn pv(spec: Value) -> Value {
    json!({"metadata": {"name": "pv"}, "spec": spec})
}

#[test]
fn persistent_volumes() {
    let csi_driver = format!("spec.csi.driver: Invalid value: \"\": {SUBDOMAIN}");
    let cases: Vec<Case<String>> = vec![
        (
            "",
            "PersistentVolume",
            pv(json!({})),
            vec![
                "spec.accessModes: Required value".into(),
                "spec.capacity: Required value".into(),
                "spec.capacity: Unsupported value: core.ResourceList(nil): supported values: \"storage\"".into(),
                "spec: Required value: must specify a volume type".into(),
            ],
        ),
        (
            "",
            "PersistentVolume",
            pv(json!({"accessModes": ["ReadWriteOnce", "ReadWriteOncePod"], "capacity": {"storage": "0"},
                "hostPath": {"path": "/data"}, "nfs": {"server": "s", "path": "/x"},
                "persistentVolumeReclaimPolicy": "Archive"})),
            vec![
                "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes".into(),
                "spec.capacity[storage]: Invalid value: \"0\": must be greater than zero".into(),
                "spec.persistentVolumeReclaimPolicy: Unsupported value: \"Archive\": supported values: \"Delete\", \"Recycle\", \"Retain\"".into(),
                "spec.nfs: Forbidden: may not specify more than 1 volume type".into(),
            ],
        ),
        (
            "",
            "PersistentVolume",
            pv(json!({"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi", "cpu": "1"},
                "local": {"path": "/mnt/disk"}})),
            vec![
                "spec.capacity: Unsupported value: core.ResourceList{\"cpu\":resource.Quantity{i:resource.int64Amount{value:1, scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"1\", Format:\"DecimalSI\"}, \"storage\":resource.Quantity{i:resource.int64Amount{value:10737418240, scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"10Gi\", Format:\"BinarySI\"}}: supported values: \"storage\"".into(),
                "spec.nodeAffinity: Required value: Local volume requires node affinity".into(),
            ],
        ),
        (
            "",
            "PersistentVolume",
            pv(json!({"accessModes": ["ReadWriteMany"], "capacity": {"storage": "1Gi"},
                "csi": {"driver": "", "volumeHandle": ""}})),
            vec![
                "spec.csi.driver: Required value".into(),
                csi_driver,
                "spec.csi.volumeHandle: Required value".into(),
            ],
        ),
    ];
    check_create(cases);
    let host = |path: &str| {
        pv(
            json!({"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "hostPath": {"path": path}}),
        )
    };
    check_update(
        "",
        "PersistentVolume",
        host("/a"),
        host("/b"),
        &[
            "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation\n",
        ],
    );
}
