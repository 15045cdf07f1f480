#!/bin/sh
# Validates deploy/ without Docker, Kubernetes or a running systemd:
#   1. shellcheck on every *.sh under deploy/ and scripts/
#   2. yamllint (deploy/.yamllint.yaml) on every YAML file under deploy/
#   3. kubernetes-validate --strict on the Kubernetes manifests (schema of the newest Kubernetes
#      it knows), then cross-checks: Service selector and ports against the producer Job, the
#      worker's --connect against the Service, Secret volumes and key paths, security contexts
#   4. systemd-analyze verify on the units, and `systemd-analyze security --offline` exposure
#   5. the Dockerfile: stages, `swift build --product` names against Package.swift, Swift version
#      against swift-tools-version, COPY --from paths, non-root user, binaries the commands use
#   6. compose.yaml and compose.curve.yaml: services, build context and Dockerfile paths, secrets
#      (no `docker compose config` here: there is no Docker engine)
#   7. deploy/ssh/pool-ssh.sh for real, through a local stand-in for ssh and a stub worker
#   8. metrics: the Grafana dashboard is JSON whose queries (and the KEDA ScaledObject's) name only
#      metrics the code publishes (Sources/WorkerPool/Metrics/PoolMetricNames.swift); promtool
#      check config on the Prometheus configs; pod annotations, container ports and --metrics agree
# Installs shellcheck, yamllint, systemd, prometheus (apt: promtool) and kubernetes-validate (pip)
# if they are missing.
# Prints one line per failure and exits 1 if anything failed.
#
#   sh scripts/check-deploy.sh
set -u
cd "$(dirname "$0")/.." || exit 2

failures=0
fail() {
    echo "check-deploy: FAILED: $*" >&2
    failures=$((failures + 1))
}
step() { echo "check-deploy: $*"; }

# ---- tools ---------------------------------------------------------------------------------
missing=""
command -v shellcheck >/dev/null 2>&1 || missing="$missing shellcheck"
command -v yamllint >/dev/null 2>&1 || missing="$missing yamllint"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
if [ -n "$missing" ]; then
    step "installing$missing"
    if [ "$(id -u)" -eq 0 ]; then
        sudo=""
    elif command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    else
        echo "check-deploy: missing$missing and this user cannot install; as root: apt-get install -y$missing" >&2
        exit 2
    fi
    # shellcheck disable=SC2086 # $sudo and $missing are lists of words
    { $sudo apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null; } \
        || { echo "check-deploy: apt-get install$missing failed" >&2; exit 2; }
fi

python=""
for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1; then
        python=$candidate
        break
    fi
done
[ -n "$python" ] || { echo "check-deploy: python3 is needed (apt-get install -y python3)" >&2; exit 2; }
if ! "$python" -c 'import kubernetes_validate, yaml' >/dev/null 2>&1; then
    step "installing kubernetes-validate"
    if "$python" -m pip --version >/dev/null 2>&1; then
        # A Debian or Ubuntu system Python refuses plain installs (PEP 668): then say so explicitly.
        PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
            "$python" -m pip install --quiet kubernetes-validate 2>/dev/null \
            || PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
                "$python" -m pip install --quiet --break-system-packages kubernetes-validate \
            || fail "python3 -m pip install kubernetes-validate failed"
    else
        fail "kubernetes-validate is missing and $python has no pip: apt-get install -y python3-pip, then python3 -m pip install kubernetes-validate"
    fi
fi
have_kv=no
"$python" -c 'import kubernetes_validate, yaml' >/dev/null 2>&1 && have_kv=yes
if ! "$python" -c 'import yaml' >/dev/null 2>&1; then
    # yamllint's own python has PyYAML; use it for the cross-checks if this one has none.
    [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import yaml' >/dev/null 2>&1 && python=/usr/bin/python3
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- 1. shellcheck -------------------------------------------------------------------------
step "shellcheck"
find deploy scripts -name '*.sh' -type f | sort >"$tmp/scripts"
[ -s "$tmp/scripts" ] || fail "no *.sh found under deploy/ and scripts/"
while IFS= read -r script; do
    shellcheck "$script" >"$tmp/out" 2>&1 || { fail "shellcheck $script:"; cat "$tmp/out" >&2; }
done <"$tmp/scripts"

# ---- 2. yamllint ---------------------------------------------------------------------------
step "yamllint"
yamllint --strict -c deploy/.yamllint.yaml deploy >"$tmp/out" 2>&1 \
    || { fail "yamllint deploy:"; cat "$tmp/out" >&2; }

# ---- 3. Kubernetes schemas -----------------------------------------------------------------
step "kubernetes-validate"
if [ "$have_kv" = yes ]; then
    strict=""
    "$python" -m kubernetes_validate --help 2>/dev/null | grep -q -- --strict && strict="--strict"
    for manifest in deploy/kubernetes/*.yaml; do
        # kustomization.yaml configures kustomize: it is no Kubernetes object.
        grep -q '^kind: Kustomization' "$manifest" && continue
        "$python" -m kubernetes_validate $strict --quiet "$manifest" >"$tmp/out" 2>&1 \
            || { fail "kubernetes-validate $strict $manifest:"; cat "$tmp/out" >&2; }
    done
elif [ "$failures" -eq 0 ]; then
    fail "kubernetes-validate is not available: the manifests' schemas were not checked"
fi

# ---- 4. systemd ----------------------------------------------------------------------------
# verify loads the units as systemd would and checks every setting, but it also wants each
# ExecStart binary to exist and be executable. The units name /usr/local/bin/producer and
# /usr/local/bin/worker, which a CI machine does not have: copy the units into a temporary
# folder with that path replaced by stub executables there. A template cannot be verified as
# such, so zmq-worker@.service is verified as the instance zmq-worker@example.service.
# verify exits 0 even for an unknown setting ("Unknown key ..., ignoring"), so any line it
# prints about our units counts as a failure.
step "systemd-analyze verify"
mkdir -p "$tmp/units" "$tmp/bin"
for binary in producer worker; do
    printf '#!/bin/sh\nexit 0\n' >"$tmp/bin/$binary"
    chmod 755 "$tmp/bin/$binary"
done
sed "s#/usr/local/bin/#$tmp/bin/#g" deploy/systemd/zmq-producer.service >"$tmp/units/zmq-producer.service"
sed "s#/usr/local/bin/#$tmp/bin/#g" deploy/systemd/zmq-worker@.service >"$tmp/units/zmq-worker@example.service"
for unit in "$tmp/units/zmq-producer.service" "$tmp/units/zmq-worker@example.service"; do
    status=0
    (cd "$tmp/units" && systemd-analyze verify --man=no "$unit") >"$tmp/out" 2>&1 || status=$?
    if [ "$status" -ne 0 ] || grep -q 'zmq-' "$tmp/out"; then
        fail "systemd-analyze verify ${unit##*/} (status $status):"
        cat "$tmp/out" >&2
    elif [ -s "$tmp/out" ]; then
        sed 's/^/check-deploy: note: /' "$tmp/out"
    fi
    # Exposure score of the sandbox, 0 (locked down) to 10 (none): these units score about 1.7.
    if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
        (cd "$tmp/units" && systemd-analyze security --offline=yes --threshold=25 "$unit") >"$tmp/out" 2>&1 \
            || { fail "systemd-analyze security ${unit##*/}: exposure above 2.5"; grep -E '✗|Overall' "$tmp/out" >&2; }
    fi
done

# ---- 5-6 and the Kubernetes cross-checks (python) --------------------------------------------
step "Dockerfile, compose and manifest cross-checks"
"$python" - >"$tmp/out" 2>&1 <<'EOF' || { fail "cross-checks:"; cat "$tmp/out" >&2; }
import os, re, shlex, sys
import yaml

problems = []
def problem(where, text):
    problems.append(f"{where}: {text}")

package = open("Package.swift").read()
executables = set(re.findall(r'\.executable\(\s*name:\s*"([^"]+)"', package))
tools = re.search(r"swift-tools-version:\s*(\d+)\.(\d+)", package)
tools_version = (int(tools.group(1)), int(tools.group(2))) if tools else (0, 0)

# ---- Dockerfile ----
dockerfile = "deploy/docker/Dockerfile"
lines, pending = [], ""
for raw in open(dockerfile):
    stripped = raw.strip()
    if stripped.startswith("#") and not pending:
        continue
    if stripped.endswith("\\"):
        pending += stripped[:-1] + " "
        continue
    pending += stripped
    if pending.strip():
        lines.append(pending.strip())
    pending = ""
args, stages, current = {}, [], None
for line in lines:
    word, _, rest = line.partition(" ")
    word = word.upper()
    if word == "ARG" and current is None:
        name, _, default = rest.partition("=")
        args[name.strip()] = default.strip()
    elif word == "FROM":
        parts = [p for p in rest.split() if not p.startswith("--")]
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), parts[0])
        name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(len(stages))
        current = {"name": name, "image": image, "lines": []}
        stages.append(current)
    elif current is not None:
        current["lines"].append((word, rest))
if len(stages) < 2:
    problem(dockerfile, "expected a build stage and a runtime stage")
else:
    build, runtime = stages[0], stages[-1]
    m = re.match(r"(?:docker\.io/)?(?:library/)?swift:(\d+)\.(\d+)", build["image"])
    if not m:
        problem(dockerfile, f"build stage image {build['image']!r} is not an official swift:X.Y image")
    elif (int(m.group(1)), int(m.group(2))) < tools_version:
        problem(dockerfile, f"{build['image']} is older than swift-tools-version {tools_version}")
    build_runs = " ".join(rest for word, rest in build["lines"] if word == "RUN")
    built = set(re.findall(r"swift build[^&;]*?--product[ =](\S+)", build_runs))
    for product in built - executables:
        problem(dockerfile, f"swift build --product {product}: Package.swift has no such executable")
    for product in ("producer", "worker"):
        if product not in built:
            problem(dockerfile, f"the build stage does not build --product {product}")
    if "--static-swift-stdlib" not in build_runs:
        problem(dockerfile, "swift build without --static-swift-stdlib: the runtime image has no Swift libraries")
    if "libzmq3-dev" not in build_runs:
        problem(dockerfile, "the build stage does not install libzmq3-dev")
    stage_names = [s["name"] for s in stages]
    copied = set()
    for index, stage in enumerate(stages):
        for word, rest in stage["lines"]:
            if word != "COPY" or "--from=" not in rest:
                continue
            parts = rest.split()
            source_stage = next(p.split("=", 1)[1] for p in parts if p.startswith("--from="))
            paths = [p for p in parts if not p.startswith("--")]
            sources, destination = paths[:-1], paths[-1]
            if source_stage not in stage_names[:index]:
                problem(dockerfile, f"COPY --from={source_stage}: no earlier stage of that name")
                continue
            origin = stages[stage_names.index(source_stage)]
            origin_runs = " ".join(r for w, r in origin["lines"] if w == "RUN")
            for source in sources:
                directory, base = os.path.split(source)
                if directory not in origin_runs or base not in origin_runs:
                    problem(dockerfile, f"COPY --from={source_stage} {source}: stage {source_stage} never makes it")
                if stage is runtime and destination.endswith("/"):
                    copied.add(base)
    runtime_words = dict((w, r) for w, r in runtime["lines"])
    user = runtime_words.get("USER", "root").split(":")[0]
    if user in ("root", "0"):
        problem(dockerfile, "the runtime stage runs as root (no USER, or USER root)")
    if "ENTRYPOINT" in runtime_words:
        problem(dockerfile, "the runtime stage sets an ENTRYPOINT (commands name producer or worker)")
    runtime_runs = " ".join(r for w, r in runtime["lines"] if w == "RUN")
    if "libzmq5" not in runtime_runs:
        problem(dockerfile, "the runtime stage does not install libzmq5")
    for binary in ("producer", "worker"):
        if binary not in copied:
            problem(dockerfile, f"the runtime stage does not COPY the {binary} binary from the build stage")
    cmd = runtime_words.get("CMD", "")
    if cmd and yaml.safe_load(cmd)[0] not in copied:
        problem(dockerfile, f"CMD {cmd} runs no binary the image has")
ignore_file = dockerfile + ".dockerignore"
if not os.path.exists(ignore_file):
    problem(ignore_file, "missing (BuildKit reads it for deploy/docker/Dockerfile)")
else:
    patterns = [l.strip() for l in open(ignore_file) if l.strip() and not l.startswith("#")]
    for needed in (".build", ".git"):
        if needed not in patterns:
            problem(ignore_file, f"does not exclude {needed}")
image_binaries = {"producer", "worker"}

# ---- compose ----
def command_list(value):
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in (value or [])]

compose_dir = "deploy/docker"
compose_file = os.path.join(compose_dir, "compose.yaml")
compose = yaml.safe_load(open(compose_file)) or {}
services = compose.get("services") or {}
for name in ("producer", "worker"):
    service = services.get(name)
    if not isinstance(service, dict):
        problem(compose_file, f"services.{name} is missing")
        continue
    if "image" not in service and "build" not in service:
        problem(compose_file, f"services.{name} has neither image nor build")
    build = service.get("build")
    if build is not None:
        context = build if isinstance(build, str) else build.get("context", ".")
        context_dir = os.path.normpath(os.path.join(compose_dir, context))
        if not os.path.isdir(context_dir):
            problem(compose_file, f"services.{name}.build.context {context} is no directory")
        elif not os.path.exists(os.path.join(context_dir, "Package.swift")):
            problem(compose_file, f"services.{name}.build.context {context} is not the repository root")
        if isinstance(build, dict) and "dockerfile" in build:
            if not os.path.exists(os.path.join(context_dir, build["dockerfile"])):
                problem(compose_file, f"services.{name}.build.dockerfile {build['dockerfile']} does not exist")
    command = command_list(service.get("command"))
    if not command or command[0] != name:
        problem(compose_file, f"services.{name}.command should run {name}, not {command[:1]}")
    elif command[0] not in image_binaries:
        problem(compose_file, f"services.{name} runs {command[0]}, which the image does not have")
worker_command = command_list((services.get("worker") or {}).get("command"))
if "--connect" in worker_command:
    host = worker_command[worker_command.index("--connect") + 1]
    if host not in services:
        problem(compose_file, f"worker --connect {host}: no service of that name")
else:
    problem(compose_file, "the worker has no --connect")
if "--health-file" in worker_command:
    health = worker_command[worker_command.index("--health-file") + 1]
    test = " ".join(command_list(((services.get("worker") or {}).get("healthcheck") or {}).get("test")))
    if not re.search(re.escape(health) + r"(?![\w.-])", test):
        problem(compose_file, f"the worker's healthcheck does not read its --health-file {health}")

override_file = os.path.join(compose_dir, "compose.curve.yaml")
override = yaml.safe_load(open(override_file)) or {}
secrets = override.get("secrets") or {}
for name, service in (override.get("services") or {}).items():
    if name not in services:
        problem(override_file, f"services.{name} is not a service of compose.yaml")
    command = command_list(service.get("command"))
    for secret in service.get("secrets") or []:
        secret_name = secret if isinstance(secret, str) else secret.get("source")
        if secret_name not in secrets:
            problem(override_file, f"services.{name} uses secret {secret_name}, not defined under secrets")
        elif f"/run/secrets/{secret_name}" not in command:
            problem(override_file, f"services.{name} mounts secret {secret_name} but its command never names it")
    for option in ("--curve-key", "--curve-server-key", "--curve-allow"):
        if option in command:
            path = command[command.index(option) + 1]
            if not path.startswith("/run/secrets/") or path.rsplit("/", 1)[1] not in (service.get("secrets") or []):
                problem(override_file, f"services.{name}: {option} {path} is not one of its secrets")
for name, secret in secrets.items():
    if not str(secret.get("file", "")).startswith("./keys/"):
        problem(override_file, f"secret {name} should come from ./keys/")

# ---- Kubernetes cross-checks ----
k8s = "deploy/kubernetes"
documents = {}
for file in sorted(os.listdir(k8s)):
    if file.endswith(".yaml"):
        for document in yaml.safe_load_all(open(os.path.join(k8s, file))):
            if document:
                documents.setdefault(document.get("kind"), []).append((file, document))
kustomization = documents.get("Kustomization", [(None, {})])[0][1]
listed = kustomization.get("resources") or []
for resource in listed:
    if not os.path.exists(os.path.join(k8s, resource)):
        problem(f"{k8s}/kustomization.yaml", f"resource {resource} does not exist")
for file in sorted(os.listdir(k8s)):
    if file.endswith(".yaml") and file not in listed and file != "kustomization.yaml" and ".example." not in file:
        problem(f"{k8s}/kustomization.yaml", f"{file} is not listed in resources")
if any(".example." in r for r in listed):
    problem(f"{k8s}/kustomization.yaml", "lists an example Secret: applying it would overwrite the real keys")

def find(kind, name):
    for file, document in documents.get(kind, []):
        if document["metadata"]["name"] == name:
            return file, document
    return None, None

service_file, service = find("Service", "zmq-producer")
job_file, job = find("Job", "zmq-producer")
deployment_file, deployment = find("Deployment", "zmq-worker")
secret_file, secret = find("Secret", "zmq-pool-curve")
for what, found in (("Service zmq-producer", service), ("Job zmq-producer", job),
                    ("Deployment zmq-worker", deployment), ("Secret zmq-pool-curve (example)", secret)):
    if found is None:
        problem(k8s, f"{what} is missing")
secret_keys = set()
if secret:
    secret_keys = set((secret.get("stringData") or {}).keys()) | set((secret.get("data") or {}).keys())

def check_pod(file, kind, template, binary):
    spec = template["spec"]
    labels = template["metadata"].get("labels") or {}
    pod_context = spec.get("securityContext") or {}
    if not pod_context.get("runAsNonRoot"):
        problem(file, f"{kind}: pod securityContext.runAsNonRoot is not true")
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for container in spec["containers"]:
        where = f"{file} {kind} container {container['name']}"
        context = container.get("securityContext") or {}
        if context.get("allowPrivilegeEscalation") is not False:
            problem(where, "allowPrivilegeEscalation is not false")
        if context.get("readOnlyRootFilesystem") is not True:
            problem(where, "readOnlyRootFilesystem is not true")
        if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
            problem(where, "capabilities do not drop ALL")
        if not (container.get("resources") or {}).get("limits") or not (container.get("resources") or {}).get("requests"):
            problem(where, "resources need requests and limits")
        image = container["image"].split(":")[0]
        if image not in [i["name"] for i in kustomization.get("images") or []]:
            problem(where, f"image {image} is not under images in kustomization.yaml")
        command = [str(c) for c in (container.get("command") or []) + (container.get("args") or [])]
        if not command or command[0] != binary:
            problem(where, f"command should run {binary}")
        mounts = {m["mountPath"].rstrip("/"): m for m in container.get("volumeMounts") or []}
        if "/tmp" not in mounts or "emptyDir" not in volumes.get(mounts["/tmp"]["name"], {}):
            problem(where, "no emptyDir at /tmp (the root file system is read-only)")
        for option in ("--curve-key", "--curve-server-key", "--curve-allow", "--health-file"):
            if option not in command:
                continue
            path = command[command.index(option) + 1]
            directory, base = os.path.split(path)
            mount = mounts.get(directory)
            if mount is None:
                problem(where, f"{option} {path}: nothing is mounted at {directory}")
                continue
            volume = volumes.get(mount["name"], {})
            if option == "--health-file":
                continue
            if "secret" not in volume or not mount.get("readOnly"):
                problem(where, f"{option} {path}: {directory} is not a read-only Secret volume")
                continue
            source = volume["secret"]
            if secret and source.get("secretName") != secret["metadata"]["name"]:
                problem(where, f"volume {volume['name']} uses Secret {source.get('secretName')}, not {secret['metadata']['name']}")
            items = {i["path"]: i["key"] for i in source.get("items") or []} or {k: k for k in secret_keys}
            if base not in items:
                problem(where, f"{option} {path}: the Secret volume has no item at {base}")
            elif secret_keys and items[base] not in secret_keys:
                problem(where, f"{option} {path}: Secret key {items[base]} is not in the example Secret")
    return labels, spec

if service and job:
    labels, spec = check_pod(job_file, "Job", job["spec"]["template"], "producer")
    selector = service["spec"].get("selector") or {}
    if not selector or any(labels.get(k) != v for k, v in selector.items()):
        problem(service_file, f"Service selector {selector} does not select the Job's pod labels {labels}")
    port_names = {p.get("name"): p["containerPort"] for c in spec["containers"] for p in c.get("ports") or []}
    expected = {"tasks": 5557, "results": 5558, "events": 5559}
    for port in service["spec"]["ports"]:
        target = port.get("targetPort", port["port"])
        if isinstance(target, str) and target not in port_names:
            problem(service_file, f"Service port {port['name']}: the Job's container has no port named {target}")
        if expected.get(port.get("name")) != port["port"]:
            problem(service_file, f"Service port {port.get('name')} should be {expected.get(port.get('name'))}")
    if set(p.get("name") for p in service["spec"]["ports"]) != set(expected):
        problem(service_file, "the Service must expose tasks, results and events")
if deployment:
    labels, spec = check_pod(deployment_file, "Deployment", deployment["spec"]["template"], "worker")
    for container in spec["containers"]:
        command = [str(c) for c in container.get("command") or []]
        if "--connect" not in command:
            problem(deployment_file, "the worker has no --connect")
        elif service and command[command.index("--connect") + 1] != service["metadata"]["name"]:
            problem(deployment_file, f"worker --connect {command[command.index('--connect') + 1]} is not the Service's name")
        probes = yaml.safe_dump([container.get("readinessProbe"), container.get("livenessProbe")])
        if "--health-file" in command:
            health = re.escape(command[command.index("--health-file") + 1]) + r"(?![\w.-])"
            for probe in ("readinessProbe", "livenessProbe"):
                if not re.search(health, yaml.safe_dump(container.get(probe))):
                    problem(deployment_file, f"the worker's {probe} does not read its --health-file")
        if service and "/dev/tcp/" in probes and f"/dev/tcp/{service['metadata']['name']}/" not in probes:
            problem(deployment_file, "the liveness probe tests another host than the Service")

# ---- systemd: every ${VAR} an ExecStart uses is defined, every credential it reads is loaded ----
provided = {"CREDENTIALS_DIRECTORY", "STATE_DIRECTORY", "RUNTIME_DIRECTORY", "HOME", "USER"}
for unit, env_example in (("zmq-worker@.service", "example.env"), ("zmq-producer.service", "producer.env")):
    path = os.path.join("deploy/systemd", unit)
    text = open(path).read()
    settings = [tuple(l.split("=", 1)) for l in text.splitlines() if "=" in l and not l.startswith("#")]
    defined = set(provided)
    for key, value in settings:
        if key == "Environment":
            defined |= {w.split("=", 1)[0] for w in shlex.split(value)}
    example_path = os.path.join("deploy/systemd", env_example)
    if not os.path.exists(example_path):
        problem(path, f"its example env file {env_example} is missing")
    else:
        for line in open(example_path):
            if "=" in line and not line.lstrip().startswith("#"):
                defined.add(line.split("=", 1)[0].strip())
    credentials = {v.split(":", 1)[0] for k, v in settings if k == "LoadCredential"}
    exec_start = " ".join(v for k, v in settings if k == "ExecStart")
    for variable in re.findall(r"\$\{(\w+)\}|\$(\w+)", exec_start):
        variable = variable[0] or variable[1]
        if variable not in defined:
            problem(path, f"ExecStart uses ${variable}, which neither the unit nor {env_example} defines")
    for credential in re.findall(r"\$\{CREDENTIALS_DIRECTORY\}/([\w.-]+)", exec_start):
        if credential not in credentials:
            problem(path, f"ExecStart reads credential {credential}, which no LoadCredential= loads")
    binary = exec_start.split()[0] if exec_start else ""
    if os.path.basename(binary) not in image_binaries:
        problem(path, f"ExecStart runs {binary}, not producer or worker")

for line in problems:
    print(line)
sys.exit(1 if problems else 0)
EOF

# ---- 7. the ssh launcher, for real -----------------------------------------------------------
step "pool-ssh.sh (local stand-in for ssh, stub worker)"
sh deploy/ssh/test-pool-ssh.sh >"$tmp/out" 2>&1 || { fail "deploy/ssh/test-pool-ssh.sh:"; cat "$tmp/out" >&2; }

# ---- 8. metrics: dashboard, scrape configs, annotations, KEDA --------------------------------
step "metrics: dashboard queries, Prometheus configs, annotations, KEDA"
for dashboard in deploy/grafana/*.json; do
    "$python" -m json.tool "$dashboard" >/dev/null 2>"$tmp/out" || { fail "$dashboard is not JSON:"; cat "$tmp/out" >&2; }
done
promtool check config deploy/prometheus/compose.yml >"$tmp/out" 2>&1 \
    || { fail "promtool check config deploy/prometheus/compose.yml:"; cat "$tmp/out" >&2; }
# Debian's Prometheus is built without Kubernetes discovery: check the rest of the file (the
# relabelling) with the discovery swapped for a static target.
"$python" - "$tmp/kubernetes.yml" <<'EOF' || fail "cannot prepare deploy/prometheus/kubernetes.yml for promtool"
import sys, yaml
config = yaml.safe_load(open("deploy/prometheus/kubernetes.yml"))
for job in config["scrape_configs"]:
    if job.pop("kubernetes_sd_configs", None) is not None:
        job["static_configs"] = [{"targets": ["pod.example:9464"]}]
yaml.safe_dump(config, open(sys.argv[1], "w"))
EOF
promtool check config "$tmp/kubernetes.yml" >"$tmp/out" 2>&1 \
    || { fail "promtool check config deploy/prometheus/kubernetes.yml (discovery swapped):"; cat "$tmp/out" >&2; }
"$python" - >"$tmp/out" 2>&1 <<'EOF' || { fail "metrics cross-checks:"; cat "$tmp/out" >&2; }
import glob, json, re, sys
import yaml

problems = []
# The names the code publishes; a histogram also appears as _bucket, _sum and _count.
source = open("Sources/WorkerPool/Metrics/PoolMetricNames.swift").read()
names = set(re.findall(r'"(workerpool_[a-z_]+)"', source))
histograms = set(re.findall(r'name: (\w+), kind: \.histogram', source))
constants = dict(re.findall(r'static let (\w+) = "(workerpool_[a-z_]+)"', source))
for constant in histograms:
    base = constants.get(constant)
    if base:
        names |= {base + "_bucket", base + "_sum", base + "_count"}
if len(names) < 20:
    problems.append(f"found only {len(names)} metric names in PoolMetricNames.swift")

def check_expression(where, expression):
    used = set(re.findall(r"\bworkerpool_[a-z_]+", expression))
    if not used:
        problems.append(f"{where}: {expression!r} names no workerpool_ metric")
    for name in sorted(used - names):
        problems.append(f"{where}: {name} is not a metric the pool publishes")

def walk(node, where):
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            check_expression(where, node["expr"])
        for key, value in node.items():
            walk(value, f"{where} / {node.get('title', key)}" if key == "targets" else where)
    elif isinstance(node, list):
        for item in node:
            walk(item, where)

for path in sorted(glob.glob("deploy/grafana/*.json")):
    dashboard = json.load(open(path))
    expressions = []
    walk(dashboard, path)
    if not any(p.get("targets") for p in dashboard.get("panels", [])):
        problems.append(f"{path}: no panel has a query")

scaled = yaml.safe_load(open("deploy/kubernetes/keda/scaledobject.yaml"))
if scaled.get("kind") != "ScaledObject" or not str(scaled.get("apiVersion", "")).startswith("keda.sh/"):
    problems.append("deploy/kubernetes/keda/scaledobject.yaml is not a KEDA ScaledObject")
target = (scaled.get("spec") or {}).get("scaleTargetRef") or {}
workers = [d for d in yaml.safe_load_all(open("deploy/kubernetes/worker-deployment.yaml")) if d]
deployment = next((d for d in workers if d.get("kind") == "Deployment"), {})
if target.get("name") != deployment.get("metadata", {}).get("name"):
    problems.append(f"the ScaledObject scales {target.get('name')}, not the worker Deployment")
if scaled.get("metadata", {}).get("namespace") != deployment.get("metadata", {}).get("namespace"):
    problems.append("the ScaledObject is not in the worker Deployment's namespace")
for trigger in (scaled.get("spec") or {}).get("triggers") or []:
    if trigger.get("type") == "prometheus":
        check_expression("ScaledObject trigger", trigger.get("metadata", {}).get("query", ""))
        if "workerpool_tasks_waiting" not in trigger.get("metadata", {}).get("query", ""):
            problems.append("the ScaledObject does not scale on workerpool_tasks_waiting")

# Each scraped pod: the annotation's port is a container port named metrics, where --metrics listens.
for path, kind in (("deploy/kubernetes/producer-job.yaml", "Job"), ("deploy/kubernetes/worker-deployment.yaml", "Deployment")):
    for document in (d for d in yaml.safe_load_all(open(path)) if d and d.get("kind") == kind):
        template = document["spec"]["template"]
        annotations = template.get("metadata", {}).get("annotations") or {}
        if annotations.get("prometheus.io/scrape") != "true":
            problems.append(f"{path}: the pod is not annotated prometheus.io/scrape: \"true\"")
            continue
        port = annotations.get("prometheus.io/port")
        for container in template["spec"]["containers"]:
            ports = {str(p.get("containerPort")): p.get("name") for p in container.get("ports") or []}
            if ports.get(port) != "metrics":
                problems.append(f"{path}: annotated port {port} is not the container port named metrics")
            command = [str(c) for c in container.get("command") or []]
            listen = command[command.index("--metrics") + 1] if "--metrics" in command else ""
            if not listen.endswith(":" + str(port)):
                problems.append(f"{path}: --metrics {listen or '(missing)'} does not listen on the annotated port {port}")

compose = yaml.safe_load(open("deploy/docker/compose.yaml"))
prometheus = yaml.safe_load(open("deploy/prometheus/compose.yml"))
for service in ("producer", "worker"):
    command = [str(c) for c in compose["services"][service].get("command") or []]
    if "--metrics" not in command:
        problems.append(f"deploy/docker/compose.yaml: {service} serves no --metrics")
        continue
    port = command[command.index("--metrics") + 1].rsplit(":", 1)[-1]
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    job = json.dumps(jobs.get(service, {}))
    if service not in job or port not in job:
        problems.append(f"deploy/prometheus/compose.yml does not scrape {service} on port {port}")

for line in problems:
    print(line)
sys.exit(1 if problems else 0)
EOF

if [ "$failures" -gt 0 ]; then
    echo "check-deploy: $failures check(s) failed" >&2
    exit 1
fi
echo "check-deploy: all checks passed"
