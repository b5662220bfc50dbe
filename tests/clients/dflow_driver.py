"""dflow workflow driver, run by the dflow venv's interpreter (not imported by pytest).

Usage: ``python dflow_driver.py spec.json``. The spec names the executor settings
(``machine``, ``resources``, ``executor`` keyword arguments for ``DispatcherExecutor``),
the counter file and the debug work dir. The workflow is what dflow/dpgen2 users write:
a ``ShellOPTemplate`` step producing an artifact from an input parameter, then a
``PythonOPTemplate`` step (an OP class) reading that artifact and returning an output
parameter, both rendered by ``DispatcherExecutor`` into scripts that import dpdispatcher
and run one submission. With ``sliced`` in the spec the workflow is instead one sliced
``PythonOPTemplate`` step over the given items (``merge_sliced_step`` in ``executor``
renders all slices into one submission of many tasks, as dpgen2 does on Bohrium).
dflow runs in its local debug mode (no Argo, no Kubernetes).
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
    argo_range,
    config,
)
from dflow.plugins.dispatcher import DispatcherExecutor
from dflow.python import OP, OPIO, Artifact, OPIOSign, PythonOPTemplate, Slices


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


class Shout(OP):
    """One slice: upper-case ``msg``."""

    @classmethod
    def get_input_sign(cls):
        return OPIOSign({"msg": str, "counter": str})

    @classmethod
    def get_output_sign(cls):
        return OPIOSign({"line": str})

    @OP.exec_sign_check
    def execute(self, op_in):
        with open(op_in["counter"], "a") as f:
            f.write(f"shout {op_in['msg']}\n")
        return OPIO({"line": op_in["msg"].upper()})


def sliced_workflow(spec, executor) -> Workflow:
    """dpgen2's pattern: one sliced step over many items, merged into one submission."""
    wf = Workflow(name="dpdisp-sliced")
    items = spec["sliced"]
    templ = PythonOPTemplate(
        Shout,
        image="dpdisp-standin",
        # no sliced output parameter: dflow 1.8.134's merged script renames the output
        # file only in scripts older than its own template (it then writes "line" thrice)
        slices=Slices("{{item}}", input_parameter=["msg"]),
    )
    wf.add(
        Step(
            name="shout",
            template=templ,
            parameters={"msg": items, "counter": spec["counter"]},
            with_param=argo_range(len(items)),
            executor=executor,
        )
    )
    return wf


def produce_template(script_extra: str) -> ShellOPTemplate:
    script = (
        'echo "produce start $(pwd)" >> {{inputs.parameters.counter}}\n'
        + script_extra
        + "mkdir -p /tmp/out && echo {{inputs.parameters.msg}} > /tmp/out/result.txt\n"
        'echo "produce end $(pwd)" >> {{inputs.parameters.counter}}\n'
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
    if spec.get("sliced"):
        wf = sliced_workflow(spec, executor)
        wf.submit()
        steps = {s.key or s.displayName: s.phase for s in wf.query_step()}
        print(json.dumps({"phase": wf.query_status(), "steps": steps, "id": wf.id}))
        return
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
    print(json.dumps({"phase": wf.query_status(), "steps": steps, "line": line, "id": wf.id}))


if __name__ == "__main__":
    main()
