"""Learning methods as plug-ins (toolchain.methods): the registry, the one config resolver, the
one checkpoint reader/writer, and the CLI built from the registry."""
import argparse
import json
import sys
import subprocess
import textwrap
from pathlib import Path

import pytest
import torch

from models.errors import SpikeportError
from toolchain import checkpoint, methods
from toolchain.cli import build_parser, main
from toolchain.methods.config import resolve

ROOT = Path(__file__).resolve().parents[1]

TODAYS_KINDS = {"spikeport-checkpoint", "spikeport-ttfs-checkpoint", "spikeport-spike-transform-checkpoint",
                "spikeport-smooth-checkpoint", "spikeport-gate-checkpoint"}


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def _choices(parser: argparse.ArgumentParser, verb: str, dest: str):
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[verb]
    return next(a for a in sub._actions if a.dest == dest).choices


# ------------------------------------------------------------------ registry
def test_every_registered_method_has_a_name_kind_tasks_rules_and_the_three_verbs():
    registered = methods.registry()
    assert {m.name for m in registered} == {"superspike", "ttfs", "spike_train", "smooth", "gate"}
    for m in registered:
        assert m.name and m.description and m.label and m.tasks and m.rules
        assert callable(m.add_options) and callable(m.train) and callable(m.compile) and callable(m.verify)


@pytest.mark.parametrize("verb", methods.VERBS)
def test_every_flag_a_method_adds_has_help_text(verb):
    for m in methods.registry():
        group = argparse.ArgumentParser().add_argument_group(m.label)
        m.add_options(verb, group)
        assert all(a.help for a in group._group_actions), (m.name, verb)


def test_methods_keep_todays_checkpoint_tags_one_kind_each():
    assert {m.kind for m in methods.registry()} == TODAYS_KINDS


def test_superspike_is_the_one_default_method_and_surrogate_the_default_rule():
    assert [m.name for m in methods.registry() if m.default] == ["superspike"]
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    assert sub.get_default("method") == "surrogate"


@pytest.mark.parametrize("rule, task, name", [
    ("surrogate", "digits", "superspike"), ("surrogate", "spike-transform", "spike_train"),
    ("exact", "spike-transform", "spike_train"), ("ttfs", "mnist", "ttfs"), ("smooth", "mnist", "smooth"),
    ("gate", "xor", "gate"), ("gate", "predictive-coding", "gate")])
def test_training_goes_to_the_method_that_has_the_rule_for_the_task(rule, task, name):
    assert methods.for_training(rule, task).name == name


def test_an_unknown_checkpoint_kind_is_a_one_line_error_naming_the_known_kinds():
    with pytest.raises(SpikeportError) as info:
        methods.for_kind("spikeport-nope-checkpoint")
    message = _one_line(info)
    assert "'spikeport-nope-checkpoint'" in message and all(k in message for k in TODAYS_KINDS)


def test_a_checkpoint_is_dispatched_by_its_kind_tag_and_any_other_file_to_superspike(tmp_path):
    for m in methods.registry():
        path = tmp_path / f"{m.name}.pt"
        checkpoint.write(path, m.kind, config={})
        assert methods.for_file(path) == (m, True)
    (tmp_path / "model.onnx").write_bytes(b"")
    assert methods.for_file(tmp_path / "model.onnx")[0].name == "superspike"
    assert methods.for_file(tmp_path / "missing.pt") == (methods.for_kind("spikeport-checkpoint"), False)


TOY_METHOD = '''
from toolchain.methods import Method

def add_options(verb, parser):
    if verb == "train":
        parser.add_argument("--toy-level", type=int, default=1, help="toy level (default: 1)")

def train(args):
    print(f"toy trained {args.task} at level {args.toy_level}")
    return 0

METHOD = Method(name="toy", description="a toy method", rules=("toy",), tasks=("digits",),
                kind="spikeport-toy-checkpoint", label="toy", add_options=add_options, train=train,
                compile=lambda path, args: (None, ""), verify=lambda args: 0)
'''


@pytest.fixture
def toy_method(tmp_path, monkeypatch):
    """A new method that is one new package and nothing else (found on the package search path)."""
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "__init__.py").write_text(textwrap.dedent(TOY_METHOD))
    monkeypatch.setattr(methods, "__path__", [*methods.__path__, str(tmp_path)])
    methods.registry.cache_clear()
    yield
    methods.registry.cache_clear()
    sys.modules.pop("toolchain.methods.toy", None)


def test_a_new_method_package_is_discovered_with_its_rule_flags_and_training(toy_method, capsys):
    assert "toy" in _choices(build_parser(), "train", "method")
    assert main(["train", "--method", "toy", "--toy-level", "3"]) == 0
    assert "toy trained digits at level 3" in capsys.readouterr().out


def test_a_flag_of_another_method_is_refused_for_training_in_one_line(toy_method, tmp_path, capsys):
    assert main(["train", "--method", "ttfs", "--toy-level", "2", "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--toy-level applies to --method toy on --task digits only" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m.pt").exists()


# ----------------------------------------------------------------------- CLI
def test_the_cli_method_choices_are_the_rules_of_the_registered_methods():
    rules = {r for m in methods.registry() for r in m.rules}
    assert set(_choices(build_parser(), "train", "method")) == rules == {"surrogate", "ttfs", "exact", "smooth", "gate"}


def test_a_superspike_flag_on_ttfs_training_is_refused_in_one_line(tmp_path, capsys):
    assert main(["train", "--task", "digits", "--method", "ttfs", "--qat", "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--qat applies to --method surrogate on --task digits | yinyang | mnist only" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "m.pt").exists()


def test_a_method_rule_on_a_task_it_does_not_train_names_the_rules_that_do(tmp_path, capsys):
    assert main(["train", "--task", "mnist", "--method", "exact", "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--method exact applies to --task spike-transform only" in err and "surrogate | ttfs" in err


def test_an_unknown_task_names_the_tasks_of_the_method_rule(tmp_path, capsys):
    assert main(["train", "--task", "nope", "--method", "exact", "--out", str(tmp_path / "m.pt")]) == 2
    assert capsys.readouterr().err.strip() == "spikeport: error: train: unknown task 'nope'; choose one of spike-transform"


# -------------------------------------------------------------------- config
def test_config_defaults_are_overridden_by_the_file_then_by_non_none_keywords(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"lr": 0.1, "epochs": 3}))
    defaults = dict(lr=1.0, epochs=10, hidden=[4])
    cfg = resolve(defaults, path, epochs=7, hidden=None)
    assert cfg == dict(lr=0.1, epochs=7, hidden=[4])
    cfg["hidden"].append(5)
    assert defaults["hidden"] == [4]  # a deep copy: the defaults stay as they were


@pytest.mark.parametrize("where", ["file", "keyword"])
def test_an_unknown_config_key_is_a_one_line_error_naming_it_and_the_known_keys(where, tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"learning_rate": 1} if where == "file" else {}))
    extra = {"learning_rate": 1} if where == "keyword" else {}
    with pytest.raises(SpikeportError) as info:
        resolve(dict(lr=1.0, epochs=10), path, what="toy", **extra)
    assert _one_line(info) == "toy: unknown key 'learning_rate'; known keys: epochs, lr"


def test_a_config_file_that_is_not_json_is_a_one_line_error(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("{lr: 1")
    with pytest.raises(SpikeportError, match="unreadable JSON config") as info:
        resolve(dict(lr=1.0), path)
    _one_line(info)


# ---------------------------------------------------------------- checkpoints
def test_a_checkpoint_round_trips_its_payload_under_its_kind_tag(tmp_path):
    path = tmp_path / "x.pt"
    checkpoint.write(path, "spikeport-ttfs-checkpoint", config={"n": 3}, state_dict={"w": torch.ones(2)})
    payload = checkpoint.read(path, "spikeport-ttfs-checkpoint")
    assert checkpoint.kind_of(path) == "spikeport-ttfs-checkpoint" and payload["config"] == {"n": 3}
    assert torch.equal(payload["state_dict"]["w"], torch.ones(2)) and payload["version"] == 1


def test_reading_a_checkpoint_as_another_kind_is_a_one_line_error(tmp_path):
    path = tmp_path / "x.pt"
    checkpoint.write(path, "spikeport-ttfs-checkpoint")
    with pytest.raises(SpikeportError) as info:
        checkpoint.read(path, "spikeport-checkpoint")
    assert "not a spikeport checkpoint of kind 'spikeport-checkpoint'" in _one_line(info)


def test_a_newer_checkpoint_version_is_refused(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"format": "spikeport-checkpoint", "version": 99}, path)
    with pytest.raises(SpikeportError, match="version 99 is newer"):
        checkpoint.read(path)


def test_kind_of_an_unreadable_or_foreign_file_is_none(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    torch.save([1, 2], tmp_path / "list.pt")
    assert checkpoint.kind_of(tmp_path / "junk.pt") is None and checkpoint.kind_of(tmp_path / "list.pt") is None
    assert checkpoint.kind_of(tmp_path / "missing.pt") is None


def test_building_the_cli_parser_imports_neither_torch_nor_lava():
    code = ("import sys; from toolchain.cli import build_parser; build_parser(); "
            "print(sorted({'torch', 'lava'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
