"""Where `zoo build` trains: on the default device, on every local device (``mirrored``) or in
several processes (``multi_worker``), through tf.distribute, the standard engine for scaling Keras
training out.

``check`` reads --strategy, --cpu-replicas, --cluster-timeout and TF_CONFIG before TensorFlow is
imported, so a bad value is one UsageError line and nothing is written; zoo.train.startup then has
every multi_worker task meet the others within --cluster-timeout, and ``start`` makes the
strategy, before any TensorFlow op runs (logical CPU devices can only be set up then).

multi_worker follows TensorFlow's conventions: TF_CONFIG names the cluster ("chief" and "worker"
tasks, a host:port each) and this process's task; the chief is the "chief" task, or worker 0 when
the cluster has none. Every worker runs the same command line. The collectives of
MultiWorkerMirroredStrategy must be called by every worker in the same order, so whatever decides
which collectives run (stages already done, the best loss so far) comes from the chief
(``Runtime.from_chief``), and a worker whose settings differ from the chief's is stopped at once
rather than left waiting.
"""
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import pathlib
import typing

from zoo.errors import UsageError

STRATEGIES = ("default", "mirrored", "multi_worker")
ROLES = ("chief", "worker")  # no parameter servers, no evaluator: every task trains
TF_CONFIG = "TF_CONFIG"
MAX_CPU_REPLICAS = 64
CLUSTER_TIMEOUT_S = 300.0  # default wait for the other tasks: long enough for a scheduler to start them
MAX_CLUSTER_TIMEOUT_S = 86_400.0
TF_CONFIG_EXAMPLE = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}\'')


@dataclasses.dataclass(frozen=True)
class Request:
    """The checked --strategy, --cpu-replicas and (multi_worker) TF_CONFIG of a build."""
    strategy: str = "default"
    cpu_replicas: typing.Optional[int] = None
    cluster: typing.Optional[dict] = None  # role -> ["host:port", ...]
    task: typing.Optional[tuple] = None  # (role, index) of this process
    timeout_s: float = CLUSTER_TIMEOUT_S  # multi_worker: how long a task waits for the others

    @property
    def is_chief(self):
        """The one process that writes the build (TensorFlow's convention for the chief)."""
        if self.cluster is None:
            return True
        role, index = self.task
        return role == "chief" or ("chief" not in self.cluster and index == 0)

    @property
    def workers(self):
        return sum(len(tasks) for tasks in self.cluster.values()) if self.cluster else 1

    @property
    def task_name(self):
        return f"{self.task[0]}{self.task[1]}" if self.task else "chief"

    def addresses(self):
        """{task name: "host:port"} of every task of the cluster."""
        return {f"{role}{index}": address for role, tasks in (self.cluster or {}).items()
                for index, address in enumerate(tasks)}

    def settings(self):
        """What a --resume must find unchanged: it sets the global batch. Not the addresses, which
        a restarted cluster may change."""
        return {"strategy": self.strategy, "cpu_replicas": self.cpu_replicas, "workers": self.workers}


def check(strategy="default", cpu_replicas=None, cluster_timeout=None):
    """The Request of these flags and of TF_CONFIG; one UsageError line for anything wrong."""
    if strategy not in STRATEGIES:
        raise UsageError(f"unknown --strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if cpu_replicas is not None:
        if strategy != "mirrored":
            raise UsageError("--cpu-replicas splits this machine's CPU into replicas for --strategy "
                             "mirrored; add --strategy mirrored or drop --cpu-replicas")
        if isinstance(cpu_replicas, bool) or not isinstance(cpu_replicas, int) or \
                not 1 <= cpu_replicas <= MAX_CPU_REPLICAS:
            raise UsageError(f"--cpu-replicas must be a whole number from 1 to {MAX_CPU_REPLICAS}, "
                             f"got {cpu_replicas!r}")
    if cluster_timeout is not None:
        if strategy != "multi_worker":
            raise UsageError("--cluster-timeout is how long a --strategy multi_worker task waits for the "
                             "others; add --strategy multi_worker or drop --cluster-timeout")
        if not (isinstance(cluster_timeout, (int, float)) and 0 < cluster_timeout <= MAX_CLUSTER_TIMEOUT_S):
            raise UsageError(f"--cluster-timeout must be a number of seconds above 0 and at most "
                             f"{MAX_CLUSTER_TIMEOUT_S:,.0f}, got {cluster_timeout!r}")
    text = os.environ.get(TF_CONFIG, "").strip()
    if strategy != "multi_worker":
        if text:
            raise UsageError("TF_CONFIG is set, but only --strategy multi_worker reads it (this build "
                             "would run alone on each task); add --strategy multi_worker or unset TF_CONFIG")
        return Request(strategy, cpu_replicas)
    if not text:
        raise UsageError(f"--strategy multi_worker needs TF_CONFIG naming the cluster and this task, "
                         f"e.g. {TF_CONFIG_EXAMPLE}")
    cluster, task = _parse_tf_config(text)
    return Request(strategy, None, cluster, task, float(cluster_timeout or CLUSTER_TIMEOUT_S))


def _parse_tf_config(text):
    """(cluster, (role, index)) of TF_CONFIG's JSON, every part checked."""
    try:
        config = json.loads(text)
    except ValueError as error:
        raise UsageError(f"TF_CONFIG is not JSON ({error}); give e.g. {TF_CONFIG_EXAMPLE}") from None
    except RecursionError:
        raise UsageError("TF_CONFIG is nested too deeply to be a cluster; give e.g. "
                         f"{TF_CONFIG_EXAMPLE}") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict) \
            or not isinstance(config.get("task"), dict):
        raise UsageError(f'TF_CONFIG needs a "cluster" and a "task" object, e.g. {TF_CONFIG_EXAMPLE}')
    cluster = config["cluster"]
    unknown = sorted(set(cluster) - set(ROLES))
    if unknown or not cluster:
        raise UsageError(f"TF_CONFIG's cluster has {', '.join(unknown) or 'no tasks'}: zoo build runs "
                         "chief and worker tasks only (no parameter servers, no evaluator): list every task "
                         "as a chief or a worker")
    addresses = []
    for role, tasks in cluster.items():
        if not isinstance(tasks, list) or not tasks or not all(_is_address(task) for task in tasks):
            raise UsageError(f'TF_CONFIG\'s cluster.{role} must be a list of "host:port" addresses, '
                             f'got {json.dumps(tasks)}; give e.g. ["host1:12345"]')
        addresses += tasks
    if len(cluster.get("chief", [])) > 1:
        raise UsageError("TF_CONFIG's cluster names more than one chief; a cluster has at most one: make the "
                         "others worker tasks")
    if len(set(addresses)) < len(addresses):
        raise UsageError("TF_CONFIG's cluster names one address twice; give each task its own host:port")
    role, index = config["task"].get("type"), config["task"].get("index")
    if role not in cluster:
        raise UsageError(f"TF_CONFIG's task.type {json.dumps(role)} is not a role of its cluster; give one "
                         f"of {', '.join(cluster)}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[role]):
        raise UsageError(f"TF_CONFIG's task.index must be a whole number from 0 to "
                         f"{len(cluster[role]) - 1} (its cluster has {len(cluster[role])} {role} tasks), "
                         f"got {json.dumps(index)}")
    return cluster, (role, index)


def _is_address(text):
    host, _, port = text.rpartition(":") if isinstance(text, str) else ("", "", "")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


class Runtime:
    """The strategy a build runs under, with what the build asks of it. ``strategy`` is None for
    the default: no scope is entered at all, so that path stays the one of a build without
    tf.distribute, number for number."""

    def __init__(self, request, strategy):
        self.request, self.strategy = request, strategy
        self.replicas = strategy.num_replicas_in_sync if strategy else 1

    @property
    def is_chief(self):
        return self.request.is_chief

    @property
    def multi_worker(self):
        return self.request.strategy == "multi_worker"

    def scope(self):
        return self.strategy.scope() if self.strategy else contextlib.nullcontext()

    def global_batch(self, batch_size):
        """Keras splits each batch of the dataset over the replicas: ``batch_size`` per replica."""
        return batch_size * self.replicas

    def shard(self, dataset):
        """``dataset`` with DATA auto-sharding on multi_worker (BUILD_NOTES, "Distributed training"):
        every worker builds the same shuffled, augmented stream from the same seed and keeps its
        share of every global batch."""
        if not self.multi_worker:
            return dataset
        import tensorflow as tf
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return dataset.with_options(options)

    def where(self, one_process=False):
        """What runs where, for the progress lines ('' on the default strategy). ``one_process``:
        a stage that is not distributed (conversion, evaluation), run by the chief alone."""
        if not self.strategy:
            return ""
        if one_process:
            return " (chief only)" if self.multi_worker else " (not distributed)"
        return f" on {self.replicas} replicas ({self.request.strategy})"

    def describe(self):
        local = ", ".join(device.rpartition("device:")[2] for device in self.strategy.extended.worker_devices)
        if not self.multi_worker:
            return f"strategy mirrored: {self.replicas} replicas on {local}"
        return (f"strategy multi_worker: {self.request.task_name} of {self.request.workers} tasks"
                f"{' (chief)' if self.is_chief else ''}, {self.replicas} replicas in all, here {local}")

    def from_chief(self, values):
        """``values`` (numbers) as the chief has them, on every worker; also a barrier: it returns
        when every worker has called it. Global replica 0 is the chief's first."""
        if not self.multi_worker:
            return list(values)
        import tensorflow as tf

        def contribution():
            first = tf.equal(tf.distribute.get_replica_context().replica_id_in_sync_group, 0)
            return tf.where(first, tf.constant(values, tf.float64), tf.zeros(len(values), tf.float64))
        return self._sum(contribution).tolist()

    def count(self, flag):
        """How many workers (times their local replicas) pass a true ``flag``; a barrier too."""
        if not self.multi_worker:
            return int(bool(flag))
        import tensorflow as tf
        return int(self._sum(lambda: tf.constant(float(bool(flag)), tf.float64)))

    def join(self, settings, shared, values, stages):
        """Checks, on every worker at once (so that none is left waiting in a collective for one
        that stopped), that a --resume runs on as many replicas as the interrupted build (they
        set the global batch) and, on multi_worker, that this worker's ``settings`` are the
        chief's and that it sees the chief's folder ``shared`` (--out must be on a file system
        every worker shares). Then makes a worker's ``values`` (zoo.train.build's state: stages done,
        best losses) the chief's for ``stages``: the collectives of a stage run only if every
        worker calls them, in the same order."""
        best = values.setdefault("best_val_loss", {})
        mine = [_fingerprint(settings), values.get("replicas", self.replicas),
                *(float(stage in values["done"]) for stage in stages),
                *(best.get(s, math.inf) for s in stages)]
        chief = self.from_chief(mine)
        problem = (
            "this worker's zoo build settings differ from the chief's; start every task with the same "
            "command line (only TF_CONFIG's task differs)" if chief[0] != mine[0] else
            f"--resume on {self.replicas} replicas, the interrupted build ran on {int(chief[1])}; resume "
            "on the same devices, or start again without --resume" if chief[1] != self.replicas else
            f"the chief's folder {shared} is not visible here; --out must be on a file system every "
            "worker shares" if not pathlib.Path(shared).is_dir() else None)
        if self.count(problem is not None):
            raise UsageError(problem or "another worker of this build stopped (see its message); fix it "
                             "and start every task again")
        values["replicas"] = self.replicas
        count = len(stages)
        for stage, done, loss in zip(stages, chief[2:2 + count], chief[2 + count:]):
            if done:
                values["done"].setdefault(stage, {})
            if loss < math.inf:
                best[stage] = loss

    def barrier(self):
        """Returns when every worker got here (e.g. the chief's file written before anyone reads it)."""
        self.count(False)

    def _sum(self, per_replica):
        import tensorflow as tf
        summed = self.strategy.reduce(tf.distribute.ReduceOp.SUM, self.strategy.run(per_replica), axis=None)
        return summed.numpy()


def _fingerprint(settings):
    """48 bits of the settings' hash: exact in the float64 the workers exchange."""
    return float(int(hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12], 16))


def lost_peer(error):
    """A one-line reason when ``error`` is how a collective ends on losing a task of the cluster
    (killed, preempted, its machine gone; TensorFlow aborts the collectives of every other
    task), else None."""
    import tensorflow as tf
    lost = (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError,
            tf.errors.DeadlineExceededError)
    if not isinstance(error, lost):
        return None
    return f"{type(error).__name__}: {error.message.splitlines()[0][-200:]}"


def start(request):
    """The Runtime of ``request``; call it before any TensorFlow op."""
    if request.strategy == "default":
        return Runtime(request, None)
    import tensorflow as tf
    if request.strategy == "multi_worker":  # reads TF_CONFIG, checked by ``check``
        return Runtime(request, tf.distribute.MultiWorkerMirroredStrategy())
    devices = None
    if request.cpu_replicas:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * request.cpu_replicas)
        except RuntimeError:
            raise UsageError("--cpu-replicas needs a process in which TensorFlow has run nothing yet; "
                             "run zoo build in a fresh process") from None
        devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    return Runtime(request, tf.distribute.MirroredStrategy(devices))
