"""Coral's published Edge TPU latencies, with what each model costs: the data the Edge TPU latency
estimate is fitted to (compilers/edgetpu/performance.py). Every latency is cited to the page it was
read from; every cost either comes from a public model file here (../shared/edgetpu/reference-models,
Coral's own test data, recomputed from it by tests/test_performance.py) or is cited.

The latencies are all from a Coral USB Accelerator (USB 3.0) on a desktop CPU: the benchmark
table's column says so; the model pages' "Latency" column gives one figure per model whose footnote
was not in the stored copy read here, but where both list a model they agree with that column
(Inception v1 3.4 and 3.4 ms, Inception v4 85 and 84.7 ms, EfficientNet-EdgeTpu-S 5.1 and 5.0 ms).
Models with a published latency but no cited or computable cost (Inception, ResNet, VGG, SSD,
EfficientNet-EdgeTpu, U-Net, BodyPix) are left out: a feature without a basis would be a guess.
"""
import dataclasses
import typing

BENCHMARKS = ("Coral, Edge TPU performance benchmarks, Table 1, column 'Desktop CPU + USB Accelerator "
              "(USB 3.0) with Edge TPU' (https://coral.ai/docs/edgetpu/benchmarks/)")
CLASSIFICATION = ("Coral, Image classification models, column 'Latency' "
                  "(https://coral.ai/models/image-classification)")
POSE = "Coral, MoveNet pose estimation models, column 'Latency' (https://coral.ai/models/pose-estimation)"
SEGMENTATION = ("Coral, Semantic segmentation models, column 'Latency' "
                "(https://coral.ai/models/semantic-segmentation)")
SLIM_V1 = ("TensorFlow Models, research/slim/nets/mobilenet_v1.md: 'Million MACs' and 'Million Parameters' "
           "(https://github.com/tensorflow/models/blob/master/research/slim/nets/mobilenet_v1.md)")
SLIM_V2 = ("TensorFlow Models, research/slim/nets/mobilenet/README.md: 'MACs (M)' and 'Parameters (M)' "
           "(https://github.com/tensorflow/models/blob/master/research/slim/nets/mobilenet/README.md)")
COMPUTED = ("computed from the file by compilers.edgetpu.performance.features (the pre-flight's placement; "
            "tests/test_performance.py recomputes it)")
ALL_MAPPED = ("no CPU operators: every operator of a MobileNet classifier (conv, depthwise conv, add, "
              "average pool, reshape, softmax) is on the Edge TPU's supported list, as in Coral's compiled "
              "mobilenet_v1_0.25_128 here [inferred]; int8 weights are 1 byte per parameter")


@dataclasses.dataclass(frozen=True)
class PublishedLatency:
    """One published latency and the model's costs. ``tpu_macs``: multiply-accumulates of the
    operators that run on the Edge TPU; ``cpu_elements``: elements written by the operators that
    stay on the CPU; ``param_bytes``: the weights the TPU part holds. ``reference_file``: the model
    in ../shared/edgetpu/reference-models the costs were computed from (None where cited);
    ``note``: what a cited cost adds to its source, and on what basis."""
    model: str
    input_size: typing.Tuple[int, int, int]
    latency_ms: float
    latency_source: str
    tpu_macs: int
    cpu_elements: int
    param_bytes: int
    costs_source: str
    reference_file: typing.Optional[str] = None
    note: str = ""


PUBLISHED = (
    PublishedLatency("MobileNet v1 0.25", (128, 128, 3), 0.9, CLASSIFICATION,
                     13_570_304, 0, 478_812, COMPUTED, "mobilenet_v1_0.25_128_quant.tflite"),
    PublishedLatency("MobileNet v1 1.0", (224, 224, 3), 2.4, BENCHMARKS,
                     569_000_000, 0, 4_240_000, SLIM_V1, note=ALL_MAPPED),
    PublishedLatency("MobileNet v2 1.0", (224, 224, 3), 2.6, BENCHMARKS,
                     300_000_000, 0, 3_470_000, SLIM_V2, note=ALL_MAPPED),
    PublishedLatency("PoseNet MobileNet v1 0.75 (stride 16)", (353, 481, 3), 5.8, POSE,
                     1_246_214_352, 4, 1_279_740, COMPUTED,
                     "posenet_mobilenet_v1_075_353_481_16_quant_decoder.tflite"),
    PublishedLatency("MoveNet.SinglePose.Lightning", (192, 192, 3), 7.1, POSE,
                     270_549_504, 771_504, 2_374_553, COMPUTED, "movenet_single_pose_lightning_ptq.tflite"),
    PublishedLatency("MobileNet v2 DeepLab v3 (depth multiplier 0.5)", (513, 513, 3), 36.8, SEGMENTATION,
                     718_904_832, 7_229_376, 576_832, COMPUTED, "deeplabv3_mnv2_dm05_pascal_quant.tflite"),
)
