"""Checks of deploy/kubernetes, run by the venv of deploy/local/install.

  check_manifests.py schemas DIR VERSION...
      Every document of every *.yaml in DIR (but kustomization.yaml) passes
      the strict schema (unknown fields are errors) of each Kubernetes
      VERSION bundled with kubernetes-validate; a kind it has no schema for is
      an error, not the tool's warning. No duplicate keys. The kustomization
      lists every manifest but the example Secret and the migrate Job.

  check_manifests.py config DIR CANCELCTL
      Every container that runs with --config gets that file from the
      ConfigMap and its environment only from the ConfigMap and the example
      Secret, and `cancelctl config check` accepts the config with exactly
      that environment. Each Deployment probes /healthz and /readyz and is
      scraped on the port the config's metrics.listen binds, on every
      address; its grace period covers the shutdown the config allows; every
      pod runs with the restrictions deploy/README.md "Kubernetes" promises.

  check_manifests.py container DIR PROGRAM...
      DIR/Containerfile, which cannot be built here, against what can be
      known without building it: its runtime stage installs the Debian
      package of every shared library the built PROGRAMs link, and ships the
      programs, the migrations, the config path and the user the manifests
      name.

Prints one line per finding; exit 1 if there is any.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from kubernetes_validate import utils as kv

problems = []


def problem(where, msg):
    problems.append(f"{where}: {msg}")
    print(f"FAIL {where}: {msg}")


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one map: PyYAML keeps the
    last one silently, and so would a reader of the file."""


def _map_no_duplicates(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _map_no_duplicates)


def load_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.load_all(f, Loader=StrictLoader) if d is not None]


def manifests(directory):
    """{file name: [documents]} of every manifest in directory."""
    out = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        try:
            out[path.name] = load_docs(path)
        except yaml.YAMLError as e:
            problem(path.name, f"not valid YAML: {e}")
    return out


def check_schemas(directory, versions):
    docs = manifests(directory)
    for name, resources in docs.items():
        if not resources:
            problem(name, "no document")
        for r in resources:
            what = f"{name}: {r.get('kind')}/{r.get('metadata', {}).get('name')}"
            for version in versions:
                try:
                    got = kv.validate(r, version, strict=True)
                except kv.ValidationError as e:
                    path = ".".join(str(p) for p in e.path)
                    problem(what, f"Kubernetes {e.version}: {path}: {e.message}")
                    continue
                except (kv.SchemaNotFoundError, kv.VersionNotSupportedError, kv.InvalidSchemaError) as e:
                    problem(what, f"Kubernetes {version}: {getattr(e, 'message', e)}")
                    continue
                if got != kv.major_minor(version):
                    problem(what, f"asked for Kubernetes {version}, validated against {got}")
                else:
                    print(f"ok {what}: Kubernetes {got} (strict)")

    kustomization = load_docs(Path(directory) / "kustomization.yaml")[0]
    listed = kustomization.get("resources", [])
    for name in listed:
        if name not in docs:
            problem("kustomization.yaml", f"lists {name}, which is not a manifest here that loads")
    for name in docs:
        if name not in listed and name not in ("secret.example.yaml", "migrate-job.yaml"):
            problem("kustomization.yaml", f"does not list {name}")


def pod_templates(docs):
    """(where, kind, pod template) of every workload."""
    for name, resources in docs.items():
        for r in resources:
            where = f"{name}: {r['kind']}/{r['metadata']['name']}"
            if r["kind"] in ("Deployment", "Job"):
                yield where, r["kind"], r["spec"]["template"]
            elif r["kind"] == "CronJob":
                yield where, r["kind"], r["spec"]["jobTemplate"]["spec"]["template"]


def find(docs, kind, name):
    for resources in docs.values():
        for r in resources:
            if r["kind"] == kind and r["metadata"]["name"] == name:
                return r
    return None


def container_env(where, container, configmaps, secret):
    """The environment the container gets, resolved against the ConfigMaps
    and the example Secret; a reference to a missing key is a finding."""
    env = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
            continue
        ref = e.get("valueFrom", {})
        if "secretKeyRef" in ref:
            r = ref["secretKeyRef"]
            if r["name"] != secret["metadata"]["name"] or r["key"] not in secret.get("stringData", {}):
                problem(where, f"env {e['name']}: Secret {r['name']} key {r['key']} is not in secret.example.yaml")
                continue
            env[e["name"]] = secret["stringData"][r["key"]]
        elif "configMapKeyRef" in ref:
            r = ref["configMapKeyRef"]
            cm = configmaps.get(r["name"], {})
            if r["key"] not in cm:
                problem(where, f"env {e['name']}: ConfigMap {r['name']} has no key {r['key']}")
                continue
            env[e["name"]] = cm[r["key"]]
        else:
            problem(where, f"env {e['name']}: neither a value nor a ConfigMap or Secret key")
    if container.get("envFrom"):
        problem(where, "envFrom: name each variable, so that a missing key stops the pod")
    return env


def config_file(where, pod, container, configmaps):
    """(config text, path) the container's --config names, from the
    ConfigMap volume mounted there; None (a finding) when there is none."""
    cmd = container.get("command", []) + container.get("args", [])
    if "--config" not in cmd:
        problem(where, "does not run with --config")
        return None
    path = cmd[cmd.index("--config") + 1]
    for m in container.get("volumeMounts", []):
        mount = m["mountPath"].rstrip("/") + "/"
        if not path.startswith(mount):
            continue
        vol = next((v for v in pod["spec"].get("volumes", []) if v["name"] == m["name"]), None)
        if vol is None or "configMap" not in vol:
            problem(where, f"--config {path}: volume {m['name']} is not a ConfigMap")
            return None
        rel = path[len(mount):]
        items = vol["configMap"].get("items") or [{"key": k, "path": k} for k in
                                                   configmaps.get(vol["configMap"]["name"], {})]
        key = next((i["key"] for i in items if i["path"] == rel), None)
        data = configmaps.get(vol["configMap"]["name"], {})
        if key is None or key not in data:
            problem(where, f"--config {path}: ConfigMap {vol['configMap']['name']} does not put a file there")
            return None
        return data[key], path
    problem(where, f"--config {path}: no volume is mounted there")
    return None


def duration_s(text):
    """Seconds of a config duration such as "30s", "1m30s", "500ms"."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+)(ms|s|m|h|d)", text)
    return sum(int(n) * units[u] for n, u in parts)


def shutdown_s(component, cfg):
    """The longest clean stop the config allows a process, as README
    "Running it in production" and the sources describe it."""
    gateway_timeout = max(duration_s(g.get("timeout", "10s")) for g in cfg["gateways"].values())
    flush = duration_s(cfg.get("relay", {}).get("flush_timeout", "10s"))
    return {
        # calls in flight: the longest gateway timeout plus 5s (retry_worker.c)
        "retry-consumer": gateway_timeout + 5,
        # reports, a reconciliation inquiry, the producer's final flush (relay.c)
        "outbox-relay": flush + gateway_timeout + flush,
        # a batch's transaction (statement_timeout)
        "intake-consumer": duration_s(cfg.get("database", {}).get("statement_timeout", "30s")),
        # posts in flight: the Slack timeout plus 1s (alert_engine.c)
        "alert-consumer": duration_s(cfg["alerts"]["slack"].get("timeout", "10s")) + 1,
    }.get(component)


def port_of(container, port):
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    return None


def check_deployment(where, pod, container, listen, cfg, component):
    host, _, port = listen.rpartition(":")
    port = int(port)
    if host != "0.0.0.0":
        problem(where, f"metrics.listen {listen}: the kubelet's probes reach the pod's address, bind 0.0.0.0")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container.get(probe, {}).get("httpGet")
        if get is None:
            problem(where, f"no {probe} httpGet")
            continue
        if get.get("path") != path:
            problem(where, f"{probe} asks {get.get('path')}, not {path}")
        if port_of(container, get.get("port")) != port:
            problem(where, f"{probe} port {get.get('port')} is not metrics.listen's {port}")
    annotations = pod.get("metadata", {}).get("annotations", {})
    if annotations.get("prometheus.io/scrape") != "true" or annotations.get("prometheus.io/port") != str(port):
        problem(where, f"prometheus.io/scrape and prometheus.io/port: \"{port}\" annotations expected")
    if annotations.get("prometheus.io/path", "/metrics") != "/metrics":
        problem(where, "prometheus.io/path is not /metrics")
    need = shutdown_s(component, cfg)
    grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
    if need is None:
        problem(where, f"no shutdown time known for {component}")
    elif grace < need + 5:
        problem(where, f"terminationGracePeriodSeconds {grace} < the {need:g}s its shutdown may take + 5s")


def check_restrictions(where, pod):
    spec = pod["spec"]
    sc = spec.get("securityContext", {})
    if sc.get("runAsNonRoot") is not True:
        problem(where, "pod securityContext.runAsNonRoot is not true")
    if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problem(where, "pod seccompProfile is not RuntimeDefault")
    if spec.get("automountServiceAccountToken") is not False:
        problem(where, "automountServiceAccountToken is not false")
    for c in spec.get("initContainers", []) + spec["containers"]:
        csc = c.get("securityContext", {})
        if csc.get("allowPrivilegeEscalation") is not False:
            problem(where, f"{c['name']}: allowPrivilegeEscalation is not false")
        if csc.get("readOnlyRootFilesystem") is not True:
            problem(where, f"{c['name']}: readOnlyRootFilesystem is not true")
        if csc.get("capabilities", {}).get("drop") != ["ALL"]:
            problem(where, f"{c['name']}: capabilities do not drop ALL")
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            if not res.get(kind, {}).get("memory") or not res.get(kind, {}).get("cpu"):
                problem(where, f"{c['name']}: no cpu and memory {kind}")


def cancelctl_check(where, cancelctl, text, env):
    """cancelctl config check's JSON on text with exactly env, or None."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cancel-retry.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        p = subprocess.run([cancelctl, "--json", "--config", path, "config", "check"],
                           env=env, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        problem(where, f"cancelctl config check refused the config: {p.stderr.strip()}")
        return None
    return json.loads(p.stdout)


def check_config(directory, cancelctl):
    docs = manifests(directory)
    configmaps = {r["metadata"]["name"]: r.get("data", {})
                  for rs in docs.values() for r in rs if r["kind"] == "ConfigMap"}
    secret = find(docs, "Secret", "cancel-retry-secrets")
    if secret is None:
        problem("secret.example.yaml", "no Secret cancel-retry-secrets")
        return
    checked = 0
    for where, kind, pod in pod_templates(docs):
        check_restrictions(where, pod)
        for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
            cwhere = f"{where}: {c['name']}"
            found = config_file(cwhere, pod, c, configmaps)
            if found is None:
                continue
            text, _ = found
            env = container_env(cwhere, c, configmaps, secret)
            result = cancelctl_check(cwhere, cancelctl, text, env)
            if result is None:
                continue
            checked += 1
            print(f"ok {cwhere}: cancelctl config check accepts the config with the pod's env")
            if kind == "Deployment":
                component = pod["metadata"]["labels"].get("app.kubernetes.io/component")
                listen = result.get("metricsListen")
                if listen is None:
                    problem(cwhere, "metrics.listen is not set: nothing answers the probes")
                    continue
                check_deployment(cwhere, pod, c, listen, yaml.safe_load(text), component)
    if checked == 0:
        problem(directory, "no container's config was checked")


def containerfile_stages(path):
    """{stage name: [(instruction, arguments)]}, continuation lines joined."""
    stages, current = {}, None
    text = Path(path).read_text(encoding="utf-8")
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            current = stages.setdefault(m.group(2) or m.group(1), [])
        elif current is not None:
            # A comment inside a continued RUN ends up in it: drop it.
            current.append((word, re.sub(r"\s#[^&]*", " ", rest).strip()))
    return stages


def apt_packages(instructions):
    """The packages of every `apt-get install ... --no-install-recommends` run."""
    out = []
    for word, rest in instructions:
        if word != "RUN":
            continue
        for m in re.finditer(r"apt-get install ([^&]*)", rest):
            out += [t for t in m.group(1).split() if not t.startswith("-")]
    return out


def packages_of_libraries(sonames):
    """{soname: the Debian package of the file the loader finds for it, or
    None}; one ldconfig and one dpkg -S for all (dpkg -S is slow)."""
    p = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True)
    path = {}
    for line in p.stdout.splitlines():
        name, sep, where = line.strip().partition(" => ")
        if sep and name.split()[0] in sonames:
            path.setdefault(name.split()[0], os.path.realpath(where))
    # usrmerge: dpkg may know /lib/... for the /usr/lib/... the loader names.
    candidates = {s: [f, re.sub(r"^/usr/lib/", "/lib/", f)] for s, f in path.items()}
    d = subprocess.run(["dpkg", "-S"] + [c for cs in candidates.values() for c in cs],
                       capture_output=True, text=True)
    owner = {}
    for line in d.stdout.splitlines():
        pkg, _, f = line.partition(": ")
        owner[f] = pkg.split(":")[0]
    return {s: next((owner[c] for c in candidates.get(s, []) if c in owner), None) for s in sonames}


def needed(program):
    p = subprocess.run(["objdump", "-p", program], capture_output=True, text=True, check=True)
    return [line.split()[1] for line in p.stdout.splitlines() if line.strip().startswith("NEEDED")]


# In debian:bookworm-slim already (Essential: yes); the rest must be installed.
BASE_PACKAGES = {"libc6"}


def check_container(directory, programs):
    stages = containerfile_stages(Path(directory) / "Containerfile")
    runtime = stages.get("runtime")
    if runtime is None:
        problem("Containerfile", "no stage named runtime")
        return
    installed = set(apt_packages(runtime)) | BASE_PACKAGES
    links = {os.path.basename(p): needed(p) for p in programs}
    owners = packages_of_libraries({so for sos in links.values() for so in sos})
    for program, sonames in links.items():
        for soname in sonames:
            pkg = owners[soname]
            if pkg is None:
                problem("Containerfile", f"{program} needs {soname}: no Debian package here holds it")
            elif pkg not in installed:
                problem("Containerfile", f"{program} needs {soname} from {pkg}, "
                        "which the runtime stage does not install")
            else:
                print(f"ok {program}: {soname} from {pkg}")

    build = "\n".join(rest for _, rest in stages.get("build", []))
    env = " ".join(rest for word, rest in runtime if word == "ENV")
    user = next((rest for word, rest in runtime if word == "USER"), "")
    docs = manifests(directory)
    for where, _, pod in pod_templates(docs):
        spec = pod["spec"]
        uid = spec.get("securityContext", {}).get("runAsUser")
        if user.split(":")[0] != str(uid):
            problem(where, f"runAsUser {uid} is not the image's USER {user}")
        for c in spec.get("initContainers", []) + spec["containers"]:
            cmd = c.get("command", []) + c.get("args", [])
            prog = cmd[0] if cmd else ""
            if not prog.startswith("/usr/bin/") or \
                    not re.search(rf"build/\S+/{re.escape(os.path.basename(prog))}\s", build):
                problem(where, f"{c['name']}: the image does not install {prog} in /usr/bin")
            if "--config" in cmd and f"CANCEL_RETRY_CONFIG={cmd[cmd.index('--config') + 1]}" not in env:
                problem(where, f"{c['name']}: --config {cmd[cmd.index('--config') + 1]} is not the image's CANCEL_RETRY_CONFIG")
            if "--migrations-dir" in cmd:
                mdir = cmd[cmd.index("--migrations-dir") + 1]
                if f"CANCEL_RETRY_MIGRATIONS_DIR={mdir}" not in env or f"/out{mdir}" not in build:
                    problem(where, f"{c['name']}: the image does not put the migrations in {mdir}")


def main(argv):
    checks = {"schemas": check_schemas, "config": lambda d, a: check_config(d, a[0]),
              "container": check_container}
    if len(argv) < 3 or argv[0] not in checks:
        print(__doc__, file=sys.stderr)
        return 2
    checks[argv[0]](argv[1], argv[2:])
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
