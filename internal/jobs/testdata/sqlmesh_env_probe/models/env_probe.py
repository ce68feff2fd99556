"""A Python model whose module code prints the environment it can see.

Module code of a Python model runs whenever sqlmesh loads the project, so a plan of a pull request runs it:
this is what PR code can read. The test asserts that the bot's credentials are not among it.
"""

import os

import pandas as pd
from sqlmesh import model

for name, value in sorted(os.environ.items()):
    print(f"ENV_PROBE {name}={value}", flush=True)


@model("probe.env_probe", columns={"id": "int"}, kind="FULL")
def execute(context, start, end, execution_time, **kwargs):
    return pd.DataFrame([{"id": 1}])
