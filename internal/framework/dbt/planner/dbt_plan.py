"""dagctl-bot's dbt helper.

Shipped inside the bot and run as `python -c <this source> MODE ...` in the project directory of the job's
checkout, with the interpreter that has dbt installed. Five modes:

plan: `dbt parse` of the head, then dbt's state comparison against either the production manifest
(DAGCTL_DBT_STATE: a directory holding the manifest.json of the environment's last successful deploy) or, without
one, a `dbt parse` of the base commit (DAGCTL_BASE_DIR: the project's directory in a checkout of the base commit).
Each changed node's reasons come from `dbt ls` with state:modified's sub-selectors, the downstream from
state:modified+, and removed nodes (which state never selects) from the two manifests. Nothing is built or run
against the warehouse. It prints one machine-readable line:

    ::dagctl-dbt-plan:: {"schema": 1, "dbt_version": "...", "ok": true, "plan": {...}}

or, on any failure, the same line with "ok": false and an "error" object, and exits non-zero.

apply: runs the approved plan's dbt commands in order (each a list of plain words starting with `dbt`, as
.dagctl/config.yaml's validation allows), each with `--log-format json`, stopping at the first that fails. Each
command's target directory is ARTIFACTS/<n>; the last command's manifest.json and run_results.json are copied to
ARTIFACTS. It ends with one `::dagctl-dbt-apply::` line saying what ran.

With DAGCTL_DBT_PROJECT_DIR set (by the bot, for a job on the deploy image it built), the commands run in that
directory, the project as the image holds it (with its dbt_packages/); the artifacts still go to ARTIFACTS in the
checkout, where the executor collects them.

package: the project handed back for its deploy image: `dbt deps` when the project has packages (packages.yml or
dependencies.yml), then the project directory as a tar at the given path (.git/ at any depth, target/ and logs/
at the root left out; symlinks kept as symlinks, never followed). Over --max-bytes it fails, saying so, and
leaves no tar. It ends with one `::dagctl-dbt-package::` line.
prbuild: a PR environment's plan (pr_environment, Slim CI): plan mode's comparison, then `dbt build --select
state:modified+ --defer --state <production manifest>` (every node without one) into the PR's schema (--schema,
from the bot). The schema is applied through a profiles.yml of the helper's own, the project's target copied
unrendered with its schema replaced; nodes that would write outside the PR's schema are left out. It prints the
plan's line with "pr_build" (the nodes built and their status); a failed node fails it (kind "build").

cleanup: drops the PR's schema, and the schemas derived from it that the project's nodes name, through dbt's
adapter (`run-operation run_query`) with the same derived profile; it ends with one `::dagctl-dbt-cleanup::` line.

dbt's target/ and logs/ never go into the checkout: plans write them to a scratch directory that is removed,
applies to ARTIFACTS. Long results are printed in parts (`MARKER part I/N <piece>`), because executors cut long
lines. Bump SCHEMA when the JSON changes shape.
"""

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import traceback

SCHEMA = 1
PLAN_MARKER = "::dagctl-dbt-plan::"
APPLY_MARKER = "::dagctl-dbt-apply::"
PACKAGE_MARKER = "::dagctl-dbt-package::"
CLEANUP_MARKER = "::dagctl-dbt-cleanup::"
DEFAULT_CHUNK_BYTES = 32 * 1024

# Read by dbt when it starts; no tracking cookie (.user.yml) is written next to profiles.yml in the checkout.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

# The reasons, each the sub-selector of state:modified that finds it. A node state:modified selects with none
# of them is "other" (fqn, access, versions, ...).
REASONS = [
    ("new", "state:new"),
    ("body", "state:modified.body"),
    ("config", "state:modified.configs"),
    ("relation", "state:modified.relation"),
    ("description", "state:modified.persisted_descriptions"),
    ("macro", "state:modified.macros"),
    ("contract", "state:modified.contract"),
]

# The manifest's sections that hold selectable resources, by unique_id.
SECTIONS = ["nodes", "sources", "exposures", "metrics", "semantic_models", "saved_queries", "unit_tests", "functions"]


class UsageError(Exception):
    pass


class StateError(Exception):
    """The comparison state cannot be read (DAGCTL_DBT_STATE or DAGCTL_BASE_DIR wrong or unreadable)."""


class ApplyFailed(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def parse_args(argv):
    parser = _Parser(prog="dagctl-dbt")
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("plan")
    p.add_argument("--env", required=True)
    p.add_argument("--target")
    p.add_argument("--profiles-dir")
    p.add_argument("--result-chunk-bytes", type=int, default=DEFAULT_CHUNK_BYTES)
    for mode in ("prbuild", "cleanup"):
        b = sub.add_parser(mode)
        b.add_argument("--env", required=True)
        b.add_argument("--schema", required=True)
        b.add_argument("--target")
        b.add_argument("--profiles-dir")
        b.add_argument("--result-chunk-bytes", type=int, default=DEFAULT_CHUNK_BYTES)
    a = sub.add_parser("apply")
    a.add_argument("--env", required=True)
    a.add_argument("--scope", required=True)
    a.add_argument("--artifacts", required=True)
    a.add_argument("--command", action="append", default=[])
    a.add_argument("--result-chunk-bytes", type=int, default=DEFAULT_CHUNK_BYTES)
    k = sub.add_parser("package")
    k.add_argument("--out", required=True)
    k.add_argument("--max-bytes", type=int, required=True)
    k.add_argument("--result-chunk-bytes", type=int, default=DEFAULT_CHUNK_BYTES)
    return parser.parse_args(argv)


def emit(marker, result, chunk_bytes):
    sys.stdout.flush()
    sys.stderr.flush()
    # ASCII only (ensure_ascii), so that the text can be cut anywhere.
    text = json.dumps(result, sort_keys=True, separators=(",", ":"), default=str)
    if len(text) <= chunk_bytes:
        lines = [text]
    else:
        pieces = [text[i : i + chunk_bytes] for i in range(0, len(text), chunk_bytes)]
        lines = [f"part {n}/{len(pieces)} {piece}" for n, piece in enumerate(pieces, 1)]
    # The leading newline puts the marker at the start of a line whatever was printed before.
    sys.stdout.write("\n" + "".join(f"{marker} {line}\n" for line in lines))
    sys.stdout.flush()


def error_kind(exc):
    if isinstance(exc, UsageError):
        return "usage"
    if isinstance(exc, StateError):
        return "state"
    if isinstance(exc, ApplyFailed):
        return "apply"
    if isinstance(exc, PackageTooLarge):
        return "too_large"
    if isinstance(exc, BuildFailed):
        return "build"
    if isinstance(exc, ImportError) and "dbt" in str(exc):
        return "setup"
    try:
        from dbt.exceptions import DbtProfileError, DbtProjectError, ParsingError
        from dbt_common.exceptions import CompilationError, DbtConfigError, DbtRuntimeError
    except Exception:
        return "internal"
    try:
        from dbt.artifacts.exceptions.schemas import IncompatibleSchemaError

        if isinstance(exc, IncompatibleSchemaError):
            return "state"  # a production manifest this dbt cannot read
    except Exception:
        pass
    if isinstance(exc, CompilationError):
        return "compile"
    if isinstance(exc, ParsingError):
        return "parse"
    if isinstance(exc, (DbtProjectError, DbtProfileError, DbtConfigError)):
        return "config"
    if isinstance(exc, DbtRuntimeError):
        return "dbt"
    return "internal"


def error_of(exc, project):
    message = (str(exc) or type(exc).__name__).strip()
    # Paths relative to the project: the checkout's location means nothing to a reader.
    if project:
        message = message.replace(project + os.sep, "")
    out = {"kind": error_kind(exc), "type": type(exc).__name__, "message": message}
    node = getattr(exc, "node", None)
    path = getattr(node, "original_file_path", None) or getattr(exc, "file", None)
    if path:
        out["file"] = path
    return out


class Runner:
    """Invokes dbt in this process with its target and logs in a directory of our own."""

    def __init__(self, scratch, target, profiles_dir):
        self.scratch = scratch
        self.target = target
        self.profiles_dir = profiles_dir

    def common(self, name, project_dir, profiles_dir):
        args = [
            "--project-dir", project_dir,
            "--target-path", os.path.join(self.scratch, name, "target"),
            "--log-path", os.path.join(self.scratch, name, "logs"),
            "--no-use-colors",
        ]
        if profiles_dir:
            args += ["--profiles-dir", profiles_dir]
        if self.target:
            args += ["--target", self.target]
        return args

    def parse(self, name, project_dir, profiles_dir):
        from dbt.cli.main import dbtRunner

        print(f"dagctl: dbt parse of the {name} ({project_dir})", flush=True)
        res = dbtRunner().invoke(["parse", "--no-partial-parse"] + self.common(name, project_dir, profiles_dir))
        if res.exception is not None:
            raise res.exception
        if not res.success or res.result is None:
            raise RuntimeError(f"dbt parse of the {name} failed (see the log above)")
        return res.result, os.path.join(self.scratch, name, "target", "manifest.json")

    def ls(self, manifest, project_dir, selector, state_dir, indirect):
        from dbt.cli.main import dbtRunner

        args = ["ls", "--select", selector, "--state", state_dir, "--indirect-selection", indirect,
                "--output", "json", "--output-keys", "unique_id", "--log-level", "none"]
        res = dbtRunner(manifest=manifest).invoke(args + self.common("head", project_dir, self.profiles_dir))
        if res.exception is not None:
            raise res.exception
        if not res.success:
            raise RuntimeError(f"dbt ls --select {selector} failed")
        return {json.loads(line)["unique_id"] for line in (res.result or [])}


def resources(manifest_json):
    out = {}
    for section in SECTIONS:
        for uid, node in (manifest_json.get(section) or {}).items():
            out[uid] = node
    return out


def describe(uid, node):
    return {
        "unique_id": uid,
        "resource_type": node.get("resource_type") or uid.split(".", 1)[0],
        "name": node.get("name") or uid.rsplit(".", 1)[-1],
        "path": node.get("original_file_path") or "",
    }


def head_profiles_dir(args, project):
    if args.profiles_dir:
        return os.path.abspath(os.path.join(project, args.profiles_dir))
    if os.path.isfile(os.path.join(project, "profiles.yml")):
        return project
    return None  # dbt's own lookup (~/.dbt)


def base_profiles_dir(args, base, head_dir):
    """The base's own profiles when it has them (its profile name may differ), else the head's."""
    candidate = os.path.join(base, args.profiles_dir) if args.profiles_dir else base
    if os.path.isfile(os.path.join(candidate, "profiles.yml")):
        return os.path.abspath(candidate)
    return head_dir


def state_source(project):
    """What the job was given to compare with: ("production", dir), ("base", dir) or ("none", None). A
    variable that is set but wrong is the executor's mistake and fails the plan before anything is parsed."""
    # The bot sets it to $DAGCTL_INPUT_DIR, which the executor alone sets: expanded here.
    state = os.path.expandvars(os.environ.get("DAGCTL_DBT_STATE", ""))
    if state:
        state = os.path.abspath(os.path.join(project, state))
        if not os.path.isfile(os.path.join(state, "manifest.json")):
            raise StateError(f"DAGCTL_DBT_STATE is set but {state} holds no manifest.json")
        return "production", state
    base = os.environ.get("DAGCTL_BASE_DIR", "")
    if not base:
        return "none", None
    base = os.path.abspath(os.path.join(project, base))
    if not os.path.isdir(base):
        raise StateError(f"DAGCTL_BASE_DIR is set but {base} is not a directory")
    return "base", base


def comparison(args, runner, source, profiles_dir):
    """Where the comparison manifest comes from: (how, state dir or None, a note on a base with nothing to
    compare)."""
    how, where = source
    if how != "base":
        return how, where, ""
    base = where
    if not os.path.isfile(os.path.join(base, "dbt_project.yml")):
        return "none", None, "The base commit has no dbt_project.yml here: the project is new."
    try:
        _, manifest_path = runner.parse("base", base, base_profiles_dir(args, base, profiles_dir))
    except Exception as exc:  # noqa: BLE001 - a broken base must not stop the PR that fixes it
        traceback.print_exc(file=sys.stderr)
        return "none", None, "The base commit does not parse: " + str(exc).replace(base + os.sep, "")
    return "base", os.path.dirname(manifest_path), ""


def plan_mode(args, result, scratch):
    project = os.getcwd()
    profiles_dir = head_profiles_dir(args, project)
    compare(args, result, Runner(scratch, args.target, profiles_dir), project, profiles_dir)


def compare(args, result, runner, project, profiles_dir):
    """The plan: result["plan"] from dbt's state comparison of the head. Returns the head's parsed manifest,
    its resources by unique_id, the comparison (how, state dir or None) and the selection state:modified+
    makes (None: nothing to compare with, so everything)."""
    source = state_source(project)
    manifest, head_path = runner.parse("head", project, profiles_dir)
    with open(head_path) as f:
        head = resources(json.load(f))
    compared, state_dir, note = comparison(args, runner, source, profiles_dir)

    plan = {"environment": args.env, "compared_with": compared, "nodes": [], "removed": [], "downstream": []}
    if note:
        plan["note"] = note
    if state_dir is None:
        # Nothing to compare with: every node is new.
        plan["nodes"] = [dict(describe(uid, head[uid]), reasons=["new"]) for uid in sorted(head)]
        result["plan"] = plan
        return manifest, head, compared, state_dir, None

    print(f"dagctl: dbt's state comparison with {state_dir}", flush=True)
    modified = runner.ls(manifest, project, "state:modified", state_dir, "empty")
    reasons = {uid: [] for uid in modified}
    for reason, selector in REASONS:
        for uid in runner.ls(manifest, project, selector, state_dir, "empty"):
            reasons.setdefault(uid, []).append(reason)
    downstream = runner.ls(manifest, project, "state:modified+", state_dir, "eager")

    with open(os.path.join(state_dir, "manifest.json")) as f:
        old = resources(json.load(f))
    for uid in sorted(reasons):
        node = head.get(uid)
        if node is None:
            continue  # selected by dbt but not a resource we list (should not happen)
        why = reasons[uid]
        if "new" in why:
            why = ["new"]  # every sub-selector selects a node the state lacks
        plan["nodes"].append(dict(describe(uid, node), reasons=why or ["other"]))
    # Removed (deleted, renamed or disabled): in the state manifest, not in the head's.
    for uid in sorted(set(old) - set(head)):
        plan["removed"].append(describe(uid, old[uid]))
    plan["downstream"] = sorted(downstream - set(reasons))
    result["plan"] = plan
    return manifest, head, compared, state_dir, downstream | set(reasons)


def split_command(command):
    words = command.split()
    if len(words) < 2 or words[0] != "dbt":
        raise UsageError(f"{command!r} is not a dbt command")
    return words[1:]


# The word a selective deploy's commands name the production state by (`--state $DAGCTL_INPUT_DIR`): the
# directory the executor puts the job's inputs in, which only the executor sets. Replaced as a whole word, never
# expanded as a shell would: the command runs as the reviewer approved it.
INPUT_DIR_WORD = "$DAGCTL_INPUT_DIR"


def input_dir_words(words):
    if INPUT_DIR_WORD not in words:
        return words
    inputs = os.environ.get("DAGCTL_INPUT_DIR", "")
    if not inputs or not os.path.isfile(os.path.join(inputs, "manifest.json")):
        raise StateError("the command compares with the production state, but the job was given no manifest.json")
    return [inputs if w == INPUT_DIR_WORD else w for w in words]


# Set by the bot for an apply on the deploy image it built: the project's directory in that image.
IMAGE_PROJECT_ENV = "DAGCTL_DBT_PROJECT_DIR"


def apply_mode(args, result):
    from dbt.cli.main import dbtRunner

    commands = [input_dir_words(split_command(c)) for c in args.command]
    image_project = os.environ.get(IMAGE_PROJECT_ENV, "")
    if args.scope in ("selective", "all") and not commands:
        raise UsageError(f"an apply of scope {args.scope} needs the plan's commands")
    if args.scope not in ("selective", "all", "build_only", "none"):
        raise UsageError(f"{args.scope!r} is not a scope this helper applies")
    artifacts = os.path.abspath(args.artifacts)
    os.makedirs(artifacts, exist_ok=True)
    if image_project:
        if not os.path.isfile(os.path.join(image_project, "dbt_project.yml")):
            raise UsageError(f"{IMAGE_PROJECT_ENV}={image_project} holds no dbt_project.yml: is the job on the deploy image?")
        print(f"dagctl: running in {image_project}, the project in the deploy image", flush=True)
        os.chdir(image_project)
    ran = []
    result["commands"] = ran
    for n, words in enumerate(commands, 1):
        target = os.path.join(artifacts, str(n))
        line = " ".join(["dbt"] + split_command(args.command[n - 1]))  # as approved, not as replaced
        print(f"dagctl: command {n} of {len(commands)}: {line}", flush=True)
        # Ours last: click takes the last value of an option given twice.
        res = dbtRunner().invoke(
            words + ["--log-format", "json", "--target-path", target, "--log-path", os.path.join(artifacts, "logs")]
        )
        ran.append({"command": line, "success": bool(res.success)})
        for name in ("manifest.json", "run_results.json"):
            if os.path.isfile(os.path.join(target, name)):
                shutil.copyfile(os.path.join(target, name), os.path.join(artifacts, name))
        if res.exception is not None:
            raise res.exception
        if not res.success:
            raise ApplyFailed(f"`{line}` failed (command {n} of {len(commands)}); the commands after it did not run")


# What a package leaves out, as the image's layer does: generated at the root, git's anywhere.
PACKAGE_EXCLUDED_AT_ROOT = {"target", "logs"}
PACKAGES_DIR = "dbt_packages"


class PackageTooLarge(Exception):
    pass


def package_mode(args, result):
    project = os.getcwd()
    deps = any(os.path.isfile(os.path.join(project, f)) for f in ("packages.yml", "dependencies.yml"))
    result["deps"] = deps
    if deps:
        from dbt.cli.main import dbtRunner

        logs = tempfile.mkdtemp(prefix="dagctl-dbt-deps-")
        try:
            print("dagctl: dbt deps", flush=True)
            res = dbtRunner().invoke(["deps", "--log-path", logs])
        finally:
            shutil.rmtree(logs, ignore_errors=True)
        if res.exception is not None:
            raise res.exception
        if not res.success:
            raise ApplyFailed("`dbt deps` failed")
    import tarfile

    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)

    def keep(info):
        parts = info.name.split("/")
        if ".git" in parts or (len(parts) > 1 and parts[0] == "." and parts[1] in PACKAGE_EXCLUDED_AT_ROOT):
            return None
        if info.isdev() or info.isfifo():
            raise UsageError(f"{info.name} is neither a file, a directory nor a symlink")
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    def keep_project(info):
        if info.name == "./" + PACKAGES_DIR or info.name.startswith("./" + PACKAGES_DIR + "/"):
            return None  # added below, each package whole
        return keep(info)

    try:
        with tarfile.open(out, "w", format=tarfile.PAX_FORMAT, dereference=False) as tar:
            tar.add(".", filter=keep_project)
            if os.path.isdir(PACKAGES_DIR):
                tar.add(PACKAGES_DIR, arcname="./" + PACKAGES_DIR, recursive=False, filter=keep)
                for name in sorted(os.listdir(PACKAGES_DIR)):
                    # A local package is installed as a symlink to its source (outside the project, often
                    # absolute): the image holds its files instead. Links inside a package stay links.
                    path = os.path.join(PACKAGES_DIR, name)
                    tar.add(os.path.realpath(path), arcname=f"./{PACKAGES_DIR}/{name}", filter=keep)
        size = os.path.getsize(out)
        result["bytes"] = size
        if size > args.max_bytes:
            raise PackageTooLarge(
                f"the project with its dbt_packages/ is {size} bytes as a tar, over the {args.max_bytes} bytes a job hands back"
            )
    except BaseException:
        if os.path.exists(out):
            os.remove(out)
        raise


# The PR's schema as .dagctl/config.yaml's validation makes it (letters, digits and "_", not starting with a
# digit): a name every warehouse takes unquoted, so it goes into SQL as it is. It comes from the bot's argv,
# never from the project's files.
SCHEMA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

# What a PR build writes to the warehouse: these resources, unless ephemeral (tests only when they store failures).
WRITES = ("model", "seed", "snapshot")


class BuildFailed(Exception):
    """The PR build ran and some node failed (an error, a failed test)."""


def checked_schema(args):
    if not SCHEMA_RE.match(args.schema):
        raise UsageError(f"{args.schema!r} is not a schema name (letters, digits and _, not starting with a digit)")
    return args.schema


def profiles_source(args, project):
    """The directory of profiles.yml as dbt looks it up: --profiles-dir, DBT_PROFILES_DIR, the project, ~/.dbt."""
    if args.profiles_dir:
        return os.path.abspath(os.path.join(project, args.profiles_dir))
    if os.environ.get("DBT_PROFILES_DIR"):
        return os.path.abspath(os.environ["DBT_PROFILES_DIR"])
    if os.path.isfile(os.path.join(project, "profiles.yml")):
        return project
    return os.path.expanduser(os.path.join("~", ".dbt"))


def pr_profile(args, project, scratch):
    """A profiles.yml of one target, in a scratch directory: the PR's target as the project's profile has it,
    with its schema replaced by the PR's schema (args.schema, from the bot). Its values are copied unrendered
    (env_var() stays for dbt to render), so no secret is written. Returns (profiles dir, target)."""
    import yaml
    from dbt.exceptions import DbtProfileError, DbtProjectError

    with open(os.path.join(project, "dbt_project.yml")) as f:
        name = (yaml.safe_load(f) or {}).get("profile")
    if not isinstance(name, str) or not name or "{{" in name:
        raise DbtProjectError("dbt_project.yml names no profile for the PR build (a plain `profile:` name)")
    source = os.path.join(profiles_source(args, project), "profiles.yml")
    try:
        with open(source) as f:
            profiles = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise DbtProfileError(f"no profiles.yml for the PR build in {os.path.dirname(source)}") from None
    profile = profiles.get(name)
    if not isinstance(profile, dict):
        raise DbtProfileError(f"profiles.yml has no profile {name!r}")
    target = args.target or profile.get("target")
    if not isinstance(target, str) or not target or "{{" in target:
        raise DbtProfileError(f"profile {name!r} has no plain default target: set pr_environment.target")
    output = (profile.get("outputs") or {}).get(target)
    if not isinstance(output, dict):
        raise DbtProfileError(f"profile {name!r} has no target {target!r}")
    output = dict(output)
    output.pop("dataset", None)  # BigQuery's other name for the schema
    output["schema"] = args.schema
    directory = os.path.join(scratch, "pr-profile")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "profiles.yml"), "w") as f:
        json.dump({name: {"target": target, "outputs": {target: output}}}, f)  # JSON is YAML
    return directory, target


def in_schema(schema, pr):
    """A schema of the PR's: the PR's schema, or one dbt derives from it (custom schemas: <pr>_<name>)."""
    s, p = (schema or "").lower(), pr.lower()
    return s == p or s.startswith(p + "_")


def writes(node):
    config = node.get("config") or {}
    kind = node.get("resource_type")
    if kind == "test":
        return bool(config.get("store_failures"))
    return kind in WRITES and config.get("materialized") != "ephemeral"


def outside_nodes(nodes, pr):
    """The nodes that would write outside the PR's schema or its database: a snapshot's target_schema, a
    config's database, a generate_schema_name that routes elsewhere. The PR build leaves them out. A guard
    against mistakes: the project's code runs in the build and can reach anything its credentials can."""
    writing = {uid: n for uid, n in nodes.items() if writes(n)}
    databases = [n.get("database") for n in writing.values() if not (n.get("config") or {}).get("database")]
    database = max(set(databases), key=databases.count) if databases else None
    out = {}
    for uid, n in writing.items():
        if not in_schema(n.get("schema"), pr):
            out[uid] = f"writes to schema {n.get('schema')}"
        elif database is not None and (n.get("database") or "").lower() != (database or "").lower():
            out[uid] = f"writes to database {n.get('database')}"
    return out


def fqn_selector(node):
    return "fqn:" + ".".join(node.get("fqn") or [node.get("name", "")])


def prbuild_mode(args, result, scratch):
    """The PR's own build (Slim CI): the plan's comparison, then `dbt build --select state:modified+ --defer
    --state <production manifest>` into the PR's schema; without a production manifest, every node."""
    from dbt.cli.main import dbtRunner

    project = os.getcwd()
    schema = checked_schema(args)
    profiles_dir, target = pr_profile(args, project, scratch)
    runner = Runner(scratch, target, profiles_dir)
    _, head, compared, state_dir, selected = compare(args, result, runner, project, profiles_dir)
    deferred = compared == "production"
    build = {"schema": schema, "target": target, "deferred": deferred, "nodes": [], "outside": []}
    result["pr_build"] = build
    candidates = head
    if deferred:
        candidates = {uid: head[uid] for uid in selected if uid in head}
    outside = outside_nodes(candidates, schema)
    for uid in sorted(outside):
        build["outside"].append(dict(describe(uid, head[uid]), message=outside[uid]))
    if deferred and not candidates:
        print("dagctl: PR build: nothing is modified against the production state; nothing to build", flush=True)
        return
    words = ["build"]
    if deferred:
        words += ["--select", "state:modified+", "--defer", "--state", state_dir]
    else:
        print("dagctl: PR build: no production state to defer to, so it builds every node", flush=True)
    if outside:
        words += ["--exclude"] + [fqn_selector(head[uid]) for uid in sorted(outside)]
    print(f"dagctl: PR build into schema {schema} (target {target}): dbt {' '.join(words)}", flush=True)
    res = dbtRunner().invoke(words + runner.common("pr", project, profiles_dir))
    for r in getattr(res.result, "results", None) or []:
        node = r.node
        entry = {"unique_id": node.unique_id, "resource_type": str(node.resource_type), "name": node.name,
                 "path": node.original_file_path or "", "status": str(r.status)}
        if r.status not in ("success", "pass") and r.message:
            entry["message"] = str(r.message).replace(project + os.sep, "")
        build["nodes"].append(entry)
    build["nodes"].sort(key=lambda n: n["unique_id"])
    if res.exception is not None:
        raise res.exception
    if not res.success:
        failed = [n for n in build["nodes"] if n["status"] in ("error", "fail", "runtime error")]
        lines = [f"- {n['unique_id']} ({n['path']}): {n.get('message') or n['status']}" for n in failed]
        err = BuildFailed(f"dbt build into {schema} failed ({len(failed)} of {len(build['nodes'])} nodes):\n" + "\n".join(lines))
        if failed:
            err.file = failed[0]["path"]
        raise err


def cleanup_mode(args, result, scratch):
    """Drops the PR's schema and the schemas dbt derives from it (<schema>_<custom>) that the project's nodes
    name, through dbt's adapter (`run_query`), with the same derived profile as the build."""
    from dbt.cli.main import dbtRunner

    project = os.getcwd()
    schema = checked_schema(args)
    profiles_dir, target = pr_profile(args, project, scratch)
    runner = Runner(scratch, target, profiles_dir)
    schemas, manifest = {schema}, None
    try:
        manifest, head_path = runner.parse("head", project, profiles_dir)
        with open(head_path) as f:
            for node in resources(json.load(f)).values():
                derived = node.get("schema")
                if in_schema(derived, schema) and SCHEMA_RE.match(derived or ""):
                    schemas.add(derived)
    except Exception as exc:  # noqa: BLE001 - a head that does not parse still has its schema dropped
        print(f"dagctl: the project does not parse ({exc}); dropping {schema} alone", flush=True)
    result["dropped"] = []
    for name in sorted(schemas, key=lambda s: (-len(s), s)):
        sql = f"drop schema if exists {name} cascade"
        print(f"dagctl: {sql} (target {target})", flush=True)
        words = ["run-operation", "run_query", "--args", json.dumps({"sql": sql})]
        res = dbtRunner(manifest=manifest).invoke(words + runner.common("cleanup", project, profiles_dir))
        if res.exception is not None:
            raise res.exception
        if not res.success:
            raise RuntimeError(f"`{sql}` failed (see the log above)")
        result["dropped"].append(name)


def main(argv):
    result = {"schema": SCHEMA, "ok": False, "dbt_version": None}
    marker = PLAN_MARKER
    code = 0
    chunk_bytes = DEFAULT_CHUNK_BYTES
    project = os.getcwd()
    scratch = None
    try:
        if argv[:1] == ["apply"]:
            marker = APPLY_MARKER
        elif argv[:1] == ["package"]:
            marker = PACKAGE_MARKER
        elif argv[:1] == ["cleanup"]:
            marker = CLEANUP_MARKER
        args = parse_args(argv)
        chunk_bytes = max(args.result_chunk_bytes, 64)
        from dbt.version import __version__ as dbt_version

        result["dbt_version"] = dbt_version
        if args.mode in ("plan", "prbuild", "cleanup"):
            scratch = tempfile.mkdtemp(prefix="dagctl-dbt-plan-")
            {"plan": plan_mode, "prbuild": prbuild_mode, "cleanup": cleanup_mode}[args.mode](args, result, scratch)
        elif args.mode == "package":
            package_mode(args, result)
        else:
            apply_mode(args, result)
        result["ok"] = True
    except BaseException as exc:  # noqa: B036 - every failure must reach the bot as a result line
        code = 1
        result["ok"] = False
        result["error"] = error_of(exc, project)
        if result["error"]["kind"] == "internal":
            traceback.print_exc(file=sys.stderr)  # dbt's own errors were logged by dbt, in its words
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    emit(marker, result, chunk_bytes)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
