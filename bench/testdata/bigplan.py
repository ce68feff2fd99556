"""Scale a real captured plan result up to many models and print it as dagctl-bot's plan helper prints it.

Usage: python bigplan.py HELPER_SOURCE CAPTURED_OUT MODELS

HELPER_SOURCE is the bot's embedded helper (internal/framework/sqlmesh/planner/sqlmesh_plan.py); its own emit() prints the result,
so the chunking into `::dagctl-plan:: part I/N` lines is the real one. CAPTURED_OUT is a real job output
(internal/framework/sqlmesh/planner/testdata/*.out). Every model of the captured plan is replicated, renamed NAME_00000,
NAME_00001, ..., until the plan holds MODELS models; the explain tree is replicated the same way. The human part
of the output is the captured one, with the replicated explain tree in place of the captured tree.
"""

import json
import re
import sys

LIST_KEYS = ("added", "removed", "directly_modified", "indirectly_modified", "metadata_updated", "backfills")


def load_helper(path):
    ns = {"__name__": "dagctl_plan_helper"}  # not __main__: the helper's main() does not run
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), ns)
    return ns


def captured_result(text, marker):
    for line in reversed(text.splitlines()):
        if line.startswith(marker + " "):
            return json.loads(line[len(marker) + 1 :]), text[: text.index(line)]
    raise SystemExit("no result line in the captured output")


def renamer(short_names, k):
    pattern = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, short_names)) + r")(?![A-Za-z0-9])")
    return lambda s: pattern.sub(lambda m: "%s_%05d" % (m.group(1), k), s)


def rename_deep(value, rename):
    if isinstance(value, str):
        return rename(value)
    if isinstance(value, list):
        return [rename_deep(v, rename) for v in value]
    if isinstance(value, dict):
        return {key: rename_deep(v, rename) for key, v in value.items()}
    return value


def parse_tree(text):
    lines = text.split("\n")
    root = {"label": lines[0], "children": []}
    stack = [(-1, root)]
    for line in lines[1:]:
        m = re.match(r"^((?:\u2502   |    )*)(?:\u251c\u2500\u2500 |\u2514\u2500\u2500 )(.*)$", line)
        if not m:
            raise SystemExit("unexpected explain line: %r" % line)
        depth = len(m.group(1)) // 4
        node = {"label": m.group(2), "children": []}
        while stack[-1][0] >= depth:
            stack.pop()
        stack[-1][1]["children"].append(node)
        stack.append((depth, node))
    return root


def render_tree(root):
    out = [root["label"]]

    def walk(children, prefix):
        for i, c in enumerate(children):
            last = i == len(children) - 1
            out.append(prefix + ("\u2514\u2500\u2500 " if last else "\u251c\u2500\u2500 ") + c["label"])
            walk(c["children"], prefix + ("    " if last else "\u2502   "))

    walk(root["children"], "")
    return "\n".join(out)


def replicate_tree(node, mentions, copies, short_names):
    children = []
    for c in node["children"]:
        if mentions(c["label"]):
            children.extend(rename_deep(c, renamer(short_names, k)) for k in range(copies))
        else:
            children.append(replicate_tree(c, mentions, copies, short_names))
    return {"label": node["label"], "children": children}


def main(argv):
    helper_path, captured_path, models = argv[0], argv[1], int(argv[2])
    helper = load_helper(helper_path)
    with open(captured_path, encoding="utf-8") as f:
        result, human = captured_result(f.read(), helper["MARKER"])
    plan = result["plan"]
    names = sorted({e["model"] for key in LIST_KEYS for e in plan[key]} - {""})
    if not names or models % len(names):
        raise SystemExit("cannot reach %d models from the %d of the capture" % (models, len(names)))
    copies = models // len(names)
    short_names = sorted({n.rsplit(".", 1)[-1] for n in names}, key=len, reverse=True)
    for key in LIST_KEYS:
        plan[key] = [rename_deep(e, renamer(short_names, k)) for e in plan[key] for k in range(copies)]
        plan[key].sort(key=lambda e: e["model"])
    word = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, short_names)) + r")(?![A-Za-z0-9])")
    plan["explain"] = render_tree(replicate_tree(parse_tree(plan["explain"]), word.search, copies, short_names))
    human = human.split("Explained plan")[0] + plan["explain"] + "\n"
    sys.stdout.write(human)
    helper["emit"](result, helper["DEFAULT_CHUNK_BYTES"])


if __name__ == "__main__":
    main(sys.argv[1:])
