#!/usr/bin/env python3
"""Writes a parent kubeconfig with N contexts (default 5,000, ~27 MB) for the
benchmark: each context has its own cluster (inline CA) and user (inline client
certificate and RSA key), like a kubeconfig that collected many clusters.
Usage: make-big-kubeconfig.py OUT [N]. Deterministic: same N, same bytes."""
import base64
import sys

if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
    sys.exit(__doc__)
out, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5000

def blob(label, size, seed):
    # PEM-shaped filler of a realistic size; the benchmark never parses it as X.509.
    body = base64.b64encode(bytes((seed * 31 + i * 7) % 256 for i in range(size))).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    pem = f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"
    return base64.b64encode(pem.encode()).decode()

ca, cert, key = blob("CERTIFICATE", 760, 1), blob("CERTIFICATE", 900, 2), blob("RSA PRIVATE KEY", 1100, 3)
with open(out, "w") as f:
    f.write("apiVersion: v1\nkind: Config\npreferences: {}\n")
    f.write(f"current-context: ctx-00000\nclusters:\n")
    for i in range(n):
        f.write(f"- cluster:\n    certificate-authority-data: {ca}\n    server: https://10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}:6443\n  name: cluster-{i:05d}\n")
    f.write("contexts:\n")
    for i in range(n):
        f.write(f"- context:\n    cluster: cluster-{i:05d}\n    namespace: ns-{i:05d}\n    user: user-{i:05d}\n  name: ctx-{i:05d}\n")
    f.write("users:\n")
    for i in range(n):
        f.write(f"- name: user-{i:05d}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n")
