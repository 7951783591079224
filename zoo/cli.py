"""The `zoo` command: list and inspect models, render/inspect data, build and evaluate.

Heavy imports (TensorFlow, tfmot) happen inside the subcommands, so `zoo --help` is instant.
"""
import argparse
import json
import sys

from zoo import defaults
from zoo.errors import one_line_errors


def _table(rows, headers):
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip()
             for row in [headers, ["-" * w for w in widths], *rows]]
    return "\n".join(lines)


def _millions(value):
    return f"{value / 1e6:.2f}M"


def cmd_list(args):
    from zoo import registry
    from zoo.stats import model_facts
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

    from zoo import registry
    from zoo.stats import model_facts
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
    if target.endswith(".tflite"):
        from zoo.tflite import describe
        info = describe(target)
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


def cmd_data_render(args):
    from zoo import data
    stats = data.render_dataset(args.out, subjects=args.subjects or data.DEFAULT_RENDER["subjects"],
                                frames=args.frames or data.DEFAULT_RENDER["frames"], seed=args.seed)
    print(data.format_stats(stats))


def cmd_data_stats(args):
    from zoo import data
    print(data.format_stats(data.open_gazecapture(args.root).stats()))


def _builder_kwargs(args):
    kwargs = {}
    if args.weights is not None:
        kwargs["weights"] = args.weights
    if args.input_size is not None:
        kwargs["input_size"] = args.input_size
    return kwargs


def cmd_build(args):
    from zoo.build import build
    mode = "qat" if args.qat else "ptq" if args.ptq else "float"
    out = build(args.model, mode=mode, data=args.data, epochs=args.epochs, qat_epochs=args.qat_epochs,
                batch_size=args.batch_size, out=args.out, seed=args.seed, resume=args.resume,
                int8_output=args.int8_output, steps=args.steps, learning_rate=args.learning_rate,
                builder_kwargs=_builder_kwargs(args), command=["zoo"] + sys.argv[1:])
    manifest = json.loads((out / "manifest.json").read_text())
    print(f"[zoo build] wrote {out}")
    for kind, record in manifest["metrics"].items():
        print(f"  {kind:18s} {record['cm']:.3f} cm" +
              (f"  ({manifest['files'][kind]['bytes']:,} bytes)" if kind in manifest["files"] else ""))


def cmd_eval(args):
    from zoo.eval import evaluate_file
    result = evaluate_file(args.model_file, data=args.data, model=args.name, split=args.split)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for kind, record in result["metrics"].items():
        devices = "  ".join(f"{device} {record[key]:.3f} cm" for device, key in
                            (("phone", "cm_phone"), ("tablet", "cm_tablet")) if record.get(key) is not None)
        print(f"{kind:14s} {record['cm']:.3f} cm  {devices}  ({record.get('frames', '-')} frames)")


def _positive(value):
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def make_parser():
    parser = argparse.ArgumentParser(
        prog="zoo", description="Edge-vision model zoo: gaze models built, int8-quantized and "
        "compiled for the Coral Edge TPU (compilers/edgetpu.py) and the Sony IMX500 (compilers/imx500.py).")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser("list", help="the registered models with inputs, params, MACs, float size")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(run=cmd_list)

    p = commands.add_parser("info", help="inputs/outputs, quantization, op histogram of a model or .tflite")
    p.add_argument("model", metavar="NAME|FILE.tflite", help="a registered model name or a TFLite file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_info)

    p = commands.add_parser("data", help="GazeCapture-format data: render the offline dataset, print stats")
    data_commands = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    q = data_commands.add_parser("render", help="render a dataset in the exact GazeCapture layout")
    q.add_argument("--out", required=True, help="folder to write (must not exist)")
    q.add_argument("--subjects", type=_positive, default=None, help="number of subjects (default: as the default dataset)")
    q.add_argument("--frames", type=_positive, default=None, help="frames per recording (default: as the default dataset)")
    q.add_argument("--seed", type=int, default=0, help="random seed; same seed, same dataset")
    q.set_defaults(run=cmd_data_render)
    q = data_commands.add_parser("stats", help="recordings, frames and valid frames per split and device")
    q.add_argument("root", help="a GazeCapture root folder (real or rendered)")
    q.set_defaults(run=cmd_data_stats)

    p = commands.add_parser(
        "build", help="train, quantize (--qat/--ptq), export TFLite, evaluate, write manifest.json",
        description="Train a registered model on GazeCapture-format data, optionally fine-tune it "
        "with quantization-aware training (--qat) or quantize it post-training (--ptq), export the "
        "float .h5, float TFLite and fully int8 TFLite, evaluate each on the test split (the int8 "
        "file through LiteRT) and write manifest.json. Output appears in --out only when complete.")
    p.add_argument("model", metavar="NAME", help="registered model (see `zoo list`)")
    quant = p.add_mutually_exclusive_group()
    quant.add_argument("--qat", action="store_true", help="quantization-aware fine-tuning (tfmot), then int8")
    quant.add_argument("--ptq", action="store_true", help="post-training int8 quantization of the float model")
    p.add_argument("--data", help="GazeCapture root (default: the rendered dataset, made on first use)")
    p.add_argument("--epochs", type=_positive, default=defaults.EPOCHS,
                   help=f"float training epochs (default {defaults.EPOCHS})")
    p.add_argument("--qat-epochs", type=_positive, default=defaults.QAT_EPOCHS,
                   help=f"QAT fine-tuning epochs (default {defaults.QAT_EPOCHS})")
    p.add_argument("--batch-size", type=_positive, default=defaults.BATCH_SIZE,
                   help=f"batch size (default {defaults.BATCH_SIZE})")
    model_rates = ", ".join(f"{name} {rate:g}" for name, rate in defaults.MODEL_LEARNING_RATES.items())
    p.add_argument("--learning-rate", type=float,
                   help=f"Adam learning rate, cosine-decayed to 0 over the float epochs; QAT starts at "
                        f"{defaults.QAT_LEARNING_RATE_FRACTION:g} of it (default {defaults.LEARNING_RATE:g}; "
                        f"{model_rates})")
    p.add_argument("--out", help="output folder (default runs/NAME)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted build from its last epoch")
    p.add_argument("--int8-output", action="store_true", help="int8 output tensor (default float32)")
    p.add_argument("--steps", type=_positive, help="cap on batches per epoch (for smoke tests)")
    p.add_argument("--weights", help="local backbone weights file (tinytracker; nothing is downloaded)")
    p.add_argument("--input-size", type=_positive, help="input side in pixels (overrides the model's default)")
    p.set_defaults(run=cmd_build)

    p = commands.add_parser("eval", help="cm error of any .tflite/.h5/.keras of a registered model")
    p.add_argument("model_file", metavar="MODEL", help="model file (.tflite, .h5 or .keras)")
    p.add_argument("--data", help="GazeCapture root (default: the rendered dataset)")
    p.add_argument("--name", help="registered model the file is (default: from its manifest.json)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="split (default test)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_eval)
    return parser


@one_line_errors("zoo")
def main(argv=None):
    args = make_parser().parse_args(argv)
    args.run(args)
    return 0
