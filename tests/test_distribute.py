"""`zoo build --strategy` (issue #15): TF_CONFIG and flag checks, a mirrored build on CPU replicas,
a two-worker build on localhost, and a worker killed mid-epoch resumed with --resume. Start-up
with a deadline (issue #23, zoo.train.startup): a peer that never comes, a port taken, TensorFlow's own
wait cut at --cluster-timeout, Ctrl-C within 5 s; 127.0.0.1 ports only, every wait bounded."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, read_manifest, run_zoo
from zoo.train import distribute, startup
from zoo.train.build import RESUMABLE_LINE
from zoo.errors import UsageError

TINY = ["--input-size", 32, "--steps", 2, "--batch-size", 4]


def _cluster(workers):
    """{"worker": [localhost:PORT, ...]} on ports free now (bound, read, released)."""
    sockets = [socket.socket() for _ in range(workers)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return {"worker": [f"localhost:{port}" for port in ports]}


def _start_workers(cluster, args, last_worker_args=()):
    """One `zoo build ... --strategy multi_worker` per task of ``cluster``, worker 0 (the chief)
    first; ``last_worker_args`` are added to the last one's command line."""
    children = []
    for index in range(len(cluster["worker"])):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        extra = last_worker_args if index == len(cluster["worker"]) - 1 else ()
        children.append(subprocess.Popen(
            [sys.executable, "-m", "zoo", "build", *map(str, [*args, *extra]), "--strategy", "multi_worker"],
            cwd=REPO, env={**os.environ, "TF_CONFIG": config}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    return children


def _finish(children, timeout=300):
    """(exit status, output) of each child, killing them all if one outlives ``timeout``."""
    try:
        outputs = [child.communicate(timeout=timeout)[0] for child in children]
    except subprocess.TimeoutExpired:
        for child in children:
            child.kill()
        raise
    return [(child.returncode, output) for child, output in zip(children, outputs)]


def _assert_only_the_chief_wrote(out):
    assert sorted(path.name for path in out.parent.iterdir()) == [out.name]
    assert not list(out.glob("**/workertemp_*"))


@pytest.mark.parametrize("strategy, replicas, tf_config, message", [
    ("nosuch", None, None, "unknown --strategy"),
    ("default", 2, None, "--cpu-replicas splits this machine's CPU"),
    ("mirrored", 0, None, "--cpu-replicas must be a whole number from 1"),
    ("default", None, '{"cluster": {}}', "only --strategy multi_worker reads it"),
    ("multi_worker", None, None, "needs TF_CONFIG"),
    ("multi_worker", None, "{cluster", "TF_CONFIG is not JSON"),
    ("multi_worker", None, '{"cluster": {"worker": ["a:1"]}}', 'needs a "cluster" and a "task"'),
    ("multi_worker", None, '{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
     "no parameter servers"),
    ("multi_worker", None, '{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}',
     '"host:port" addresses'),
    ("multi_worker", None, '{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}',
     "one address twice"),
    ("multi_worker", None, '{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
     "is not a role of its cluster"),
    ("multi_worker", None, '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
     "task.index must be a whole number from 0 to 0"),
    ("multi_worker", None, "[" * 50_000 + "]" * 50_000, "TF_CONFIG is nested too deeply"),
])
def test_bad_strategy_settings_are_one_usage_error(monkeypatch, strategy, replicas, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(UsageError, match=message.replace("(", r"\(")) as error:
        distribute.check(strategy, replicas)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("strategy, timeout, message", [
    ("default", 5, "--cluster-timeout is how long a --strategy multi_worker task waits"),
    ("multi_worker", 0, "--cluster-timeout must be a number of seconds above 0"),
    ("multi_worker", float("nan"), "--cluster-timeout must be a number of seconds above 0"),
    ("multi_worker", float("inf"), "--cluster-timeout must be a number of seconds above 0"),
])
def test_a_bad_cluster_timeout_is_one_usage_error(monkeypatch, strategy, timeout, message):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    if strategy != "multi_worker":
        monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(UsageError, match=message):
        distribute.check(strategy, None, timeout)


def _request(monkeypatch, cluster, index, timeout):
    config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    return distribute.check("multi_worker", None, timeout)


def _local_cluster(workers):
    """{"worker": [127.0.0.1:PORT, ...]} on ports free now."""
    return {"worker": [address.replace("localhost", "127.0.0.1") for address in _cluster(workers)["worker"]]}


@pytest.mark.parametrize("index, missing", [(0, "worker1"), (1, "worker0")])
def test_a_task_whose_peer_never_comes_gives_up_at_its_deadline(monkeypatch, index, missing):
    """The chief with the worker's port closed, and a worker with the chief's: one line naming the
    task it could not reach, after --cluster-timeout and not much later."""
    cluster = _local_cluster(2)
    request = _request(monkeypatch, cluster, index, 1.5)
    started = time.monotonic()
    with pytest.raises(UsageError, match=f"could not reach {missing} \\({cluster['worker'][1 - index]}\\) "
                       r"within 1.5 s \(--cluster-timeout\)") as error:
        startup.Startup(request).meet(say=lambda line: None)
    assert 1.5 <= time.monotonic() - started < 4 and "\n" not in str(error.value)


def test_a_taken_port_is_one_line_naming_the_address(monkeypatch):
    cluster = _local_cluster(2)
    request = _request(monkeypatch, cluster, 0, 30)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(cluster["worker"][0].rpartition(":")[2])))
        taken.listen(1)
        started = time.monotonic()
        address = cluster["worker"][0]
        with pytest.raises(UsageError, match=f"gives this task \\(worker0\\) {address}, and port "
                           r"\d+ is taken here \(Address already in use\); stop what listens there"):
            startup.Startup(request).meet(say=lambda line: None)
    assert time.monotonic() - started < 1  # at once, not after the deadline


def test_every_task_meets_the_others_whichever_starts_first(monkeypatch):
    import threading
    cluster = _local_cluster(3)
    requests = [_request(monkeypatch, cluster, index, 20) for index in range(3)]
    errors = []

    def meet(request):
        phase = startup.Startup(request)
        try:
            phase.meet(say=lambda line: None)
        except UsageError as error:
            errors.append(error)
        time.sleep(2)  # holding the port as TensorFlow would, until the last one has met the others
        phase.close()
    threads = [threading.Thread(target=meet, args=(request,)) for request in requests]
    for thread in threads:
        thread.start()
        time.sleep(0.5)  # one after the other, as a scheduler starts them
    for thread in threads:
        thread.join(30)
    assert not errors and not any(thread.is_alive() for thread in threads)


def _fake_peer(address):
    """A socket listening at ``address`` that is not a TensorFlow task: every task answers, and
    TensorFlow's own start-up then waits for it forever."""
    peer = socket.socket()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    peer.bind(("127.0.0.1", int(address.rpartition(":")[2])))
    peer.listen(16)
    return peer


def _start_chief(cluster, args):
    config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}})
    command = [sys.executable, "-m", "zoo", "build", *map(str, args), "--strategy", "multi_worker"]
    return subprocess.Popen(command,
                            cwd=REPO, env={**os.environ, "TF_CONFIG": config}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_line(child, text, timeout=240):
    """Reads the child's stdout until a line holding ``text``; returns what it read."""
    deadline, said = time.monotonic() + timeout, []
    for line in child.stdout:
        said.append(line)
        if text in line:
            return "".join(said)
        assert time.monotonic() < deadline, f"no line with {text!r} within {timeout} s"
    raise AssertionError(f"the child ended without a line holding {text!r}: "
                         f"{(child.stderr.read() if child.stderr else ''.join(said))[-3000:]}")


def test_tensorflows_own_wait_is_cut_at_the_deadline_and_leaves_nothing(tiny_data, tmp_path):
    cluster = _local_cluster(2)
    out = tmp_path / "run"
    with _fake_peer(cluster["worker"][1]):
        chief = _start_chief(cluster, ["tinytracker_s", "--data", tiny_data, "--out", out, *TINY,
                                       "--cluster-timeout", 5])
        _wait_for_line(chief, "starting the cluster")
        started = time.monotonic()
        _, err = chief.communicate(timeout=60)
    assert chief.returncode == 2 and 5 <= time.monotonic() - started < 10, err
    assert err.splitlines() == ["zoo: error: the cluster's tasks answered, but TensorFlow's start-up did not "
                                "complete within 5 s (--cluster-timeout); start every task again"]
    assert not list(tmp_path.iterdir())  # no run.partial


def test_ctrl_c_ends_a_task_blocked_in_tensorflow_within_5_s(tiny_data, tmp_path):
    cluster = _local_cluster(2)
    out = tmp_path / "run"
    with _fake_peer(cluster["worker"][1]):
        chief = _start_chief(cluster, ["tinytracker_s", "--data", tiny_data, "--out", out, *TINY])
        _wait_for_line(chief, "starting the cluster")
        time.sleep(2)  # inside TensorFlow's start-up, which waits for the peer with no limit of its own
        chief.send_signal(signal.SIGINT)
        started = time.monotonic()
        _, err = chief.communicate(timeout=30)
    assert chief.returncode == 130 and time.monotonic() - started < 5, err
    assert err.splitlines() == ["zoo: interrupted; nothing was kept; run the command again"]
    assert not list(tmp_path.iterdir())


def test_chief_is_the_chief_task_or_worker_0(monkeypatch):
    def request(cluster, role, index):
        config = {"cluster": cluster, "task": {"type": role, "index": index}}
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
        return distribute.check("multi_worker")
    workers = {"worker": ["a:1", "b:1"]}
    assert request(workers, "worker", 0).is_chief and not request(workers, "worker", 1).is_chief
    with_chief = {"chief": ["c:1"], **workers}
    assert request(with_chief, "chief", 0).is_chief and not request(with_chief, "worker", 0).is_chief
    assert request(with_chief, "worker", 1).workers == 3
    assert request(with_chief, "worker", 1).task_name == "worker1"


REFUSED_EARLY = """
import sys
from zoo.cli import main
status = main(["build", "tinytracker_s", "--strategy", "multi_worker", "--out", sys.argv[1]])
print(status, "tensorflow" in sys.modules)
"""


def test_a_bad_strategy_is_refused_before_tensorflow_and_writes_nothing(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    result = subprocess.run([sys.executable, "-c", REFUSED_EARLY, str(tmp_path / "x")], capture_output=True,
                            text=True, cwd=REPO, env=env, timeout=120)
    assert result.stdout.split() == ["2", "False"], result.stderr
    assert "needs TF_CONFIG" in result.stderr and result.stderr.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_mirrored_build_on_cpu_replicas(tiny_data, tmp_path):
    """QAT under MirroredStrategy on 2 logical CPU devices: global batch 2 x 4, a valid int8 model."""
    from ai_edge_litert.interpreter import Interpreter
    out = tmp_path / "mirrored"
    result = run_zoo("build", "tinytracker_s", "--qat", "--data", tiny_data, "--out", out, "--epochs", 1,
                     "--qat-epochs", 1, *TINY, "--strategy", "mirrored", "--cpu-replicas", 2)
    described = "strategy mirrored: 2 replicas on CPU:0, CPU:1; global batch 8 = 4 per replica x 2"
    assert described in result.stdout
    assert "quantization-aware fine-tuning for 1 epochs on 2 replicas (mirrored)" in result.stdout
    training = read_manifest(out).training
    assert (training.strategy, training.replicas, training.batch_size, training.global_batch_size) == \
        ("mirrored", 2, 4, 8)
    interpreter = Interpreter(model_path=str(out / read_manifest(out).files["int8_tflite"].path))
    interpreter.allocate_tensors()
    (details,) = interpreter.get_input_details()
    assert details["dtype"] == np.int8
    interpreter.set_tensor(details["index"], np.zeros(details["shape"], np.int8))
    interpreter.invoke()
    assert np.all(np.isfinite(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])))


def test_two_workers_build_and_only_the_chief_writes(tiny_data, tmp_path):
    from zoo.inference.evaluate import evaluate_file
    out = tmp_path / "run"
    args = ["tinytracker_s", "--data", tiny_data, "--out", out, "--epochs", 1, *TINY]
    (chief_status, chief), (worker_status, worker) = _finish(_start_workers(_cluster(2), args))
    assert chief_status == 0 and worker_status == 0, chief[-3000:] + worker[-3000:]
    assert "worker0 of 2 tasks (chief), 2 replicas in all" in chief and "worker1 of 2 tasks, " in worker
    assert "converting to float TFLite (chief only)" in chief and "converting" not in worker
    _assert_only_the_chief_wrote(out)
    manifest = read_manifest(out)
    assert (manifest.training.strategy, manifest.training.replicas, manifest.training.global_batch_size) == \
        ("multi_worker", 2, 8)
    result = evaluate_file(out / manifest.files["float_tflite"].path, data=tiny_data)
    assert result["metrics"]["model"].cm == pytest.approx(manifest.metrics["float_tflite"].cm)


def test_a_worker_killed_mid_epoch_resumes_from_the_last_epoch(tiny_data, tmp_path):
    """Worker 1 is killed once the chief says the first epoch's backup is written; the chief stops
    by itself (its collectives abort) and says to resume; both restart with --resume, on new ports,
    after it."""
    out = tmp_path / "run"
    args = ["tinytracker_s", "--data", tiny_data, "--out", out, "--epochs", 8, *TINY]
    chief, worker = _start_workers(_cluster(2), args)
    _wait_for_line(chief, f"{RESUMABLE_LINE} train epoch 1/8")
    worker.send_signal(signal.SIGKILL)
    (status, output), _ = _finish([chief, worker], timeout=120)
    assert status == 130 and "zoo: interrupted; continue every task with: zoo build" in output, output[-3000:]
    assert output.rstrip().endswith("--resume")
    assert not out.exists()
    results = _finish(_start_workers(_cluster(2), [*args, "--resume"]))
    assert [status for status, _ in results] == [0, 0], results[0][1][-3000:] + results[1][1][-3000:]
    assert "Epoch 1/8" not in results[0][1] and "Epoch 8/8" in results[0][1]  # resumed after epoch 1
    _assert_only_the_chief_wrote(out)
    assert set(read_manifest(out).files) == {"float_h5", "float_tflite"}


def test_a_worker_with_other_settings_stops_every_worker(tiny_data, tmp_path):
    """Checked right after the workers meet, before any training: none is left waiting."""
    out = tmp_path / "run"
    args = ["tinytracker_s", "--data", tiny_data, "--out", out, "--epochs", 1, *TINY]
    (chief_status, chief), (worker_status, worker) = _finish(
        _start_workers(_cluster(2), args, ["--seed", 1]), timeout=120)
    assert chief_status == worker_status == 2, chief[-3000:] + worker[-3000:]
    assert chief.splitlines()[-1] == ("zoo: error: another worker of this build stopped (see its message); "
                                      "fix it and start every task again")
    assert "settings differ from the chief's" in worker.splitlines()[-1]
    assert "training" not in chief + worker and not out.exists()
