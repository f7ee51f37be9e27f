"""`spikeport verify`: run every engine on the same held-out inputs and prove they agree.

One concept per module:

* `subject`: what is verified (checkpoint, network file, IR) and its held-out inputs;
* `run`: `verify` itself, the engine plan and the `VerifyResult`;
* `compare`: the one bit-identity comparison of two engines (`compare_bit_identity`);
* `timing`: the one spike-matching module (tolerance matching, optimal pairing);
* `criteria`: `Tolerances` and the PASS/FAIL of each check;
* `summary`: the printed table and the CLI command `cmd_verify`;
* `report` / `verify_report`: the one report writer and the verify's sections.

The engines themselves are `toolchain.engines`. Steps are t = 1..T in every message.
"""
from toolchain.verify.compare import Divergence, BitIdentity, compare_bit_identity
from toolchain.verify.criteria import Criterion, Tolerances
from toolchain.verify.run import ENGINES, FIXED_CHAIN, VerifyResult, backend_names, run_engine, verify
from toolchain.verify.subject import Subject, held_out_inputs, load_subject
from toolchain.verify.summary import cmd_verify, format_summary


def write_verify_report(result, folder, extra_sections=()):
    """`toolchain.verify.verify_report.write_verify_report` (imported on use: it needs matplotlib)."""
    from toolchain.verify.verify_report import write_verify_report as write  # lazy: imports matplotlib (~1 s)

    return write(result, folder, extra_sections)


__all__ = ["Criterion", "Divergence", "ENGINES", "BitIdentity", "FIXED_CHAIN", "Subject", "Tolerances",
           "VerifyResult", "backend_names", "cmd_verify", "compare_bit_identity", "format_summary", "held_out_inputs",
           "load_subject", "run_engine", "verify", "write_verify_report"]
