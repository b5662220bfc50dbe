"""dflow workflow driver, run by the dflow venv's interpreter (not imported by pytest).

Usage: ``python dflow_driver.py spec.json``. The spec names the executor settings
(``machine``, ``resources``, ``executor`` keyword arguments for ``DispatcherExecutor``),
the counter file and the debug work dir. The workflow is what dflow/dpgen2 users write:
a ``ShellOPTemplate`` step producing an artifact from an input parameter, then a
``PythonOPTemplate`` step (an OP class) reading that artifact and returning an output
parameter, both rendered by ``DispatcherExecutor`` into scripts that import dpdispatcher
and run one submission. dflow runs in its local debug mode (no Argo, no Kubernetes).
The result (workflow phase, step phases, output parameter) is printed as one JSON line.
"""


import json
import sys
from pathlib import Path

from dflow import (
    InputParameter,
    OutputArtifact,
    ShellOPTemplate,
    Step,
    Workflow,
    config,
)
from dflow.plugins.dispatcher import DispatcherExecutor
from dflow.python import OP, OPIO, Artifact, OPIOSign, PythonOPTemplate


class Consume(OP):
    """Read the produced file and return its first line, upper-cased."""

    @classmethod
    def get_input_sign(cls):
        return OPIOSign({"src": Artifact(Path), "counter": str})

    @classmethod
    def get_output_sign(cls):
        return OPIOSign({"line": str})

    @OP.exec_sign_check
    def execute(self, op_in):
        import os

        with open(op_in["counter"], "a") as f:
            f.write(f"consume start {os.getcwd()}\n")
        line = (Path(op_in["src"]) / "result.txt").read_text().splitlines()[0].upper()
        return OPIO({"line": line})


def produce_template(script_extra: str) -> ShellOPTemplate:
    script = (
        "echo \"produce start $(pwd)\" >> {{inputs.parameters.counter}}\n"
        + script_extra
        + "mkdir -p /tmp/out && echo {{inputs.parameters.msg}} > /tmp/out/result.txt\n"
        "echo \"produce end $(pwd)\" >> {{inputs.parameters.counter}}\n"
    )
    templ = ShellOPTemplate(name="produce", image="dpdisp-standin", script=script)
    templ.inputs.parameters = {"msg": InputParameter(), "counter": InputParameter()}
    templ.outputs.artifacts = {"out": OutputArtifact("/tmp/out")}
    return templ


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    config["mode"] = "debug"
    config["debug_workdir"] = spec["workdir"]
    executor = DispatcherExecutor(
        machine_dict=spec["machine"],
        resources_dict=spec.get("resources"),
        **spec.get("executor", {}),
    )
    wf = Workflow(name="dpdisp-client")
    produce = Step(
        name="produce",
        template=produce_template(spec.get("produce_extra", "")),
        parameters={"msg": spec["msg"], "counter": spec["counter"]},
        executor=executor,
    )
    wf.add(produce)
    if not spec.get("single_step"):
        consume = Step(
            name="consume",
            template=PythonOPTemplate(Consume, image="dpdisp-standin"),
            parameters={"counter": spec["counter"]},
            artifacts={"src": produce.outputs.artifacts["out"]},
            executor=executor,
        )
        wf.add(consume)
    wf.submit()
    steps = {s.key or s.displayName: s.phase for s in wf.query_step()}
    line = None
    if not spec.get("single_step"):
        done = wf.query_step(name="consume")
        if done and done[0].phase == "Succeeded":
            line = done[0].outputs.parameters["line"].value
    print(json.dumps({"phase": wf.query_status(), "steps": steps, "line": line,
                      "id": wf.id}))


if __name__ == "__main__":
    main()
