"""The CLI teaches: every option of every verb (and of every method) has help naming its default,
method options say which methods take them, and bad numbers are one line, exit 2."""
from __future__ import annotations

import argparse
import re

import pytest

from toolchain import cli, methods


# Named here, not read from the parser at collection: building the parser imports every format
# module, and other tests pin the order formats register in.
VERB_NAMES = ("compile", "demo", "export", "inspect", "results", "simulate", "sweep", "train", "verify")


@pytest.fixture(scope="module")
def verbs() -> dict:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_the_verbs_under_test_are_every_verb_of_the_cli(verbs):
    assert sorted(verbs) == list(VERB_NAMES)


def _options(parser):
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def _help(parser, action) -> str:
    """The help text as `-h` prints it (``%(default)s`` expanded), on one line."""
    text = parser._get_formatter()._expand_help(action)
    return " ".join(text.split())


def _default_texts(default) -> set:
    """How a help text may spell ``default``: as written, or a number in short form."""
    texts = {str(default)}
    if isinstance(default, float):
        texts |= {f"{default:g}", repr(default)}
    return texts


@pytest.mark.parametrize("verb", VERB_NAMES)
def test_every_option_of_every_verb_has_help_that_names_its_default(verb, verbs):
    parser = verbs[verb]
    for action in _options(parser):
        text = _help(parser, action)
        flag = action.option_strings[0]
        assert text, f"{verb} {flag}: no help"
        if action.required:
            assert text.startswith("required"), f"{verb} {flag}: a required option says so first: {text}"
            continue
        assert "default" in text, f"{verb} {flag}: help names no default: {text}"
        if action.default not in (None, False, argparse.SUPPRESS):
            said = re.search(r"default[^)]*", text).group(0)
            assert any(t in text for t in _default_texts(action.default)), \
                f"{verb} {flag}: default {action.default!r} is not in its help ({said!r})"


@pytest.mark.parametrize("verb", VERB_NAMES)
def test_every_positional_argument_has_help(verb, verbs):
    parser = verbs[verb]
    for action in parser._actions:
        if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
            assert _help(parser, action), f"{verb} {action.dest}: no help"


@pytest.mark.parametrize("verb", methods.VERBS)
def test_every_method_option_sits_in_a_group_that_names_the_method_and_what_takes_it(verb, verbs):
    parser = verbs[verb]
    groups = {id(a): g.title for g in parser._action_groups for a in g._group_actions}
    owned = parser.get_default("method_options")
    for method, actions in owned.items():
        for action in actions:
            title = groups[id(action)]
            assert method.label in title and "only" in title, (action.option_strings, title)
            if verb == "train":
                assert all(rule in title for rule in method.rules) and all(t in title for t in method.tasks)


def test_epochs_help_says_epochs_or_iterations_and_each_methods_default_per_task(verbs):
    text = _help(verbs["train"], next(a for a in _options(verbs["train"]) if a.dest == "epochs"))
    assert "iterations (full-batch steps) on spike-transform" in text
    for method in methods.registry():
        for task, default in (method.epochs or {}).items():
            assert f"{task} {default}" in text, (method.name, task, text)


@pytest.mark.parametrize("verb", VERB_NAMES)
def test_every_verb_prints_its_help_and_exits_0(verb, verbs, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([verb, "-h"])
    out = capsys.readouterr().out
    assert stop.value.code == 0 and out.startswith(f"usage: spikeport {verb}")
    assert all(a.option_strings[0] in out for a in _options(verbs[verb]))


def _exit_code(argv) -> int:
    """`cli.main`'s exit code, also when argparse exits (a value that is not a number at all)."""
    try:
        return cli.main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize("argv, says", [
    (["train", "--epochs", "0"], "train --epochs: epochs=0 is outside [1, inf) (an integer)"),
    (["train", "--epochs", "-3"], "train --epochs: epochs=-3 is outside [1, inf)"),
    (["train", "--epochs", "2.5"], "argument --epochs: '2.5' is outside [1, inf) (an integer)"),
    (["train", "--seed", "-1"], "train --seed: seed=-1 is outside [0, inf)"),
    (["train", "--threads", "0"], "train --threads: threads=0 is outside [1, inf)"),
    (["compile", "m.pt", "--calibration-samples", "0"], "compile --calibration-samples: calibration_samples=0"),
    (["verify", "m.pt", "--samples", "0"], "verify --samples: samples=0 is outside [1, inf)"),
    (["verify", "m.pt", "--lava-samples", "0"], "verify --lava-samples: lava_samples=0 is outside [1, inf)"),
    (["verify", "m.pt", "--samples", "5", "--lava-samples", "6"], "lava_samples=6 is outside [1, 5]"),
    (["verify", "m.pt", "--max-accuracy-drop", "2"], "max_accuracy_drop=2.0 is outside [-1, 1]"),
    (["verify", "m.pt", "--min-match-1", "nan"], "min_match_1=nan is outside [0, 1]"),
    (["verify", "m.pt", "--dt", "0"], "verify --dt: dt=0.0 is outside (0, inf)"),
    (["verify", "m.pt", "--workers", "0"], "verify --workers: workers=0 is outside [1, inf)"),
])
def test_a_bad_number_is_one_line_on_stderr_and_exit_2(argv, says, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err, err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []


def test_the_printed_timing_table_ends_with_a_legend_of_every_column():
    import numpy as np

    from toolchain.verify import summary, timing

    rng = np.random.default_rng(0)
    ref, test = rng.random((2, 5, 8, 3)) < 0.3
    text = summary._timing_table({"layers.0": timing.compare(ref, test)}, "float vs emulator")
    header, legend = text.splitlines()[1], text.split("\n", 3)[3]
    assert legend == summary.TIMING_LEGEND
    said = " ".join(legend.split())
    for column, explained in (("spikes ref/test", "spikes ref/test"), ("|dcount|", "|dcount|"),
                              ("match 0    +-1    +-2", "match 0/+-1/+-2"),
                              ("first |err| mean/max", "first |err| mean/max"), ("only one", "only one"),
                              ("vR", "vR")):
        assert column in header and f"{explained}: " in said, column


def test_verify_says_accuracy_change_with_its_sign_a_gain_is_positive_and_passes():
    import numpy as np

    from toolchain.verify.criteria import accuracy_drop

    correct = {"float": np.array([1, 0, 0, 1, 0], bool), "emulator": np.array([1, 1, 0, 1, 0], bool)}
    gain = accuracy_drop("float vs emulator", correct, 0.05)
    assert gain.name == "accuracy change float -> emulator" and gain.passed
    assert gain.detail == "+20.0% (40.0% -> 60.0%; minimum -5.0%)"
    loss = accuracy_drop("emulator vs float", correct, 0.05)
    assert not loss.passed and loss.detail.startswith("-20.0% (60.0% -> 40.0%")


def test_the_train_summary_names_the_method_run_and_the_elapsed_time(tmp_path, capsys):
    import json

    (tmp_path / "c.json").write_text(json.dumps(dict(epochs=1, hidden=[8])))
    assert cli.main(["train", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "m.pt"), "--quiet"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"digits \(surrogate: SuperSpike\): train accuracy \d+\.\d\d%, test accuracy \d+\.\d\d% "
                        r"\(final network, whole splits\), 1 epoch in \d+ s -> .*m\.pt", line), line
