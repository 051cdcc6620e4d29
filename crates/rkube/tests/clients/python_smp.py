"""The official Python client against rkube: create a Service, then strategic-merge-patch a
second port in (ports merge by `port`), and read both back."""
import sys

from kubernetes import client, config

config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
svc = client.V1Service(
    metadata=client.V1ObjectMeta(name="py-svc"),
    spec=client.V1ServiceSpec(
        selector={"app": "py"},
        ports=[client.V1ServicePort(name="http", port=80, target_port=8080)],
    ),
)
v1.create_namespaced_service("default", svc)
# A dict body makes the client send application/strategic-merge-patch+json.
v1.patch_namespaced_service(
    "py-svc", "default",
    {"spec": {"ports": [{"name": "https", "port": 443, "targetPort": 8443}]}},
)
got = v1.read_namespaced_service("py-svc", "default")
ports = sorted((p.name, p.port, p.target_port) for p in got.spec.ports)
print(ports)
assert ports == [("http", 80, 8080), ("https", 443, 8443)], ports
print("ok")
