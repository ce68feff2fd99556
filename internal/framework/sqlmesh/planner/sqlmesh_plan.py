"""dagctl-bot's sqlmesh plan helper.

Shipped inside the bot and run as `python -c <this source> plan --env ENV [flags]` in the project directory,
with the interpreter that has sqlmesh installed. It builds the plan the way `sqlmesh plan ENV --explain
--no-prompts` does (same Context, same plan_builder, same console output, nothing applied), except that unit
tests run as they do for a plan that is applied. It then prints one machine-readable line:

    ::dagctl-plan:: {"schema": 1, "sqlmesh_version": "...", "ok": true, "plan": {...}}

or, on any failure, the same line with "ok": false and an "error" object, and exits non-zero. A result longer
than --result-chunk-bytes is printed as consecutive lines `::dagctl-plan:: part I/N <piece of the JSON>`,
because executors cut long lines. The JSON is read from sqlmesh's own Plan object, never from its console
text. Bump SCHEMA when the JSON changes shape.
"""

import argparse
import io
import json
import os
import sys
import traceback

SCHEMA = 1
MARKER = "::dagctl-plan::"
DEFAULT_CHUNK_BYTES = 32 * 1024

# Read by sqlmesh when it is imported (the analytics collector starts then), so it is set before the import.
os.environ["SQLMESH__DISABLE_ANONYMIZED_ANALYTICS"] = "1"


class UsageError(Exception):
    pass


class StateUnavailable(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def parse_args(argv):
    parser = _Parser(prog="dagctl-sqlmesh-plan")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan")
    p.add_argument("--env", required=True)
    p.add_argument("--path", default=os.getcwd())
    p.add_argument("--gateway")
    p.add_argument("--forward-only", action="store_true")
    p.add_argument("--restate-model", action="append", default=[])
    p.add_argument("--start")
    p.add_argument("--end")
    p.add_argument("--execution-time")
    p.add_argument("--explain-width", type=int, default=200)
    p.add_argument("--result-chunk-bytes", type=int, default=DEFAULT_CHUNK_BYTES)
    return parser.parse_args(argv)


def emit(result, chunk_bytes):
    sys.stdout.flush()
    sys.stderr.flush()
    # ASCII only (ensure_ascii), so that the text can be cut anywhere.
    text = json.dumps(result, sort_keys=True, separators=(",", ":"), default=str)
    if len(text) <= chunk_bytes:
        lines = [text]
    else:
        # Executors cut very long lines, so a long result is sent as consecutive parts.
        pieces = [text[i : i + chunk_bytes] for i in range(0, len(text), chunk_bytes)]
        lines = [f"part {n}/{len(pieces)} {piece}" for n, piece in enumerate(pieces, 1)]
    # The leading newline puts the marker at the start of a line whatever was printed before.
    sys.stdout.write("\n" + "".join(f"{MARKER} {line}\n" for line in lines))
    sys.stdout.flush()


def error_kind(exc):
    if isinstance(exc, UsageError):
        return "usage"
    if isinstance(exc, StateUnavailable):
        return "state"
    if isinstance(exc, ImportError) and "sqlmesh" in str(exc):
        return "setup"
    try:
        from sqlglot.errors import SqlglotError
        from sqlmesh.utils import errors
    except Exception:
        return "internal"
    if isinstance(exc, errors.UncategorizedPlanError):
        return "uncategorized"
    if isinstance(exc, errors.PlanError):
        return "plan"
    if isinstance(exc, errors.LinterError):
        return "lint"
    if isinstance(exc, errors.ConfigError):
        return "config"
    if isinstance(exc, SqlglotError):
        return "sql"
    if isinstance(exc, errors.SQLMeshError):
        return "sqlmesh"
    return "internal"


def load_context(args):
    # As the `sqlmesh` CLI group does before running `plan`.
    from sqlmesh import configure_logging, remove_excess_logs
    from sqlmesh.core.config import load_configs
    from sqlmesh.core.console import configure_console
    from sqlmesh.core.context import Context
    from sqlmesh.utils.errors import ConfigError

    configure_logging(False, False)
    configure_console(ignore_warnings=False)
    configs = load_configs(None, Context.CONFIG_TYPE, [args.path])
    remove_excess_logs(None, list(configs.values())[0].log_limit)
    context = Context(paths=[args.path], config=configs, gateway=args.gateway)
    if not context.models:
        raise ConfigError(f"`{args.path}` doesn't seem to have any models.")
    return context


def check_connections(context):
    """Fails unless the state and default connections answer a query.

    sqlmesh looks for its state tables with EngineAdapter.table_exists, which takes any error for "no such
    table": a state database it cannot open (a DuckDB file another process has locked, a warehouse that is
    down) then looks like a new project, and the plan shows every model as added. Asking first turns that into
    the real error.
    """
    state_config = context.config.get_state_connection(context.gateway) or context.connection_config
    for name, adapter in (
        ("state", state_config.create_engine_adapter()),
        ("default", context.engine_adapter),
    ):
        try:
            adapter.fetchone("SELECT 1")
        except Exception as exc:
            raise StateUnavailable(f"cannot query the {name} connection: {exc}") from exc


def run_tests(context):
    # `sqlmesh plan --explain` skips unit tests; an applied plan runs them and fails on a failing test, so
    # the plan job does too (same message as sqlmesh's).
    from sqlmesh.utils.errors import PlanError

    result = context.test()
    if not result.wasSuccessful():
        raise PlanError("Cannot generate plan due to failing test(s). Fix test(s) and run again.")


def kind_of(snapshot):
    kind = None
    if getattr(snapshot, "is_model", False) and hasattr(snapshot, "model"):
        kind = snapshot.model.kind.name
    elif getattr(snapshot, "kind_name", None) is not None:
        kind = snapshot.kind_name
    elif getattr(snapshot, "is_audit", False):
        return "AUDIT"
    if kind is None:
        return None
    return getattr(kind, "value", str(kind))


def category_of(snapshot):
    category = snapshot.change_category
    return None if category is None else category.name


def describe(plan, context, dialect):
    from sqlmesh.core.environment import EnvironmentNamingInfo

    diff = plan.context_diff
    # Names as the model is called (the prod view name), not the environment's view name, so that the same model
    # has the same name in every environment's summary.
    naming = EnvironmentNamingInfo()

    def name(snapshot):
        return snapshot.display_name(naming, context.default_catalog, dialect=dialect)

    def change(snapshot, with_diff=False):
        out = {
            "model": name(snapshot),
            "kind": kind_of(snapshot),
            "change_category": category_of(snapshot),
            "forward_only": bool(snapshot.is_forward_only),
        }
        if with_diff:
            out["diff"] = diff.text_diff(snapshot.name)
        return out

    added = [change(diff.snapshots[s_id]) for s_id in sorted(diff.added)]
    removed = [
        {"model": name(info), "kind": kind_of(info)} for info in sorted(diff.removed_snapshots.values())
    ]
    directly, indirectly, metadata = [], [], []
    for model_fqn, (new, _old) in sorted(diff.modified_snapshots.items()):
        snapshot = diff.snapshots[new.snapshot_id]
        if diff.directly_modified(model_fqn):
            entry = change(snapshot, with_diff=True)
            entry["children"] = sorted(
                name(diff.snapshots[c]) for c in plan.indirectly_modified.get(snapshot.snapshot_id, ())
            )
            directly.append(entry)
        elif diff.indirectly_modified(model_fqn):
            indirectly.append(change(snapshot))
        elif diff.metadata_updated(model_fqn):
            metadata.append(change(snapshot, with_diff=True))

    is_restatement_plan = bool(plan.selected_models_to_restate)
    restatements = {s_id for s_id in plan.restatements} if is_restatement_plan else set()
    backfills = []
    for missing in plan.missing_intervals:
        snapshot = diff.snapshots[missing.snapshot_id]
        if not snapshot.is_model:
            continue
        backfills.append(
            {
                "model": name(snapshot),
                "kind": kind_of(snapshot),
                "incremental": bool(snapshot.is_incremental),
                "view": bool(snapshot.is_view),
                "preview": not plan.deployability_index.is_deployable(snapshot),
                "restatement": snapshot.snapshot_id in restatements,
                "intervals": [[int(s), int(e)] for s, e in missing.merged_intervals],
            }
        )

    return {
        "environment": plan.environment_naming_info.name,
        "is_dev": plan.is_dev,
        "is_new_environment": bool(diff.is_new_environment),
        "create_from": diff.create_from,
        "forward_only": plan.forward_only,
        "has_changes": plan.has_changes,
        "requires_backfill": plan.requires_backfill,
        "added": added,
        "removed": removed,
        "directly_modified": directly,
        "indirectly_modified": indirectly,
        "metadata_updated": metadata,
        "restated_models": sorted(
            name(diff.snapshots_by_name[m]) if m in diff.snapshots_by_name else m
            for m in (plan.selected_models_to_restate or ())
        ),
        "backfills": backfills,
        "uncategorized": [name(s) for s in plan.uncategorized],
    }


def _sorted_stage(stage):
    """The stage with its snapshot collections in name order.

    sqlmesh keeps some of them in sets of objects whose hash depends on memory addresses, so its --explain tree
    lists models in a different order on every run; sorted, the same plan explains the same way every time.
    """
    import dataclasses

    def key(item):
        return (str(getattr(item, "name", item)), str(getattr(item, "snapshot_id", "")))

    if not dataclasses.is_dataclass(stage):
        return stage
    changes = {}
    for field in dataclasses.fields(stage):
        value = getattr(stage, field.name, None)
        if isinstance(value, (set, frozenset, list)) and value and all(hasattr(v, "name") for v in value):
            changes[field.name] = sorted(value, key=key)
        elif isinstance(value, dict) and value and all(isinstance(k, str) or hasattr(k, "name") for k in value):
            changes[field.name] = dict(sorted(value.items(), key=lambda item: key(item[0])))
    try:
        return dataclasses.replace(stage, **changes)
    except Exception:
        return stage


def explain_text(plan, context, dialect, width):
    """sqlmesh's own --explain tree, rendered without colour into a string.

    This is PlanExplainer.evaluate with the stages sorted (see _sorted_stage) and a console of our own.
    """
    from rich.console import Console as RichConsole
    from sqlmesh.core.plan import stages as plan_stages
    from sqlmesh.core.plan.explainer import ExplainableRestatementStage, RichExplainerConsole

    if not plan.has_changes and not plan.requires_backfill:
        return ""  # sqlmesh explains nothing either (Context.apply returns early)
    evaluatable = plan.to_evaluatable()
    stages = plan_stages.build_plan_stages(evaluatable, context.state_reader, context.default_catalog)
    stages = [
        ExplainableRestatementStage.from_restatement_stage(stage, context.state_reader, evaluatable)
        if isinstance(stage, plan_stages.RestatementStage)
        else stage
        for stage in stages
    ]
    buffer = io.StringIO()
    rich_console = RichConsole(
        file=buffer, width=width, no_color=True, color_system=None, force_terminal=False, highlight=False
    )
    RichExplainerConsole(
        environment_naming_info=evaluatable.environment,
        dialect=dialect,
        default_catalog=context.default_catalog,
        console=rich_console,
    ).explain([_sorted_stage(stage) for stage in stages])
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()).strip("\n")


def plan_command(args, result):
    from sqlmesh.core.console import get_console
    from sqlmesh.utils.errors import NoChangesPlanError

    context = load_context(args)
    try:
        console = get_console()
        dialect = getattr(console, "dialect", None)
        check_connections(context)
        run_tests(context)
        builder = context.plan_builder(
            args.env,
            start=args.start,
            end=args.end,
            execution_time=args.execution_time,
            restate_models=args.restate_model or None,
            forward_only=True if args.forward_only else None,
            explain=True,
        )
        try:
            plan = builder.build()
        except NoChangesPlanError as exc:
            # A new development environment identical to its source: sqlmesh refuses to create it. For a pull
            # request that is simply "no changes", not a failure.
            console.log_status_update(str(exc))
            result["plan"] = {"environment": args.env, "is_dev": True, "no_changes_reason": str(exc)}
            result["ok"] = True
            return
        if not plan.explain:
            raise RuntimeError("refusing to continue: the plan is not an explain-only plan")
        result["plan"] = describe(plan, context, dialect)
        # The human-readable output of `sqlmesh plan --explain --no-prompts`: the summary, then the explanation.
        # "auto_apply" here applies an explain-only plan, which only explains it.
        console.plan(
            builder,
            True,
            context.default_catalog,
            no_diff=context.config.plan.no_diff,
            no_prompts=True,
        )
        result["plan"]["explain"] = explain_text(plan, context, dialect, args.explain_width)
        result["ok"] = True
    finally:
        context.close()


def main(argv):
    result = {"schema": SCHEMA, "ok": False, "sqlmesh_version": None}
    code = 0
    chunk_bytes = DEFAULT_CHUNK_BYTES
    project = os.getcwd()
    try:
        args = parse_args(argv)
        chunk_bytes = max(args.result_chunk_bytes, 64)
        project = os.path.abspath(args.path)
        import sqlmesh

        result["sqlmesh_version"] = getattr(sqlmesh, "__version__", None)
        plan_command(args, result)
    except BaseException as exc:  # noqa: B036 - every failure must reach the bot as a result line
        code = 1
        result["ok"] = False
        result["error"] = {
            "kind": error_kind(exc),
            "type": type(exc).__name__,
            # Paths relative to the project: the checkout's location means nothing to a reader.
            "message": (str(exc) or type(exc).__name__).replace(project + os.sep, ""),
        }
        traceback.print_exc(file=sys.stderr)
    emit(result, chunk_bytes)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
