"""Worker processes and the block scheduler.

One worker process per (implementation, dtype).  A worker imports its implementation,
builds every workload it runs (nets, optimiser state, data maps -- all outside the timed
region), pins its BLAS / OpenMP / torch thread count, says 'ready' and then waits.  The
parent sends one request at a time ("run a block of R units of workload w") and waits
for the answer, so no two workers ever time a block at the same time: the others sit
blocked on their pipe.  Each block first runs a few untimed warm-up units (caches were
cooled by the previous worker), then times every unit on its own with
``time.perf_counter``.

Blocks are interleaved: each round visits every workload and, within it, every
implementation, in an order rotated by one each round, so slow drift of the machine
(other jobs, thermal state) is spread over all implementations alike.

Memory probes run in fresh processes of their own (see :func:`memory_probe`).
"""
import multiprocessing as mp
import os
import sys
import time
import traceback

from bench.workloads import WORKLOADS, make_data

THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
              "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def set_thread_env(threads):
    """Thread counts for libraries loaded by processes started from now on."""
    for key in THREAD_ENV:
        os.environ[key] = str(threads)


# --------------------------------------------------------------------------- worker side

def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def _reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker_info(threads):
    """Library versions and the BLAS / OpenMP pools this process has loaded."""
    info = {"pid": os.getpid()}
    import numpy
    info["numpy"] = numpy.__version__
    for mod in ("scipy", "torch", "sklearn"):
        m = sys.modules.get(mod)
        if m is not None:
            info[mod] = getattr(m, "__version__", "?")
    try:
        from threadpoolctl import threadpool_info
        info["threadpools"] = [
            {k: p.get(k) for k in ("user_api", "internal_api", "version", "num_threads",
                                   "architecture", "prefix", "threading_layer", "filepath")}
            for p in threadpool_info()]
    except Exception as exc:    # pragma: no cover - informative only
        info["threadpools"] = f"threadpoolctl failed: {exc}"
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    info["threads"] = threads
    return info


def _pin_threads(mod, threads):
    mod.set_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(limits=threads)
    except Exception:    # pragma: no cover
        return None


def _time_units(run, n, warm, max_time=None, min_units=3):
    """Run ``warm`` untimed units, then time ``n`` units one by one.

    With ``max_time``, the block ends early once that many seconds have passed and at
    least ``min_units`` units are timed (a machine gone busy cannot stretch one block
    without bound).
    """
    for _ in range(warm):
        run()
    pc = time.perf_counter
    samples = [0.0] * n
    start = pc()
    for i in range(n):
        t0 = pc()
        run()
        t1 = pc()
        samples[i] = t1 - t0
        if max_time is not None and i + 1 >= min_units and t1 - start > max_time:
            return samples[:i + 1]
    return samples


def _prefault(array):
    """Touch every page of a (mapped) array once, so no timed unit pays first faults."""
    import numpy as np
    flat = array.reshape(-1)
    step = max(1, 4096 // array.itemsize)
    return float(np.add.reduce(flat[::step], dtype=np.float64))


def worker_main(conn, spec):
    """Entry point of a timing worker (runs in the child process)."""
    try:
        import numpy as np
        from bench import impls
        mod, options = impls.load(spec["impl"])
        ok, note = impls.available(mod, options)
        if not ok:
            conn.send(("unavailable", note))
            return
        dtype = np.dtype(spec["dtype"])
        threads = spec["threads"]
        runners = {}
        faulted = set()
        for name in spec["workloads"]:
            wl = WORKLOADS[name]
            data = make_data(wl, dtype, spec.get("pool"))
            if id(data.X_pool) not in faulted:
                _prefault(data.X_pool)
                faulted.add(id(data.X_pool))
            runners[name] = mod.setup(wl, dtype, data, **options)
        limiter = _pin_threads(mod, threads)   # noqa: F841 (keeps the limits)
        conn.send(("ready", worker_info(threads)))
        while True:
            msg = conn.recv()
            kind = msg[0]
            try:
                if kind == "run":
                    _, name, n, warm, max_time = msg
                    conn.send(("ok", _time_units(runners[name].run, n, warm, max_time)))
                elif kind == "calibrate":
                    _, name, min_time, min_count = msg
                    run = runners[name].run
                    samples = []
                    start = time.perf_counter()
                    while len(samples) < min_count or (time.perf_counter() - start < min_time
                                                       and len(samples) < 100_000):
                        samples.extend(_time_units(run, 1, 0))
                    conn.send(("ok", samples))
                elif kind == "peak":
                    from bench.gemm import peak
                    _, n, repeat = msg
                    conn.send(("ok", peak(dtype, n, repeat)))
                elif kind == "quit":
                    conn.send(("ok", None))
                    return
                else:
                    conn.send(("error", f"unknown request {kind!r}"))
            except Exception:
                conn.send(("error", traceback.format_exc()))
    except Exception:
        try:
            conn.send(("error", traceback.format_exc()))
        except Exception:
            pass


def memory_main(conn, spec):
    """Entry point of a memory probe (a fresh process that runs only the probe).

    kind 'epoch': build the W5 runner with a private copy of the training data, reset
    the peak-RSS counter, run one epoch and report the peak (VmHWM) against the RSS
    after set-up.  kind 'flat': run ``n_low`` then up to ``n_high`` W4 steps and report
    the RSS after each.
    """
    try:
        import numpy as np
        from bench import impls
        mod, options = impls.load(spec["impl"])
        ok, note = impls.available(mod, options)
        if not ok:
            conn.send(("unavailable", note))
            return
        dtype = np.dtype(spec["dtype"])
        wl = WORKLOADS[spec["workload"]]
        data = make_data(wl, dtype, spec.get("pool"), private=True)
        runner = mod.setup(wl, dtype, data, **options)
        del data
        _pin_threads(mod, spec["threads"])
        out = {"impl": spec["impl"], "dtype": dtype.name, "workload": wl.name}
        if spec["kind"] == "epoch":
            out["rss_setup"] = _rss_bytes()
            out["peak_reset"] = _reset_peak_rss()
            t0 = time.perf_counter()
            runner.run()
            out["seconds"] = time.perf_counter() - t0
            out["peak"] = _status_kb("VmHWM") * 1024
            out["rss_after"] = _rss_bytes()
        else:
            n_low, n_high = spec["n_low"], spec["n_high"]
            run = runner.run
            for _ in range(n_low):
                run()
            out["rss_low"] = _rss_bytes()
            out["history_low"] = runner.history_bytes()
            for _ in range(n_high - n_low):
                run()
            out["rss_high"] = _rss_bytes()
            out["history_high"] = runner.history_bytes()
            out["n_low"], out["n_high"] = n_low, n_high
        conn.send(("ok", out))
    except Exception:
        try:
            conn.send(("error", traceback.format_exc()))
        except Exception:
            pass


# --------------------------------------------------------------------------- parent side

class WorkerError(RuntimeError):
    pass


class Worker:
    """Parent-side handle of one worker process."""

    def __init__(self, ctx, target, spec):
        self.spec = spec
        self.key = (spec["impl"], spec["dtype"])
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(child, spec), daemon=True)
        self.proc.start()
        child.close()
        self.info = None
        self.status = "starting"
        self.note = ""

    def receive(self, timeout=None):
        if not self.conn.poll(timeout):
            raise WorkerError(f"{self.key} did not answer within {timeout} s")
        try:
            kind, payload = self.conn.recv()
        except EOFError:
            raise WorkerError(f"{self.key} died (exit code {self.proc.exitcode})") from None
        if kind == "error":
            raise WorkerError(f"{self.key} failed:\n{payload}")
        return kind, payload

    def wait_ready(self, timeout=600):
        try:
            kind, payload = self.receive(timeout)
        except WorkerError as exc:
            self.status, self.note = "error", str(exc)
            return False
        if kind == "unavailable":
            self.status, self.note = "unavailable", payload
            return False
        self.status, self.info = "ready", payload
        return True

    def request(self, *msg, timeout=900):
        self.conn.send(msg)
        return self.receive(timeout)[1]

    def close(self):
        if self.proc.is_alive():
            try:
                self.conn.send(("quit",))
                self.conn.poll(5)
            except (OSError, BrokenPipeError):
                pass
            self.proc.join(5)
            if self.proc.is_alive():
                self.proc.terminate()
                self.proc.join(5)
        self.conn.close()


def context():
    return mp.get_context("spawn")


def start_workers(jobs, threads, pool, log=print):
    """Start one timing worker per (impl, dtype) of ``jobs`` and wait until all are ready.

    Set-up (imports, nets, data) runs in all workers at once: it is not timed.
    """
    ctx = context()
    by_key = {}
    for impl, dtype, wl in jobs:
        by_key.setdefault((impl, dtype), []).append(wl)
    workers = {}
    for (impl, dtype), wls in by_key.items():
        spec = {"impl": impl, "dtype": dtype, "workloads": wls, "threads": threads,
                "pool": pool}
        workers[(impl, dtype)] = Worker(ctx, worker_main, spec)
    for key, w in workers.items():
        ok = w.wait_ready()
        if not ok:
            log(f"  {key[0]} ({key[1]}): {w.status}: {w.note.strip().splitlines()[-1] if w.note else ''}")
    return workers


def _cpu_jiffies():
    """(busy, total) jiffies of all CPUs from /proc/stat, or None."""
    try:
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    total = sum(vals[:8])            # user nice system idle iowait irq softirq steal
    idle = vals[3] + vals[4]
    return total - idle, total


def _proc_jiffies(pid):
    """utime + stime of a process (all its threads), in jiffies, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None


class BusyMeter:
    """Share of the machine's CPU used by *other* processes while a block ran.

    (busy jiffies of all CPUs - jiffies of the timing worker) / (elapsed x cores),
    from /proc (10 ms resolution): 0 on a quiet machine, about 1 when other jobs keep
    every core busy.  Informational: shared machines make noisy numbers, and this says
    how noisy.
    """

    def __init__(self):
        self.ncpu = os.cpu_count() or 1
        self.ok = _cpu_jiffies() is not None

    def start(self, pid):
        if not self.ok:
            return None
        return (time.perf_counter(), _cpu_jiffies(), _proc_jiffies(pid), pid)

    def stop(self, token):
        if token is None:
            return None
        t0, (b0, _), p0, pid = token
        elapsed = time.perf_counter() - t0
        b1, _ = _cpu_jiffies()
        p1 = _proc_jiffies(pid)
        if p0 is None or p1 is None or elapsed < 0.05:
            return None          # /proc/stat counts in 10 ms ticks: too short to tell
        hz = os.sysconf("SC_CLK_TCK")
        foreign = ((b1 - b0) - (p1 - p0)) / hz
        return max(0.0, min(1.0, foreign / (elapsed * self.ncpu)))


class Scheduler:
    """Calibrates block sizes, then runs interleaved, rotated rounds of blocks.

    With ``retry_busy`` set, a block during which other processes used more than that
    share of the CPU is thrown away and run again (at most ``max_retries`` times; the
    last try is kept) -- the same rule for every implementation.
    """

    def __init__(self, workers, jobs, block_time=0.15, min_units=3, max_units=10_000,
                 warm_time=0.02, max_warm=200, gap=0.005, retry_busy=None, max_retries=3,
                 log=print):
        self.workers = workers
        self.jobs = [j for j in jobs if workers.get(j[:2]) is not None
                     and workers[j[:2]].status == "ready"]
        self.block_time = block_time
        self.min_units = min_units
        self.max_units = max_units
        self.warm_time = warm_time
        self.max_warm = max_warm
        self.gap = gap
        self.log = log
        self.samples = {j: [] for j in self.jobs}
        self.busy = {j: [] for j in self.jobs}
        self.retried = {j: 0 for j in self.jobs}
        self.retry_busy = retry_busy
        self.max_retries = max_retries
        self.meter = BusyMeter()
        self.plan = {}
        self.out_of_time = False
        self.errors = {}
        self.blocks = 0

    def _request(self, job, *msg):
        w = self.workers[job[:2]]
        if w.status != "ready":
            return None
        try:
            return w.request(*msg)
        except WorkerError as exc:
            self.errors[job] = str(exc)
            w.status, w.note = "error", str(exc)
            self.log(f"  ! {job}: {str(exc).strip().splitlines()[-1]}")
            return None

    def calibrate(self, min_time=0.05):
        """One untimed warm-up block per step job; sets units per block and warm-up units.

        Epoch jobs are not calibrated (one epoch per block, no warm-up: the workers
        pre-fault the shared training pool at set-up, and an epoch is long enough that
        a cold cache at its start does not matter)."""
        import statistics
        for job in self.jobs:
            impl, dtype, wl_name = job
            wl = WORKLOADS[wl_name]
            if wl.kind == "epoch":
                self.plan[job] = (1, 0, None)
                continue
            got = self._request(job, "calibrate", wl_name, min_time, 3)
            if got is None:
                continue
            self.plan[job] = self._block_plan(wl, statistics.median(got))
            self.quiesce(self.workers[job[:2]].proc.pid)

    def _block_plan(self, wl, t):
        """(units per block, warm-up units, seconds per unit) for a unit time t."""
        if wl.kind == "epoch":
            return 1, 0, t
        n = int(min(self.max_units, max(self.min_units, round(self.block_time / t))))
        warm = int(min(self.max_warm, max(1, round(self.warm_time / t))))
        return n, warm, t

    def replan(self):
        """Re-size blocks from the medians measured so far (a disturbed calibration
        would otherwise leave a job with far too few or too many units per block)."""
        import statistics
        for job, (n, warm, t) in list(self.plan.items()):
            if self.samples[job] and WORKLOADS[job[2]].kind != "epoch":
                self.plan[job] = self._block_plan(WORKLOADS[job[2]],
                                                  statistics.median(self.samples[job]))

    def run_round(self, r, workloads, deadline=None):
        """One round: every job of ``workloads`` once, orders rotated by ``r``.

        Stops early (the rest of the round is skipped) once ``deadline``
        (a ``time.perf_counter()`` value) has passed; ``self.out_of_time`` tells."""
        k = len(workloads)
        order = workloads[r % k:] + workloads[:r % k] if k else []
        round_busy = []
        for wl_name in order:
            jobs = [j for j in self.jobs if j[2] == wl_name and j in self.plan]
            if not jobs:
                continue
            s = r % len(jobs)
            for job in jobs[s:] + jobs[:s]:
                if deadline is not None and time.perf_counter() > deadline:
                    self.out_of_time = True
                    return round_busy
                n, warm, _ = self.plan[job]
                max_time = None if WORKLOADS[wl_name].kind == "epoch" else 4 * self.block_time
                pid = self.workers[job[:2]].proc.pid
                for attempt in range(self.max_retries + 1):
                    token = self.meter.start(pid)
                    got = self._request(job, "run", wl_name, n, warm, max_time)
                    busy = self.meter.stop(token)
                    self.quiesce(pid)
                    if (got is None or self.retry_busy is None or busy is None
                            or busy <= self.retry_busy or attempt == self.max_retries):
                        break
                    self.retried[job] += 1
                if got is not None:
                    self.samples[job].extend(got)
                    self.busy[job].append(busy)
                    self.blocks += 1
                    if busy is not None:
                        round_busy.append(busy)
        return round_busy

    def quiesce(self, pid, max_wait=0.4, poll=0.02):
        """Wait until the worker that just ran is idle.

        OpenBLAS threads spin for about 2**28 cycles (~0.1 s) after the last BLAS call
        before they sleep; left alone they would eat into the next worker's block.  So
        wait (at most ``max_wait``) until the worker's CPU time stops growing."""
        time.sleep(self.gap)
        last = _proc_jiffies(pid)
        if last is None:
            return
        end = time.perf_counter() + max_wait
        while time.perf_counter() < end:
            time.sleep(poll)
            cur = _proc_jiffies(pid)
            if cur is None or cur == last:
                return
            last = cur

    def peak(self, dtype, n=2048, repeat=5, impl="gemm"):
        w = self.workers.get((impl, dtype))
        if w is None or w.status != "ready":
            return None
        try:
            got = w.request("peak", n, repeat)
            self.quiesce(w.proc.pid)
            return got
        except WorkerError as exc:
            self.log(f"  ! {impl} peak {dtype}: {str(exc).strip().splitlines()[-1]}")
            return None


def memory_probe(kind, impl, dtype, workload, threads, pool, n_low=100, n_high=10_000,
                 timeout=600):
    """Run one memory probe in a fresh process; returns its result dict or an error dict."""
    ctx = context()
    spec = {"impl": impl, "dtype": dtype, "workload": workload, "threads": threads,
            "pool": pool, "kind": kind, "n_low": n_low, "n_high": n_high}
    w = Worker(ctx, memory_main, spec)
    try:
        kind_, payload = w.receive(timeout)
        if kind_ == "unavailable":
            return {"impl": impl, "dtype": dtype, "workload": workload,
                    "unavailable": payload}
        return payload
    except WorkerError as exc:
        return {"impl": impl, "dtype": dtype, "workload": workload, "error": str(exc)}
    finally:
        w.proc.join(30)
        if w.proc.is_alive():
            w.proc.terminate()
            w.proc.join(5)
        w.conn.close()
