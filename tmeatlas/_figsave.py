"""Save figures in a second process while the first draws the next figure.

Laying out a report figure and saving it as PNG and as PDF are three passes over its artists, one
after the other, on one core. :class:`FigureSaver` sends each figure (pickled) to a worker process
(this file run on its own by ``python``): while the worker keeps up (at most :data:`MAX_BACKLOG` jobs
behind) before its layout, and the worker lays it out and renders every format; when the worker is
behind, this process lays the figure out and renders the PNG and the worker the PDF. A machine with
two cores then works on figures in both processes at once. The worker handles its jobs in order (a
copy of a file follows the job that writes it) and records each job's outcome in a results file,
after a first line saying it is ready (its imports done): until then, and once it has stopped,
nothing is sent to it. :meth:`FigureSaver.close` waits for it and returns the paths it could not
write with the reason. Without a usable worker (one core, ``background=False``, a worker that cannot
start, has not started yet or has stopped, a figure that cannot be pickled) the same calls save in
this process, as :func:`matplotlib.figure.Figure.savefig` would.

This module imports only the standard library and matplotlib: the worker loads this file alone,
not the package.
"""

from __future__ import annotations

import json
import os
import pickle
import queue
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

#: frames of pickled figures waiting for the worker (bounds the memory they hold)
QUEUE_FRAMES = 8
#: the worker also renders a figure's PNG when it has at most this many unfinished jobs
MAX_BACKLOG = 3
#: seconds :meth:`FigureSaver.close` waits for the worker, plus this much per job sent
WAIT_S, WAIT_PER_JOB_S = 120.0, 30.0
#: rcParams that are not the worker's business (its backend is Agg)
_RC_SKIP = ("backend", "backend_fallback", "interactive")
_HEADER = struct.Struct("<Q")


def worker_available() -> bool:
    """Whether a second process would run on another core (more than one usable CPU)."""
    try:
        return len(os.sched_getaffinity(0)) > 1
    except AttributeError:  # not on Linux
        return (os.cpu_count() or 1) > 1


class FigureSaver:
    """Save figures in a worker process (``background=True``) or here; see the module's text.

    ``options``: keyword arguments of ``savefig`` per format (e.g. the PNG's ``dpi``);
    ``measure_dpi``: the resolution at which the worker lays out a figure sent before its layout
    (:func:`frozen_tight_bbox`, as the ``measure`` of :meth:`save` does here). Use as a
    context manager; the figure may be closed as soon as :meth:`save` returns. After the block,
    :attr:`failed` holds ``{path: reason}`` of the files the worker could not write.
    """

    def __init__(self, *, background: bool = True, options: dict[str, dict] | None = None,
                 measure_dpi: float = 100.0) -> None:  # fmt: skip
        self._options = options or {}
        self._measure_dpi = float(measure_dpi)
        self._proc: subprocess.Popen | None = None
        self._jobs: list[str] = []
        self._sent = 0
        self._done = 0
        self._ready = False
        #: the worker's peak resident memory (GiB; Linux), known after :meth:`close` when it finished
        self.worker_peak_rss_gib: float | None = None
        self._log: Any = None
        self._failed: dict[str, str] = {}
        self._frames: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self._feeder: threading.Thread | None = None
        self._results = ""
        if background and worker_available():
            self._start()

    # -- main process -----------------------------------------------------------------------
    def _start(self) -> None:
        import matplotlib as mpl

        fd, self._results = tempfile.mkstemp(prefix="tmeatlas_figures_", suffix=".jsonl")
        os.close(fd)
        env = {**os.environ, "MPLBACKEND": "Agg"}
        try:
            self._proc = subprocess.Popen([sys.executable, "-c", _WORKER_CODE, __file__, self._results],
                                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, env=env)  # fmt: skip
        except OSError:
            self._proc = None
            Path(self._results).unlink(missing_ok=True)
            return
        self._log = open(self._results, encoding="utf-8")  # noqa: SIM115 (read as the worker appends)
        rc = {k: v for k, v in mpl.rcParams.items() if k not in _RC_SKIP}
        self._frames.put(pickle.dumps((rc, self._options, self._measure_dpi)))
        self._feeder = threading.Thread(target=self._feed, name="tmeatlas-figure-feeder", daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        """Write the queued frames to the worker (the pipe's writes release the GIL); ``None`` ends."""
        pipe = self._proc.stdin
        broken = False
        while True:
            frame = self._frames.get()
            if frame is None:
                break
            if broken:
                continue
            try:
                pipe.write(_HEADER.pack(len(frame)))
                pipe.write(frame)
            except (BrokenPipeError, OSError):
                broken = True  # the worker stopped: close() reports its unwritten jobs
        with suppress(OSError):
            pipe.close()

    def _backlog(self) -> int:
        """Jobs sent to the worker and not finished yet (reads the worker's new result lines)."""
        for line in self._log.readlines():
            if line.startswith('{"ready"'):
                self._ready = True
            else:
                self._done += 1
        return self._sent - self._done

    def _usable(self) -> bool:
        """Whether jobs can go to the worker: it has started (imports done) and not stopped."""
        if (
            self._proc is None
            or self._feeder is None
            or not self._feeder.is_alive()
            or self._proc.poll() is not None
        ):
            return False
        if not self._ready:
            self._backlog()
        return self._ready

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Wait until the worker has started (at most ``timeout`` seconds); whether it is usable."""
        end = time.perf_counter() + timeout
        while not self._usable() and self._proc is not None and self._proc.poll() is None:
            if time.perf_counter() > end:
                break
            time.sleep(0.02)
        return self._usable()

    def _send(self, kind: str, paths: dict[str, str], payload: Any) -> bool:
        """Queue a job for the worker; ``False`` when it is not usable or the job cannot be pickled."""
        if not self._usable():
            return False
        try:
            frame = pickle.dumps((kind, paths, pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)))
        except Exception:  # an artist that cannot be pickled: this process saves it
            return False
        self._frames.put(frame)
        self._jobs.extend(paths.values())
        self._sent += 1
        return True

    def save(self, fig: Any, paths: dict[str, Path], *, measure: Any = None) -> None:
        """Save ``fig`` in each format of ``paths`` (``{"png": path, ...}``) cropped to the box that
        ``measure(fig)`` returns after laying it out (``None``: the whole figure).

        While the worker keeps up (at most :data:`MAX_BACKLOG` unfinished jobs) the figure goes to it
        before its layout, and the worker lays it out (:func:`frozen_tight_bbox` at ``measure_dpi``,
        which ``measure`` must match) and renders every format; otherwise this process lays it out
        and renders the PNG, and the worker the other formats.
        """
        wanted = {ext: str(p) for ext, p in paths.items()}
        if self._usable() and self._backlog() <= MAX_BACKLOG:
            lay_out = measure is not None
            if self._send("figure", wanted, (lay_out, None, fig)):
                return
        bbox = measure(fig) if measure is not None else None
        remote = {ext: p for ext, p in wanted.items() if ext != "png"}
        if not remote or not self._send("figure", remote, (False, bbox, fig)):
            remote = {}
        for ext, path in paths.items():
            if ext not in remote:
                fig.savefig(path, bbox_inches=bbox, **self._options.get(ext, {}))

    def copy(self, src: Path, dst: Path) -> None:
        """Copy the file ``src`` to ``dst`` once it is written (the worker keeps the jobs' order)."""
        if not self._send("copy", {"copy": str(dst)}, str(src)):
            shutil.copyfile(src, dst)

    def close(self, *, abort: bool = False) -> dict[str, str]:
        """Wait for the worker (or stop it, with ``abort``); return ``{path: reason}`` of files not written."""
        if self._proc is None:
            return self._failed
        proc, self._proc = self._proc, None
        try:
            if abort or not self._sent:  # nothing to wait for
                proc.kill()
            self._frames.put(None)
            self._feeder.join(timeout=None if not abort else 5)
            try:
                proc.wait(timeout=WAIT_S + WAIT_PER_JOB_S * self._sent)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self._log.close()
            self.worker_peak_rss_gib = _read_peak(self._results)
            done = _read_results(self._results)
            for path in self._jobs:
                if path not in done:
                    done[path] = f"the figure worker stopped (exit code {proc.returncode}) before writing it"
            self._failed = {p: e for p, e in done.items() if e}
        finally:
            Path(self._results).unlink(missing_ok=True)
        return self._failed

    @property
    def failed(self) -> dict[str, str]:
        """``{path: reason}`` of the files the worker could not write (known after :meth:`close`)."""
        return dict(self._failed)

    def __enter__(self) -> FigureSaver:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(abort=exc_type is not None)


def frozen_tight_bbox(fig: Any, *, dpi: float) -> Any:
    """The padded tight bounding box (inches) of ``fig`` laid out once at ``dpi``; the layout is then frozen.

    ``savefig(bbox_inches="tight")`` draws the figure twice (a measuring draw that also runs the layout
    engine, then the render), once per format. This lays the figure out and measures it once, with
    the Agg renderer at the PNG's resolution as ``savefig`` did for the PNG, then removes the layout
    engine (the axes keep their laid-out positions), so that each ``savefig(bbox_inches=<this box>)``
    draws the figure only once, in the same place. Only text extents are needed for that, not the
    (disabled) draw of every artist of ``draw_without_rendering``.
    """
    import matplotlib as mpl

    canvas, old_dpi = fig.canvas, fig.dpi
    if not hasattr(canvas, "get_renderer"):  # a PDF / SVG backend's canvas: measure as the PNG is drawn
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    try:
        renderer = fig.canvas.get_renderer()
        engine = fig.get_layout_engine()
        if engine is not None and fig.axes:
            with suppress(ValueError):  # as Figure.draw: a layout that cannot be solved keeps the positions
                engine.execute(fig)
        bbox = fig.get_tightbbox(renderer)
        with mpl.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
            fig.set_layout_engine(None)  # no engine: savefig skips its measuring draw
    finally:
        fig.set_dpi(old_dpi)
        if fig.canvas is not canvas:
            fig.set_canvas(canvas)
    pad = mpl.rcParams["savefig.pad_inches"]
    return bbox.padded(pad, pad)


def _read_peak(path: str) -> float | None:
    """The worker's peak memory from its last line in ``path`` (``None`` when it did not finish)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return json.loads(lines[-1]).get("peak_rss_gib") if lines else None
    except (OSError, ValueError, AttributeError):
        return None


def _read_results(path: str) -> dict[str, str]:
    """``{path: error or ""}`` of the jobs the worker finished."""
    out: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        try:
            r = json.loads(line)
        except ValueError:  # a line cut by a killed worker
            continue
        if "paths" not in r:  # the ready line, the peak memory line
            continue
        out.update(dict.fromkeys(r["paths"], r["error"]))
    return out


# -- worker process ---------------------------------------------------------------------------
def _read_frame(stream) -> bytes | None:
    """The next frame of ``stream``, or ``None`` at its end."""
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    (n,) = _HEADER.unpack(head)
    data = stream.read(n)
    return data if len(data) == n else None


def _serve(stream, results: str) -> None:
    """Run the jobs of ``stream`` in order, appending each outcome to the file ``results``."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    first = _read_frame(stream)
    if first is None:
        return
    rc, options, measure_dpi = pickle.loads(first)
    mpl.rcParams.update(rc)
    import gc

    gc.freeze()  # the imported modules' objects: left out of the collections that the figures trigger
    with open(results, "a", encoding="utf-8") as log:
        log.write('{"ready": true}\n')  # jobs are sent from now on; until then the parent saves itself
        log.flush()
        while (frame := _read_frame(stream)) is not None:
            kind, paths, payload = pickle.loads(frame)
            error = ""
            try:
                if kind == "figure":
                    lay_out, bbox, fig = pickle.loads(payload)
                    if lay_out:
                        bbox = frozen_tight_bbox(fig, dpi=measure_dpi)
                    for ext, path in paths.items():
                        fig.savefig(path, bbox_inches=bbox, **options.get(ext, {}))
                else:
                    shutil.copyfile(pickle.loads(payload), paths["copy"])
            except Exception as e:
                error = f"{type(e).__name__}: {e}"
            finally:
                plt.close("all")
            log.write(json.dumps({"paths": list(paths.values()), "error": error}) + "\n")
            log.flush()
        log.write(json.dumps({"peak_rss_gib": _peak_rss_gib()}) + "\n")


def _peak_rss_gib() -> float | None:
    """The peak resident memory (GiB) of the current process since it started Python (``VmHWM``; Linux)."""
    try:
        with open("/proc/self/status") as fh:
            kib = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return None
    return round(kib / 2**20, 3)


def _worker_main(results: str) -> None:
    """The worker process: serve the jobs of stdin, recording their outcomes in ``results``."""
    import signal
    import warnings

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops this process on an interrupt
    warnings.simplefilter("ignore")
    _serve(sys.stdin.buffer, results)


#: how the worker starts: this file loaded on its own (not the package, whose imports it does not
#: need: a smaller, faster process; a figure that references a tmeatlas class imports it on demand)
_WORKER_CODE = (
    "import sys; from importlib.util import module_from_spec, spec_from_file_location; "
    "spec = spec_from_file_location('tmeatlas_figure_worker', sys.argv[1]); m = module_from_spec(spec); "
    "spec.loader.exec_module(m); m._worker_main(sys.argv[2])"
)


if __name__ == "__main__":
    _worker_main(sys.argv[1])
