"""The `zoo` command: list and inspect models, render/inspect data, build and evaluate.

Heavy imports (TensorFlow, tfmot) happen inside the subcommands, so `zoo --help` is instant.
Arguments are checked before anything is written, and all but a model's name (the registry
imports TensorFlow) before TensorFlow is imported: numbers by their argparse types, paths by
cheap looks (a GazeCapture root by its folders, a weights file by its HDF5 signature). A bad one
is one line, `zoo: error: ...`, and exit status 2 (zoo.errors lists the exit statuses).
"""
import argparse
import dataclasses
import json
import math
import pathlib
import shlex

from zoo.train import defaults, distribute, startup
from zoo.artifacts import WriteFailed
from zoo.errors import ArgumentParser, Interrupted, UsageError, one_line_errors

MAX_SEED = 2**32 - 1  # numpy's and Keras' seeds are unsigned 32-bit
OVERWRITE_HELP = ("replace this command's earlier output in --out made from other inputs, or add to a folder "
                  "this project did not write (its files are kept); never a build, a package, another "
                  "command's output or a folder holding an input")
INPUT_SIZES = (32, 1024)  # pixels: MobileNetV3 (TinyTracker) takes no less than 32
MAX_BATCH_SIZE = 4096  # per replica: far beyond any batch of these models, short of an allocation failure


def _table(rows, headers):
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip()
             for row in [headers, ["-" * w for w in widths], *rows]]
    return "\n".join(lines)


def _millions(value):
    return f"{value / 1e6:.2f}M"


def cmd_list(args):
    from zoo.models import registry
    from zoo.models.facts import model_facts
    rows = []
    for name in registry.list_models():
        facts = model_facts(registry.create_model(name))
        rows.append({"name": name, "summary": registry.get_entry(name).summary, **facts})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(_table([[r["name"], " ".join(f"{i['name']}{tuple(i['shape'])}" for i in r["inputs"]),
                   f"{r['params']:,}", _millions(r["macs"]), f"{r['float_bytes'] / 2**20:.2f} MiB"]
                  for r in rows], ["name", "inputs", "params", "MACs", "float size"]))


def _describe_keras(name):
    from collections import Counter

    from zoo.models import registry
    from zoo.models.facts import model_facts
    entry = registry.get_entry(name)
    model = entry.build()
    facts = model_facts(model)
    facts["name"] = name
    facts["summary"] = entry.summary
    facts["builder_args"] = entry.builder_arguments()
    facts["recipes"] = entry.recipes
    facts["ops"] = dict(Counter(type(layer).__name__ for layer in model.layers))
    return facts


def cmd_info(args):
    target = args.model
    if pathlib.Path(target).suffix and not target.endswith(".tflite"):
        raise UsageError(f"{target}: zoo info reads .tflite files and registered model names "
                         "(see `zoo list`)")
    if target.endswith(".tflite"):
        from zoo.artifacts import read_model_card, to_json
        from zoo.tflite import describe
        info = describe(target)
        card = read_model_card(target)
        info["model_card"] = to_json(card) if card else None
        info["targets"] = _targets(target)
    else:
        info = _describe_keras(target)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return
    for key in ("name", "path", "summary"):
        if key in info:
            print(f"{key}: {info[key]}")
    if "bytes" in info:
        print(f"size: {info['bytes']:,} bytes")
    if "params" in info:
        print(f"params: {info['params']:,}  MACs: {_millions(info['macs'])}  "
              f"float size: {info['float_bytes']:,} bytes")
    for kind in ("inputs", "outputs"):
        print(f"{kind}:")
        for tensor in info[kind]:
            quant = ""
            if tensor.get("scale") is not None:
                quant = f"  scale={tensor['scale']:.6g} zero_point={tensor['zero_point']}"
            print(f"  {tensor['name']}: {tensor['dtype']} {list(tensor['shape'])}{quant}")
    print("ops:")
    for op, count in sorted(info["ops"].items(), key=lambda item: (-item[1], item[0])):
        print(f"  {op:32s} {count}")
    if "model_card" in info:
        print("model card (zoo.model_card metadata):" if info["model_card"] else
              "model card: none (not written by `zoo build`)")
        if info["model_card"]:
            print(json.dumps(info["model_card"], indent=2))
    if "targets" in info:
        _print_targets(info["targets"])


def _targets(tflite_path):
    """What each target of compilers.targets made of this file, from the report in its default
    output folder (the CLI is the application layer: it may read the target table)."""
    from compilers.report import performance_line
    from compilers.targets import compiled_outputs
    rows = []
    for target, folder, headline in compiled_outputs(tflite_path):
        row = {"target": target.name, "title": target.title, "folder": str(folder),
               "compiled": headline is not None}
        if headline is not None:
            row.update(status=headline.status, fits=headline.fits, ops_total=headline.ops_total,
                       ops_on_accelerator=headline.ops_on_accelerator,
                       performance=performance_line(headline.performance).strip())
        rows.append(row)
    return rows


def _print_targets(rows):
    print("targets (python compilers/TARGET.py MODEL.tflite):")
    for row in rows:
        if not row["compiled"]:
            print(f"  {row['target']:8s} not compiled (would write {row['folder']})")
            continue
        on = "?" if row["ops_on_accelerator"] is None else row["ops_on_accelerator"]
        print(f"  {row['target']:8s} {row['status']}, fits: {row['fits']}, {on} of {row['ops_total']} "
              f"operators on the accelerator; {row['performance']}")


def cmd_data_render(args):
    from zoo import data
    stats = data.render_dataset(args.out, subjects=args.subjects or data.DEFAULT_RENDER["subjects"],
                                frames=args.frames or data.DEFAULT_RENDER["frames"], seed=args.seed,
                                overwrite=args.overwrite)
    print(data.format_stats(stats))


def cmd_data_stats(args):
    from zoo import data
    index = data.open_gazecapture(args.root)
    print(data.format_stats((index if args.quick else index.decode_check()).stats()))


def _builder_kwargs(args):
    kwargs = {}
    if args.weights is not None:
        kwargs["weights"] = _check_weights(args.weights)
    if args.input_size is not None:
        kwargs["input_size"] = args.input_size
    return kwargs


def _check_weights(path):
    from zoo.inference.loader import check_signature
    return str(check_signature(path, ".h5", "--weights"))


def _check_data(root):
    """``root`` when it is a GazeCapture root by its folders (indexing it is the command's work)."""
    if root is not None:
        from zoo.data.gazecapture import check_root
        check_root(pathlib.Path(root).absolute())
    return root


def _check_build_flags(args):
    """Refuses a flag that the rest of the command line makes meaningless (it would be ignored)."""
    if args.qat_epochs is not None and not args.qat:
        raise UsageError("--qat-epochs sets the fine-tuning of --qat; add --qat or drop --qat-epochs")
    if args.int8_output and not (args.qat or args.ptq):
        raise UsageError("--int8-output makes the int8 model's output int8, and a float build makes none; "
                         "add --qat or --ptq, or drop --int8-output")
    if args.resume and args.overwrite:
        raise UsageError("--resume continues the interrupted build of --out, and --overwrite is for starting "
                         "one; drop one of them")


def cmd_build(args):
    _check_build_flags(args)
    kwargs = _builder_kwargs(args)
    _check_data(args.data)
    # --strategy, --cpu-replicas, --cluster-timeout and TF_CONFIG, before TensorFlow is imported
    distribution = distribute.check(args.strategy, args.cpu_replicas, args.cluster_timeout)
    if distribution.strategy == "multi_worker" and not startup.supervised():
        # the build runs in a child process, which this one ends where it cannot end itself
        return startup.supervise(args.argv, distribution.timeout_s, lambda: _how_to_continue(args))
    from zoo.train.build import BuildRequest, build
    mode = "qat" if args.qat else "ptq" if args.ptq else "float"
    request = BuildRequest(args.model, mode=mode, data=args.data, epochs=args.epochs,
                           qat_epochs=args.qat_epochs or defaults.QAT_EPOCHS, batch_size=args.batch_size,
                           out=args.out, seed=args.seed, resume=args.resume, int8_output=args.int8_output,
                           steps=args.steps, overwrite=args.overwrite, learning_rate=args.learning_rate,
                           builder_kwargs=kwargs, command=["zoo", *args.argv], strategy=args.strategy,
                           cpu_replicas=args.cpu_replicas, cluster_timeout=args.cluster_timeout)
    try:
        out = build(request)
    except KeyboardInterrupt:
        raise Interrupted(_how_to_continue(args)) from None
    from zoo.artifacts import read_build
    manifest = read_build(out)
    print(f"[zoo build] wrote {out}")
    for kind, record in manifest.metrics.items():
        print(f"  {kind:18s} {record.cm:.3f} cm" +
              (f"  ({manifest.files[kind].bytes:,} bytes)" if kind in manifest.files else ""))


def _how_to_continue(args):
    """After Ctrl-C: the command line that resumes the build when it left something to resume."""
    from zoo.train.resume import STATE_FILE
    out = pathlib.Path(args.out or pathlib.Path("runs") / args.model)
    if not (out.with_name(out.name + ".partial") / STATE_FILE).is_file():
        return "nothing was kept; run the command again"
    again = args.argv + ([] if args.resume else ["--resume"])
    where = "every task" if args.strategy == "multi_worker" else "it"
    return f"continue {where} with: zoo {shlex.join(again)}"


def cmd_eval(args):
    from zoo.inference.evaluate import evaluate_file
    result = evaluate_file(args.model_file, data=args.data, model=args.name, split=args.split)
    if args.json:
        metrics = {kind: dataclasses.asdict(record) for kind, record in result["metrics"].items()}
        print(json.dumps({**result, "metrics": metrics}, indent=2))
        return
    for kind, record in result["metrics"].items():
        devices = "  ".join(f"{device} {cm:.3f} cm" for device, cm in
                            (("phone", record.cm_phone), ("tablet", record.cm_tablet)) if cm is not None)
        print(f"{kind:14s} {record.cm:.3f} cm  {devices}  ({record.frames} frames)")


def _whole(minimum, maximum=None):
    """An argparse type: a whole number from ``minimum`` to ``maximum``."""
    def parse(text):
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {number}")
        if maximum is not None and number > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {number}")
        return number
    return parse


_positive = _whole(1)


def _seconds(text):
    """A number of seconds above 0, finite."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not (math.isfinite(seconds) and 0 < seconds <= distribute.MAX_CLUSTER_TIMEOUT_S):
        raise argparse.ArgumentTypeError(f"must be above 0 and at most {distribute.MAX_CLUSTER_TIMEOUT_S:g}, "
                                         f"got {text}")
    return seconds


def _learning_rate(text):
    """A positive, finite float: zoo.train.build takes 0 (and None) for "the model's default"."""
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not (math.isfinite(rate) and rate > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return rate


def make_parser():
    from compilers.targets import TARGETS  # the application layer reads the table of targets
    titles = "; ".join(f"{target.title} (compilers/{target.name}.py)" for target in TARGETS.values())
    parser = ArgumentParser(
        prog="zoo",
        description=f"Edge-vision model zoo: gaze models built, int8-quantized and compiled for: {titles}.")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error "
                        "(anywhere on the command line; ZOO_DEBUG=1 does the same)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser("list", help="the registered models with inputs, params, MACs, float size")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(run=cmd_list)

    p = commands.add_parser("info", help="inputs/outputs, quantization, op histogram of a model or .tflite")
    p.add_argument("model", metavar="NAME|FILE.tflite", help="a registered model name or a TFLite file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_info)
    _add_data_commands(commands)
    _add_build_command(commands)
    _add_eval_command(commands)

    from zoo.inference import predict as _predict  # `zoo predict`: all of it is in zoo/inference/predict.py
    _predict.add_parser(commands)
    return parser


def _add_data_commands(commands):
    p = commands.add_parser("data", help="GazeCapture-format data: render the offline dataset, print stats")
    data_commands = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    q = data_commands.add_parser("render", help="render a dataset in the exact GazeCapture layout")
    q.add_argument("--out", required=True, help="folder to write (must not exist, or be empty)")
    q.add_argument("--subjects", type=_positive, default=None,
                   help="number of subjects, 3 to 10,000 (default: as the default dataset)")
    q.add_argument("--frames", type=_positive, default=None,
                   help="frames per recording, up to 10,000 (default: as the default dataset)")
    q.add_argument("--seed", type=_whole(0, MAX_SEED), default=0, help="random seed; same seed, same dataset")
    q.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    q.set_defaults(run=cmd_data_render)
    q = data_commands.add_parser("stats", help="recordings, frames and valid frames per split and device")
    q.add_argument("root", help="a GazeCapture root folder (real or rendered)")
    q.add_argument("--quick", action="store_true", help="check each JPEG by its start and end markers "
                   "only, as indexing for training does, instead of decoding every valid frame")
    q.set_defaults(run=cmd_data_stats)


def _add_build_command(commands):
    p = commands.add_parser(
        "build", help="train, quantize (--qat/--ptq), export TFLite, evaluate, write manifest.json",
        description="Train a registered model on GazeCapture-format data, optionally fine-tune it "
        "with quantization-aware training (--qat) or quantize it post-training (--ptq), export the "
        "float .h5, float TFLite and fully int8 TFLite, evaluate each on the test split (the int8 "
        "file through LiteRT) and write manifest.json. Output appears in --out only when complete.")
    p.add_argument("model", metavar="NAME", help="registered model (see `zoo list`)")
    quant = p.add_mutually_exclusive_group()
    quant.add_argument("--qat", action="store_true", help="quantization-aware fine-tuning (tfmot), then int8")
    quant.add_argument("--ptq", action="store_true",
                       help="post-training int8 quantization of the float model")
    p.add_argument("--data", help="GazeCapture root (default: the rendered dataset, made on first use)")
    p.add_argument("--epochs", type=_positive, default=defaults.EPOCHS,
                   help=f"float training epochs (default {defaults.EPOCHS})")
    p.add_argument("--qat-epochs", type=_positive,
                   help=f"with --qat: QAT fine-tuning epochs (default {defaults.QAT_EPOCHS})")
    p.add_argument("--batch-size", type=_whole(1, MAX_BATCH_SIZE), default=defaults.BATCH_SIZE,
                   help=f"batch size per replica, 1 to {MAX_BATCH_SIZE} (default {defaults.BATCH_SIZE})")
    model_rates = ", ".join(f"{name} {rate:g}" for name, rate in defaults.MODEL_LEARNING_RATES.items())
    p.add_argument("--learning-rate", type=_learning_rate,
                   help=f"Adam learning rate, cosine-decayed to 0 over the float epochs; QAT starts at "
                        f"{defaults.QAT_LEARNING_RATE_FRACTION:g} of it (default {defaults.LEARNING_RATE:g}; "
                        f"{model_rates})")
    p.add_argument("--out", help="output folder (default runs/NAME)")
    p.add_argument("--seed", type=_whole(0, MAX_SEED), default=0, help="random seed (default 0)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted build from its last epoch")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.add_argument("--int8-output", action="store_true",
                   help="with --qat or --ptq: int8 output tensor (default float32)")
    p.add_argument("--steps", type=_positive, help="cap on batches per epoch (for smoke tests)")
    p.add_argument("--weights", help="local backbone weights file, .h5 (tinytracker; nothing is downloaded)")
    p.add_argument("--input-size", type=_whole(*INPUT_SIZES),
                   help=f"input side in pixels, {INPUT_SIZES[0]} to {INPUT_SIZES[1]} (default: the model's)")
    p.add_argument("--strategy", choices=distribute.STRATEGIES, default="default",
                   help="tf.distribute strategy of the float and QAT training: default (one device), "
                        "mirrored (every local GPU, or --cpu-replicas), multi_worker (the cluster in "
                        "TF_CONFIG; every worker runs the same command, the chief writes --out); "
                        "--batch-size is per replica")
    p.add_argument("--cpu-replicas", type=_whole(1, distribute.MAX_CPU_REPLICAS),
                   help="with --strategy mirrored: split the CPU into this many replicas (no GPU needed)")
    p.add_argument("--cluster-timeout", type=_seconds, metavar="SECONDS",
                   help="with --strategy multi_worker: how long a task waits for the other tasks of "
                        "TF_CONFIG's cluster to start, and then for the cluster to form (default "
                        f"{distribute.CLUSTER_TIMEOUT_S:g}); Ctrl-C ends the wait at any moment")
    p.set_defaults(run=cmd_build)


def _add_eval_command(commands):
    p = commands.add_parser("eval", help="cm error of any .tflite/.h5/.keras of a registered model")
    p.add_argument("model_file", metavar="MODEL", help="model file (.tflite, .h5 or .keras)")
    p.add_argument("--data", help="GazeCapture root (default: the rendered dataset)")
    p.add_argument("--name", help="registered model the file is (default: the model card in the "
                   "TFLite, else the manifest.json beside the file)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="split (default test)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_eval)


@one_line_errors("zoo", failures=(WriteFailed,))
def main(argv):
    parser = make_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "predict" and not any(arg.startswith("-") for arg in extra):
        args.inputs += extra  # INPUT files after an option: argparse stops taking positionals there
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.argv = list(argv)
    return args.run(args) or 0
