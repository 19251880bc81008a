"""training.loop: the schedule, resuming, continuing from weights, the log, and when weights ship."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from torch import nn

from training.loop import Schedule, Trainer, command_line, lr_at


def test_schedule_warms_up_then_decays_to_the_floor():
    s = Schedule(peak=1.0, total=100, warmup=10, floor=0.01)
    assert s(0) == pytest.approx(0.1) and s(9) == pytest.approx(1.0)
    assert s(10) == pytest.approx(1.0) and s(100) == pytest.approx(0.01) and s(500) == pytest.approx(0.01)
    rates = [s(i) for i in range(10, 101)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))  # cosine: never rises after the warm-up
    assert Schedule(1.0, 100, 10)(55) == lr_at(55, 100, 1.0, 10)


def test_warm_restart_starts_the_schedule_again_at_its_step():
    s = Schedule(peak=2.0, total=100, warmup=4, floor=0.0)
    assert [s(60 + i, start=60) for i in range(4)] == pytest.approx([0.5, 1.0, 1.5, 2.0])
    assert s(100, start=60) == pytest.approx(0.0)
    assert s(80, start=60) == pytest.approx(lr_at(20, 40, 2.0, 4))


def test_command_line_records_the_module_and_its_arguments():
    assert command_line("training.train_sr", ["--model", "mobilesr", "--out", "a b.safetensors"]) == \
        "python -m training.train_sr --model mobilesr --out 'a b.safetensors'"


class _Run:
    """A trainer around a one-weight model whose validation metric follows a script."""

    def __init__(self, tmp_path, scores, *, keep_best=True, steps=None, minutes=0.0):
        torch.manual_seed(0)
        self.model = nn.Linear(1, 1)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.scores, self.shipped = list(scores), []
        self.trainer = Trainer("toy", ckpt_dir=tmp_path / "ckpt", weights=tmp_path / "toy.safetensors",
                               schedule=Schedule(0.1, steps or len(self.scores), 1), batch=3, optimizers=[self.opt],
                               best_key="val_score", keep_best=keep_best, command="python -m toy", args={"batch": 3},
                               minutes=minutes, val_every=1)
        self.batches = []

    def fit(self):
        state = self.trainer.resume()
        if state:
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["opt"])

        def step(batch, i):
            self.batches.append(batch)
            loss = (self.model(torch.ones(1, 1)) - 1).pow(2).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            return {"loss": loss.item()}

        def card(metrics):
            self.shipped.append((self.trainer.progress.step, metrics["val_score"]))
            return {"name": "toy"}

        start = self.trainer.progress.step
        self.trainer.fit(iter(range(start, 1000)), step, lambda: {"val_score": self.scores[self.trainer.progress.step - 1]},
                         ship=self.model, card=card,
                         checkpoint=lambda: {"model": self.model.state_dict(), "opt": self.opt.state_dict()})
        return self


def test_weights_and_card_are_written_only_on_a_new_best(tmp_path):
    run = _Run(tmp_path, [1.0, 3.0, 2.0, 3.0, 0.5]).fit()
    assert run.shipped == [(1, 1.0), (2, 3.0), (4, 3.0)]  # a tie ships the later (longer trained) weights
    card = json.loads((tmp_path / "toy.json").read_text())
    assert card["steps"] == 4 and card["val_score"] == 3.0 and card["samples"] == 12
    assert card["command"] == "python -m toy" and "earlier_runs" not in card
    state = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=False)
    assert state["step"] == 5 and state["best"] == {"val_score": 3.0} and state["samples"] == 15
    with open(tmp_path / "ckpt" / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5] and list(rows[0])[:3] == ["step", "samples", "loss"]


def test_without_keep_best_every_validation_ships(tmp_path):
    run = _Run(tmp_path, [1.0, 3.0, 2.0], keep_best=False).fit()
    assert [s for s, _ in run.shipped] == [1, 2, 3]


def test_time_budget_stops_and_a_rerun_resumes_where_it_stopped(tmp_path):
    first = _Run(tmp_path, [1.0, 2.0, 3.0, 4.0], minutes=1e-9).fit()  # the budget is over after one step
    assert first.batches == [0] and first.trainer.progress.step == 1
    again = _Run(tmp_path, [1.0, 2.0, 3.0, 4.0]).fit()
    assert again.trainer.progress.step == 4 and again.batches == [1, 2, 3]
    assert again.trainer.progress.best == {"val_score": 4.0}
    state = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=False)
    assert state["samples"] == 12 and state["seconds"] >= 0


def test_a_resume_by_another_command_records_the_earlier_one(tmp_path):
    first = _Run(tmp_path, [1.0, 2.0, 3.0, 4.0], minutes=1e-9).fit()  # stops after one step, ships it
    shipped = json.loads((tmp_path / "toy.json").read_text())
    longer = _Run(tmp_path, [1.0, 2.0, 3.0, 4.0])
    longer.trainer.command = "python -m toy --steps 4"
    assert longer.trainer.resume(run_fields=("command", "steps", "sha256")) is not None
    assert longer.trainer.progress.earlier_runs == [{"command": "python -m toy", "steps": 1,
                                                     "sha256": shipped["sha256"]}]
    # The same command resuming its own checkpoint continues one run: nothing is added.
    again = _Run(tmp_path, [1.0, 2.0, 3.0, 4.0])
    assert again.trainer.resume(run_fields=("command", "steps", "sha256")) is not None
    assert again.trainer.progress.earlier_runs == [] and first.trainer.progress.step == 1


def test_continue_from_weights_takes_step_best_and_history_from_the_card(tmp_path):
    _Run(tmp_path / "a", [1.0, 2.0]).fit()
    card = json.loads((tmp_path / "a" / "toy.json").read_text())
    run = _Run(tmp_path / "a", [0.0] * 5)
    run.trainer.ckpt_path = tmp_path / "none.pt"  # no checkpoint: continue from the weights file
    run.trainer.continue_from_weights(run.model, metrics=("val_score",), run_fields=("command", "steps", "sha256"),
                                      restart=True)
    p = run.trainer.progress
    assert p.step == 2 and p.schedule_start == 2 and p.samples == 6 and p.best == {"val_score": 2.0}
    assert p.earlier_runs == [{"command": "python -m toy", "steps": 2, "sha256": card["sha256"]}]
    assert p.started_from == "toy.safetensors at step 2"
    assert torch.equal(run.model.weight, torch.load(tmp_path / "a" / "ckpt" / "last.pt", weights_only=False)["model"]["weight"])


def test_an_existing_log_keeps_its_columns(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "log.csv").write_text("step,loss,lr,val_score,samples_per_s,elapsed_s\n")
    _Run(tmp_path, [1.0, 2.0]).fit()
    with open(tmp_path / "ckpt" / "log.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["step", "loss", "lr", "val_score", "samples_per_s", "elapsed_s"]
    assert [len(r) for r in rows[1:]] == [6, 6] and [r[0] for r in rows[1:]] == ["1", "2"]
