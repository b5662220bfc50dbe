"""Ambiguous submissions: classified, then reconciled with the queue by submit tag."""

from __future__ import annotations

import pytest

from dpdispatcher import Job, Machine, Resources, Task
from dpdispatcher._reconcile import reconcile, split_tag_blocks, tag_loop
from dpdispatcher._script import names
from dpdispatcher.base_context import CommandResult
from dpdispatcher.errors import AmbiguousSubmitError, ContextError, SchedulerError
from dpdispatcher.machines.slurm import Slurm
from dpdispatcher.utils.job_status import JobStatus
from tests.scheduler_doubles import FakeContext, recorded

SUB = "5" * 40


def job(i: int = 0, attempt: int = 0) -> Job:
    j = Job([Task(f"echo {i}", f"t{i}")], resources=Resources(1, 1, 0, "", 1))
    j.fail_count = attempt
    j.submit_tag = names.submit_tag(SUB, j.job_hash, attempt)
    return j


def slurm(*answers: CommandResult, files: tuple[str, ...] = ()) -> Slurm:
    m = Machine.__new__(Slurm)
    Slurm.__init__(m, context=FakeContext(list(answers), files))
    return m


def test_submit_tag_is_short_safe_and_differs_per_attempt_and_submission() -> None:
    j = job()
    tags = {names.submit_tag(s, j.job_hash, a) for s in (SUB, "6" * 40) for a in (0, 1, 2)}
    assert len(tags) == 6
    for tag in tags:
        assert len(tag) == 15 and tag.isalnum() and tag.islower() and tag.startswith("dpd")
        assert tag[3:11] == j.job_hash[:8]  # carries the job hash


@pytest.mark.parametrize(
    ("result", "ambiguous"),
    [
        (recorded("slurm", "sbatch_man_socket_timeout"), True),  # may have been queued
        (recorded("slurm", "sbatch_ctld_down"), True),
        (CommandResult(124, "", ""), True),  # cut short by timeout(1)
        (CommandResult(137, "", "Killed"), True),
        (recorded("slurm", "sbatch_bad_partition"), False),  # a refusal: nothing queued
    ],
)
def test_failed_submits_are_classified(result: CommandResult, ambiguous: bool) -> None:
    outcome = slurm()._submit_outcome(job(), result)
    assert isinstance(outcome, SchedulerError)
    assert isinstance(outcome, AmbiguousSubmitError) == ambiguous


def test_a_dropped_connection_while_submitting_makes_every_job_ambiguous() -> None:
    class Dropping(FakeContext):
        _abstract = True

        def run(self, cmd: str, timeout: float | None = None, *, idempotent: bool = False):
            raise ContextError("connection reset by peer")

    m = Machine.__new__(Slurm)
    Slurm.__init__(m, context=Dropping())
    jobs = [job(0), job(1)]
    outcomes = m.submit_many(jobs)
    assert all(isinstance(outcomes[j.job_hash], AmbiguousSubmitError) for j in jobs)


def test_submit_command_carries_the_tag_as_comment() -> None:
    j = job()
    assert slurm().submit_command(j, "s.sub") == f"sbatch --parsable --comment={j.submit_tag} s.sub"


def test_found_in_the_queue_the_job_id_is_adopted_and_nothing_is_submitted() -> None:
    a, b = job(0), job(1)
    listing = CommandResult(0, f"77|(null)\n81|{a.submit_tag}\n82|someone-else\n", "")
    m = slurm(listing)
    assert reconcile(m, [a, b]) is True
    assert (a.job_id, a.job_state) == ("81", JobStatus.waiting)
    assert (b.job_id, b.job_state) == ("", JobStatus.unsubmitted)  # not found: submit again
    ctx = m.context
    assert isinstance(ctx, FakeContext)
    assert len(ctx.commands) == 1 and "--format='%i|%k'" in ctx.commands[0]
    assert not any("sbatch" in c for c in ctx.commands)


def test_an_older_attempt_of_the_same_job_is_not_mistaken_for_this_one() -> None:
    old, new = job(0, attempt=0), job(0, attempt=1)
    listing = CommandResult(0, f"70|{old.submit_tag}\n", "")  # the failed first attempt
    assert reconcile(slurm(listing), [new]) is True
    assert new.job_id == "" and new.job_state == JobStatus.unsubmitted


def test_not_in_the_queue_but_its_finish_tag_exists_means_it_ran() -> None:
    a = job()
    m = slurm(CommandResult(0, "", ""), files=(names.job_tag_file(a.job_hash),))
    assert reconcile(m, [a]) is True
    assert a.job_state == JobStatus.finished


def test_a_failed_search_leaves_the_jobs_unknown_for_later() -> None:
    a = job()
    a.job_state = JobStatus.unknown
    assert reconcile(slurm(recorded("slurm", "squeue_ctld_down")), [a]) is None
    assert reconcile(slurm(CommandResult(1, "", "squeue: error: boom")), [a]) is None
    assert a.job_state == JobStatus.unknown and a.job_id == ""


def test_tag_loop_round_trip() -> None:
    cmd = tag_loop(["dpda", "dpdb"], 'qselect -N "$t"')
    assert cmd.startswith("for t in dpda dpdb; do")
    out = "@@dpdispatcher-tag dpda\n12.srv\n@@dpdispatcher-tag dpdb\n"
    assert split_tag_blocks(out) == {"dpda": ["12.srv"], "dpdb": []}


def test_a_batch_type_submitting_by_itself_must_say_so() -> None:
    with pytest.raises(TypeError, match="submits_by_command"):

        class Sneaky(Machine):
            _abstract = True

            def submit_prepared(self, job: Job) -> str:
                return "1"

    class Honest(Machine):
        _abstract = True
        submits_by_command = False

        def submit_prepared(self, job: Job) -> str:
            return "1"

    assert not Honest.submits_by_command


def test_shell_jobs_carry_their_tag_and_are_found_by_ps() -> None:
    from dpdispatcher.machines.shell import Shell

    a, b = job(0), job(1)
    m = Machine.__new__(Shell)
    ps = f"  311 bash .{a.job_hash}.sub {a.submit_tag}\n  312 sleep 600\n"
    Shell.__init__(m, context=FakeContext([CommandResult(0, ps, "")]))
    assert m.submit_command(a, "s.sub").startswith(f"setsid bash s.sub {a.submit_tag} ")
    assert m.find_submitted([a, b]) == {a.job_hash: "311"}
