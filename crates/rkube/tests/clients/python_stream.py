"""exec and port-forward with the official Python client (kubernetes 37) against rkube.

Usage: python_stream.py KUBECONFIG POD  (POD runs busybox httpd on 8080; nothing on 8081)
Checks what the client's own e2e tests check: output on stdout and stderr, exit codes from
the error channel, interactive stdin, v5's close signal ending `cat`, the v4 protocol, and
raw port-forward with one refused port. Prints "all ok" when every check holds.
"""
import select
import sys
import time

from kubernetes import client, config
from kubernetes.stream import portforward, stream

kubeconfig, pod = sys.argv[1], sys.argv[2]
config.load_kube_config(config_file=kubeconfig)
api = client.CoreV1Api()


def check(cond, what):
    if not cond:
        print("FAILED:", what)
        sys.exit(1)


def exec_(command, protocol=None, **kw):
    args = dict(command=command, stderr=True, stdin=False, stdout=True, tty=False,
                _preload_content=False)
    args.update(kw)
    if protocol:
        args["_headers"] = {"sec-websocket-protocol": protocol}
    return stream(api.connect_get_namespaced_pod_exec, pod, "default", **args)


for protocol in ("v5.channel.k8s.io", "v4.channel.k8s.io"):
    # Output on both streams.
    resp = exec_(["sh", "-c", "echo out; echo err >&2"], protocol)
    check(resp.subprotocol == protocol, f"negotiated {resp.subprotocol!r}, asked {protocol}")
    resp.run_forever(timeout=20)
    check(resp.read_stdout() == "out\n", f"{protocol} stdout")
    check(resp.read_stderr() == "err\n", f"{protocol} stderr")
    check(resp.returncode == 0, f"{protocol} returncode {resp.returncode}")

    # Exit codes, as the client's test_exit_code.
    for command, code in ((["false"], 1), (["/bin/sh", "-c", "sleep 1; exit 3"], 3),
                          (["true"], 0), (["/bin/sh", "-c", "ls /"], 0)):
        resp = exec_(command, protocol)
        check(resp.returncode is None, "returncode before the end")
        resp.run_forever(timeout=20)
        check(resp.returncode == code, f"{protocol} {command}: {resp.returncode} != {code}")

    # Interactive stdin, as the client's test_pod_apis.
    resp = exec_(["/bin/sh"], protocol, stdin=True)
    resp.write_stdin("echo test string 1\n")
    line = resp.readline_stdout(timeout=10)
    check(line == "test string 1", f"{protocol} interactive line {line!r}")
    resp.write_stdin("echo test string 2 >&2\n")
    line = resp.readline_stderr(timeout=10)
    check(line == "test string 2", f"{protocol} interactive stderr {line!r}")
    resp.write_stdin("exit 4\n")
    resp.run_forever(timeout=20)
    check(not resp.is_open(), f"{protocol} connection closed after exit")
    check(resp.returncode == 4, f"{protocol} interactive returncode {resp.returncode}")

    # The one-shot helper (preloaded content).
    out = stream(api.connect_get_namespaced_pod_exec, pod, "default",
                 command=["echo", "preloaded"], stderr=True, stdin=False, stdout=True,
                 tty=False)
    check(out == "preloaded\n", f"preloaded output {out!r}")

# v5's close signal ends `cat`, as the client's test_pod_exec_close_channel.
resp = exec_(["/bin/sh", "-c", "cat"], None, stdin=True)
check(resp.subprotocol == "v5.channel.k8s.io", "v5 is the default")
resp.write_stdin("test-close\n")
line = resp.readline_stdout(timeout=10)
check(line == "test-close", f"cat echoed {line!r}")
resp.close_channel(0)
resp.run_forever(timeout=15)
check(not resp.is_open(), "connection closes after cat exits")
check(resp.returncode == 0, f"cat returncode {resp.returncode}")

# Raw port-forward, as the client's test_portforward_raw: 8080 answers, 8081 is refused.
for attempt in range(3):
    pf = portforward(api.connect_get_namespaced_pod_portforward, pod, "default",
                     ports="8080,8081")
    check(pf.connected, "port-forward connected")
    sock = pf.socket(8080)
    sock.setblocking(True)
    sock.sendall(b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n")
    reply = b""
    deadline = time.time() + 30
    page = b"hello-from-" + pod.encode() + b"\n"
    while not reply.endswith(page) and time.time() < deadline:
        r, _, _ = select.select([sock], [], [], 1)
        if r:
            data = sock.recv(4096)
            if not data:
                break
            reply += data
    check(b"200 OK" in reply and reply.endswith(page),
          f"http reply {reply!r}")
    refused = pf.socket(8081)
    refused.setblocking(True)
    check(refused.recv(1024) == b"", "refused port's socket closes")
    check(pf.error(8081) is not None, "refused port has an error")
    check(pf.error(8080) is None, f"no error for the good port: {pf.error(8080)!r}")
    sock.close()
    refused.close()
    deadline = time.time() + 10
    while pf.connected and time.time() < deadline:
        time.sleep(0.1)
    check(not pf.connected, "port-forward ends once its sockets are closed")

print("all ok")
