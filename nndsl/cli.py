"""The `nndsl` command: thin subcommands over the Python API.

Every user error ends as ``file:line:col: error: ...`` on stderr with exit
status 1; a Python traceback would be a bug in nndsl.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nndsl import __version__
from nndsl.arrayfile import ArrayFileError, read_npy
from nndsl.buildsys import PrintShareDir
from nndsl.diagnostics import Diagnostic, NNError, Severity, WarningFlag, WarningPolicy
from nndsl.files import write_files
from nndsl.irdump import dump as dump_ir
from nndsl.model import InputError, Model, load
from nndsl.ranges import format_report
from nndsl.summary import Summary
from nndsl.validate import FLOAT_TOLERANCE

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as for any command whose reader went away


def _print_diagnostics(diagnostics: Sequence[Diagnostic]) -> None:
    for diagnostic in diagnostics:
        print(diagnostic.format(), file=sys.stderr)


ALL_WARNINGS = WarningPolicy()  # no -W option: every warning printed, none an error


def _load(path: str, policy: WarningPolicy = ALL_WARNINGS, *, budget: bool = True) -> Model:
    model = load(path, budget=budget)
    _report(model.warnings, policy)
    return model


def _report(warnings: Sequence[Diagnostic], policy: WarningPolicy) -> None:
    """Warnings as the ``-W`` options ask: printed, left out, or raised as errors (exit status 1)."""
    shown = policy.apply(warnings)
    if any(d.severity is Severity.ERROR for d in shown):
        raise NNError(shown)
    _print_diagnostics(shown)


def _warning_option(text: str) -> str:
    """One ``-W`` option, checked when the command line is read (an unknown one is a usage error)."""
    try:
        WarningPolicy.parse([text])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _add_warning_options(command: argparse.ArgumentParser) -> None:
    flags = ", ".join(flag.value for flag in WarningFlag)
    command.add_argument("-W", dest="warnings", action="append", default=[], type=_warning_option,
                         metavar="OPTION",
                         help=f"-Wno-KIND silences a kind of warning ({flags}); -Werror makes every warning an "
                              "error, -Werror=KIND one kind; later options override earlier ones")


def _user_error(where: str, message: str) -> int:
    print(f"{where}: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def cmd_build(args: argparse.Namespace) -> int:
    model = _load(args.model, WarningPolicy.parse(args.warnings))
    files = model.build(args.output, depfile=not args.no_depfile, prefix=args.prefix)
    if not args.quiet:
        for path in files:
            print(path)
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    model = load(args.model)
    try:
        calibration = _load_input(args.calibrate) if args.calibrate else None
        range_warnings = model.range_warnings(calibration)
    except InputError as error:
        return _user_error(args.calibrate, str(error))
    _report([*model.warnings, *range_warnings], WarningPolicy.parse(args.warnings))
    if args.ranges:
        print(format_report(model.compiled.ranges))
    if args.ir:
        print(dump_ir(model.graph), end="")
    if not args.quiet:
        summary = model.summary()
        fits = "" if summary.target is None else f", fits {summary.target.name}"
        print(f"{args.model}: ok ({len(summary.layers)} layers, {summary.macs} MACs{fits})")
    return EXIT_OK


def _load_input(path: str) -> np.ndarray:
    """An array the command line reads (``--input``, ``--calibrate``, ``--labels``): a regular ``.npy`` file.

    Its header is checked against the file's size and the limits before any data is read; nothing is unpickled.
    """
    try:
        return read_npy(path)
    except ArrayFileError as error:
        raise InputError(str(error)) from None


def cmd_run(args: argparse.Namespace) -> int:
    from nndsl.layers import dump_layers, format_stats, layer_stats

    model = _load(args.model, WarningPolicy.parse(args.warnings))
    try:
        x = _load_input(args.input)
        if args.trace or args.dump:
            values = model.trace(x, quantize=args.quantize)
            if args.trace:
                print(format_stats(layer_stats(model, values)))
            if args.dump:
                dump_layers(model, values, Path(args.dump))
            result = values[model.graph.output.name]
        else:
            result = model.run(x, quantize=args.quantize)
    except InputError as error:
        hint = "; --quantize does that" if "quantise it first" in str(error) and not args.quantize else ""
        return _user_error(args.input, f"{error}{hint}")
    if args.real:
        result = model.dequantize(result)
    if args.output:
        _save_array(Path(args.output), result)
    elif not args.trace:
        print(np.array2string(result, threshold=sys.maxsize, max_line_width=100))
    return EXIT_OK


def _save_array(path: Path, array: np.ndarray) -> None:
    """Exactly the file asked for (``np.save`` would append ``.npy``), written atomically."""
    if path.is_dir():
        raise OSError(0, "is a folder; --output takes the .npy file to write", str(path))
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_files({path: buffer.getvalue()})


def _format_summary(summary: Summary) -> str:
    timed = summary.target is not None
    time_header = f" {'cycles':>10} {'ms':>8}" if timed else ""
    header = (f"{'layer':<16} {'op':<16} {'shape':<14} {'params':>8} {'weights B':>10} {'MACs':>10} "
              f"{'arena B':>8}{time_header}")
    lines = [f"network {summary.name}", header, "-" * len(header)]
    for layer in summary.layers:
        shape = "[" + ",".join(map(str, layer.shape)) + "]"
        time = f" {layer.cycles:>10.0f} {layer.latency_ms or 0.0:>8.3f}" if timed else ""
        lines.append(f"{layer.name:<16} {layer.op:<16} {shape:<14} {layer.params:>8} {layer.weight_bytes:>10} "
                     f"{layer.macs:>10} {layer.arena_bytes:>8}{time}")
    lines.append("-" * len(header))
    total_time = f" {summary.cycles:>10.0f} {summary.latency_ms or 0.0:>8.3f}" if timed else ""
    lines.append(f"{'total':<16} {'':<16} {'':<14} {summary.params:>8} {summary.weight_bytes:>10} "
                 f"{summary.macs:>10} {summary.arena_bytes:>8}{total_time}")
    lines.append(f"flash: {summary.flash_bytes} B ({summary.weight_bytes} weights "
                 f"+ ~{summary.code_bytes_estimate} code)")
    state = f" + {summary.state_bytes} B state" if summary.state_bytes else ""
    lines.append(f"ram:   {summary.arena_bytes} B arena{state}")
    target = summary.target
    if target is not None and summary.latency_ms is not None:
        budget = "" if target.latency_budget_ms is None else f" (budget {target.latency_budget_ms:g} ms)"
        lines.append(f"time:  {summary.cycles:.0f} cycles at {target.cycles_per_mac:g} cycles/MAC = "
                     f"{summary.latency_ms:.3f} ms at {target.clock_hz / 1e6:g} MHz{budget}")
        verdict = "fits" if target.fits else "DOES NOT FIT"
        lines.append(f"target {target.name}: {verdict} (RAM {summary.ram_bytes}/{target.ram_bytes} B, "
                     f"flash {summary.flash_bytes}/{target.flash_bytes} B)")
    return "\n".join(lines)


def cmd_summarize(args: argparse.Namespace) -> int:
    """The table (or JSON) even over budget, so that it shows what to shrink; then the budget errors."""
    model = _load(args.model, WarningPolicy.parse(args.warnings), budget=False)
    summary = model.summary()
    if args.json:
        data = summary.to_json() | {"errors": [error.format() for error in model.budget_errors]}
        print(json.dumps(data, indent=2))
    else:
        print(_format_summary(summary))
    sys.stdout.flush()  # the table before the errors, also when both go to one terminal or file
    _print_diagnostics(model.budget_errors)
    return EXIT_ERROR if model.budget_errors else EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from nndsl.importers import import_model

    if args.list_ops:
        return _list_ops(args.source)
    if args.output is None:
        return _user_error(args.source, "import needs -o OUT.nn (or --list-ops to only list the file's ops)")
    progress = sys.stderr.isatty() and not args.quiet
    name = args.name or Path(args.output).stem
    imported = import_model(args.source, calibrate=args.calibrate, int16=args.int16, name=name, progress=progress)
    nn, npz = imported.write(args.output)
    model = _load(str(nn))  # the written model must check: import -> check -> build with no edits
    if not args.quiet:
        summary = model.summary()
        print(f"{nn}: {len(summary.layers)} layers, {summary.macs} MACs, {summary.weight_bytes} B weights "
              f"(weights in {npz})")
    return EXIT_OK


def _list_ops(source: str) -> int:
    """The ops a .tflite file uses and which nndsl imports; exit 1 when one is not supported."""
    from nndsl.importers.files import read_flatbuffer
    from nndsl.importers.tflite import format_op_list, list_ops

    if Path(source).suffix != ".tflite":
        return _user_error(source, "--list-ops reads a .tflite file (import a Keras model to see its layers checked)")
    uses = list_ops(read_flatbuffer(Path(source)), source)
    print(format_op_list(source, uses))
    return EXIT_ERROR if any(use.refused for use in uses) else EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from nndsl.compare import compare, format_comparison, plot_comparison
    from nndsl.importers.keras import load_keras

    model = _load(args.model, WarningPolicy.parse(args.warnings))
    if Path(args.source).suffix == ".tflite":
        return _user_error(args.source, "compare needs the float Keras model (.keras or .h5)")
    keras_model = load_keras(Path(args.source))
    try:
        x = _load_input(args.input)
        labels = _load_input(args.labels) if args.labels else None
    except InputError as error:
        return _user_error(args.labels if args.labels and args.input not in str(error) else args.input, str(error))
    if x.dtype.kind != "f" or x.shape[1:] != model.graph.input.type.shape:
        shape = ", ".join(map(str, model.graph.input.type.shape))
        return _user_error(args.input, f"expected real-valued inputs shaped [N, {shape}], got {x.dtype} "
                           f"{list(x.shape)}")
    result = compare(model, keras_model, x, labels)
    print(format_comparison(result))
    if args.plot:
        plot_comparison(result, Path(args.plot))
    return EXIT_OK


def cmd_to_fixed(args: argparse.Namespace) -> int:
    from nndsl.fixed import FixedOptions, convert
    from nndsl.types import MAX_ACTIVATION_BITS, QFormat

    source, output = Path(args.model), Path(args.output)
    if output.suffix != ".nn":
        return _user_error(args.output, "the output must be a .nn file (its .npz goes beside it)")
    input_format = None
    if args.input_format is not None:
        input_format = QFormat.parse(args.input_format)
        if input_format is None or not 2 <= input_format.bits <= MAX_ACTIVATION_BITS:
            return _user_error(args.input_format, "--input-format takes a format such as q7, q15 or q3.4")
    try:
        calibration = _load_input(args.calibrate)
    except InputError as error:
        return _user_error(args.calibrate, str(error))
    options = FixedOptions(args.activation_bits, args.weight_bits, args.headroom, input_format)
    conversion = convert(source, calibration, output, options, name=args.name)
    nn, *npz = conversion.write(output)
    _print_diagnostics(conversion.warnings)
    model = _load(str(nn))
    if not args.quiet:
        width = max(16, *(len(name) for name in conversion.formats))
        for name, fmt in conversion.formats.items():
            print(f"{name:<{width}} {fmt.name:<8} largest calibrated |value| {conversion.largest[name]:.4g}")
        weights = f" (weights in {npz[0]})" if npz else ""
        print(f"{nn}: {len(model.summary().layers)} layers in fixed point{weights}")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from nndsl.validate import Options, format_report, validate

    model = _load(args.model, WarningPolicy.parse(args.warnings))
    try:
        x = _load_input(args.input)
    except InputError as error:
        return _user_error(args.input, str(error))
    try:
        labels = _load_input(args.labels) if args.labels else None
    except InputError as error:
        return _user_error(args.labels, str(error))
    options = Options(reference=Path(args.reference) if args.reference else None, labels=labels,
                      sources=Path(args.sources) if args.sources else None,
                      work_dir=Path(args.work_dir) if args.work_dir else None, compiler=args.cc,
                      tolerance=args.tolerance, min_accuracy=args.min_accuracy)
    try:
        report = validate(model, x, options)
    except InputError as error:
        return _user_error(args.labels if args.labels and "labels" in str(error) else args.input, str(error))
    print(format_report(report))
    for failure in report.failures:
        _user_error(args.model, f"validation failed: {failure}")
    return EXIT_ERROR if report.failures else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nndsl", description="Compile small neural networks (.nn files) to dependency-free C.",
        epilog="example: nndsl build mlp.nn -o build/")
    parser.add_argument("--version", action="version", version=f"nndsl {__version__}")
    parser.add_argument("--cmake-dir", action=PrintShareDir, kind="cmake",
                        help="print the folder of nndsl's CMake package (nndsl_add_model) and exit")
    parser.add_argument("--make-dir", action=PrintShareDir, kind="make",
                        help="print the folder of nndsl's Make snippet (nndsl.mk) and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser("build", help="check a model and write <name>.c, <name>.h and a make depfile")
    build.add_argument("model", help="the .nn file")
    build.add_argument("-o", "--output", default=".", help="output folder (created if missing; default: .)")
    build.add_argument("--no-depfile", action="store_true", help="do not write <name>.d")
    build.add_argument("--prefix", default="", metavar="P",
                       help="begin every C name and the file names with P (P<name>_run, P<NAME>_INPUT_SIZE, "
                            "P<name>.c), so that models with the same network name link into one program")
    build.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    _add_warning_options(build)
    build.epilog = "example: nndsl build mlp.nn -o build/ --prefix left_ -Werror"
    build.set_defaults(handler=cmd_build)

    run = commands.add_parser("run", help="run a model on an input with the NumPy backend")
    run.add_argument("model", help="the .nn file")
    run.add_argument("--input", required=True,
                     help=".npy input in the model's input type (integer models take it quantised: int8, int16), "
                          "shaped as the input or with a leading batch axis")
    run.add_argument("--output", help="write the result here (.npy) instead of printing it")
    run.add_argument("--trace", action="store_true",
                     help="print every layer's shape, min/max/mean in real units and its saturated share")
    run.add_argument("--quantize", action="store_true",
                     help="the input holds real values: quantise them to the model's input type first "
                          "(round(x / scale) + zero_point, clamped, as TensorFlow Lite does)")
    run.add_argument("--real", action="store_true",
                     help="the output in real units (scale * (q - zero_point)) instead of integers")
    run.add_argument("--dump", metavar="DIR",
                     help="write every layer to DIR as <layer>.npy (as computed) and, for quantised layers, "
                          "<layer>.real.npy (real units)")
    run.epilog = ("example: nndsl run mlp.nn --input x_float.npy --quantize --real --trace --dump layers/")
    _add_warning_options(run)
    run.set_defaults(handler=cmd_run)

    check = commands.add_parser("check", help="check a model: syntax, names, shapes, types, budget")
    check.add_argument("model", help="the .nn file")
    check.add_argument("--ranges", action="store_true",
                       help="print every layer's proven intervals: accumulator, before and after the clamp")
    check.add_argument("--ir", action="store_true",
                       help="print the lowered program: each op with its source line, buffer, parameters and kernel")
    check.add_argument("--calibrate", metavar="DATA.npy",
                       help="representative inputs [N, ...] (real values, or quantised): each saturation warning "
                            "says whether they reach the clipped range, and how often")
    check.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    _add_warning_options(check)
    check.epilog = "example: nndsl check mlp.nn --ranges --calibrate x_calib.npy -Werror=saturation"
    check.set_defaults(handler=cmd_check)

    summarize = commands.add_parser("summarize", help="parameters, weight bytes, MACs, RAM, flash and time")
    summarize.add_argument("model", help="the .nn file")
    summarize.add_argument("--json", action="store_true", help="machine-readable output")
    _add_warning_options(summarize)
    summarize.epilog = "example: nndsl summarize mlp.nn --json -Wno-saturation"
    summarize.set_defaults(handler=cmd_summarize)
    importer = commands.add_parser("import", help="a Keras model or an int8 .tflite file to .nn + .npz")
    importer.add_argument("source", help="model.keras, model.h5, a SavedModel folder, or model.tflite")
    importer.add_argument("-o", "--output",
                          help="the .nn file to write (its .npz goes beside it; missing folders are created)")
    importer.add_argument("--list-ops", action="store_true",
                          help="only list the ops a .tflite file uses and whether nndsl supports each (exit 1 "
                               "when one is not)")
    importer.add_argument("--calibrate", metavar="DATA.npy",
                          help="representative inputs: quantise a Keras model to int8 with TensorFlow Lite")
    importer.add_argument("--int16", action="store_true",
                          help="with --calibrate: 16-bit activations, 8-bit weights (TensorFlow Lite's 16x8 scheme)")
    importer.add_argument("--name", help="the network's name (default: the output file's name)")
    importer.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary")
    importer.epilog = "example: nndsl import model.keras --calibrate x_calib.npy -o mlp/mlp.nn"
    importer.set_defaults(handler=cmd_import)

    fixed = commands.add_parser("to-fixed", help="an f32 .nn model to power-of-two fixed point (q7, q15, qM.N)")
    fixed.add_argument("model", help="the f32 .nn file")
    fixed.add_argument("--calibrate", metavar="DATA.npy", required=True,
                       help="representative real inputs [N, ...]: each layer's format holds their largest value")
    fixed.add_argument("-o", "--output", required=True, help="the .nn file to write (its .npz goes beside it)")
    fixed.add_argument("--activation-bits", type=int, default=16, help="bits of every computed tensor (8 to 16; "
                       "default 16)")
    fixed.add_argument("--weight-bits", type=int, default=8, choices=(8, 16), help="bits of the kernels (default 8)")
    fixed.add_argument("--headroom", type=int, default=1, help="bits above the largest calibrated value (default 1)")
    fixed.add_argument("--input-format", help="the input's format, e.g. q7 (default: from the calibration inputs)")
    fixed.add_argument("--name", help="the network's name (default: the output file's name)")
    fixed.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    fixed.epilog = "example: nndsl to-fixed mlp_f32.nn --calibrate x_calib.npy -o mlp_q.nn --activation-bits 16"
    fixed.set_defaults(handler=cmd_to_fixed)

    comparer = commands.add_parser("compare", help="an int8 .nn model against its float Keras source, per layer")
    comparer.add_argument("model", help="the imported .nn file")
    comparer.add_argument("source", help="the float Keras model it came from")
    comparer.add_argument("--input", required=True, help=".npy of real-valued inputs [N, ...]")
    comparer.add_argument("--labels", help=".npy of integer labels, for the accuracy difference")
    comparer.add_argument("--plot", help="also draw the per-layer error to this .png (needs matplotlib)")
    comparer.epilog = "example: nndsl compare mlp.nn model.keras --input x_test.npy --labels y_test.npy --plot err.png"
    _add_warning_options(comparer)
    comparer.set_defaults(handler=cmd_compare)
    _add_validate(commands)
    return parser


def _add_validate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    validator = commands.add_parser(
        "validate", help="compile the C on this host, run it on every input, compare with NumPy and a reference",
        description="Compile the generated C with the host's C compiler and run it on every input. The C must "
                    "equal the NumPy backend exactly, an integer network must equal TensorFlow Lite Micro exactly "
                    "(--reference model.tflite), and an f32 network must be within --tolerance of its reference. "
                    "On the first input where C and NumPy differ, a trace build names the first differing layer. "
                    "Exit status 0 only if everything agrees.",
        epilog="example: nndsl validate mlp.nn --input inputs.npy --reference model_int8.tflite --labels labels.npy")
    validator.add_argument("model", help="the .nn file")
    validator.add_argument("--input", required=True, metavar="X.npy",
                           help="inputs [N, ...]: quantised integers in the model's input type, or real values "
                                "(float), which are quantised as TensorFlow Lite does")
    validator.add_argument("--reference", metavar="MODEL",
                           help="model.tflite (run by tflite-micro: integer outputs must be equal) or model.keras / "
                                "model.h5 (float outputs: error figures)")
    validator.add_argument("--labels", metavar="Y.npy", help="integer class labels: report the accuracy")
    validator.add_argument("--min-accuracy", type=float, metavar="A", help="fail below this accuracy (with --labels)")
    validator.add_argument("--tolerance", type=float, metavar="T",
                           help="largest |C - reference| allowed, as a share of each output row's largest value "
                                f"(default {FLOAT_TOLERANCE:g} for f32 networks; none for quantised ones vs Keras)")
    validator.add_argument("--sources", metavar="DIR",
                           help="validate the C already in DIR (as nndsl build wrote it) instead of generating it")
    validator.add_argument("--work-dir", metavar="DIR", help="build here and keep it (default: a temporary folder)")
    validator.add_argument("--cc", help="the host C compiler (default: $CC, else cc, gcc or clang)")
    _add_warning_options(validator)
    validator.set_defaults(handler=cmd_validate)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
        sys.stdout.flush()
    except NNError as error:
        _print_diagnostics(error.diagnostics)
        return EXIT_ERROR
    except BrokenPipeError:
        return _quiet_after_broken_pipe()
    except KeyboardInterrupt:
        print("nndsl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:  # e.g. an output folder that cannot be written
        target = error.filename or "nndsl"
        return _user_error(str(target), error.strerror or str(error))
    return code


def _quiet_after_broken_pipe() -> int:
    """The reader of our output went away (``nndsl summarize m.nn | head -1``): stop without a word.

    Output files are written atomically before anything is printed, so nothing is
    left half-done. Standard output is pointed at /dev/null so that Python's own
    flush at exit does not fail a second time.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
