"""The threads of a local run (:meth:`indexer.pipeline.Indexer.run`): a worker thread that runs jobs in order, the
job it hands back, and Ctrl-C remembered across libraries that swallow it. Nothing here knows the steps."""

from __future__ import annotations

import queue
import threading


class Job:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg
        self.done = threading.Event()
        self.value = None
        self.error: BaseException | None = None

    def wait(self) -> None:
        while not self.done.wait(0.2):       # a short wait keeps Ctrl-C responsive
            pass

    def result(self):
        self.wait()
        if self.error is not None:
            raise self.error
        return self.value


class CtrlC:
    """Ctrl-C during a run is remembered as well as raised: a library that meets the KeyboardInterrupt inside its
    own code may turn it into an error of its own (then one file's failure) or drop it, and the run would go on
    to the end. The run checks the flag between files and steps, so it stops at the next one at the latest."""

    def __init__(self):
        import signal

        self.hit = False
        self._old = None
        if threading.current_thread() is threading.main_thread():
            def on_sigint(signum, frame):
                self.hit = True
                raise KeyboardInterrupt

            self._old = signal.signal(signal.SIGINT, on_sigint)

    def check(self) -> None:
        if self.hit:
            raise KeyboardInterrupt

    def restore(self) -> None:
        import signal

        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


class Worker:
    """One daemon thread running jobs in order (daemon: Ctrl-C never waits for a long transcription)."""

    def __init__(self, name: str = "dailies-sound"):
        self.name = name
        self.jobs: "queue.Queue[Job]" = queue.Queue()
        self.busy = False
        self.thread: threading.Thread | None = None

    def submit(self, fn, arg) -> Job:
        job = Job(fn, arg)
        self.jobs.put(job)
        if self.thread is None:
            self.thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self.thread.start()
        return job

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            self.busy = True
            try:
                job.value = job.fn(job.arg)
            except BaseException as exc:  # handed to the main thread by job.result()
                job.error = exc
            finally:
                self.busy = False
                job.done.set()
