"""Index a set of files: the only package that knows the order of the steps (:mod:`.take`: one take's steps;
:mod:`.run`: the files of a run, overlapped or on worker processes; :mod:`.records`: what they report).

Per file: stat -> (unchanged? skip) -> content hash -> (known content? skip or follow the move) ->
probe -> one decoding pass (16 kHz audio in memory + reduced frames to the shot detector) ->
speech (faster-whisper, loaded once per run) -> lines (group, refine edges, attach shots) ->
text vectors -> commit (Chroma, then the catalog in one transaction).

The driver's side (:meth:`Indexer._prepare`: skip, hash, probe; :meth:`Indexer._commit`: voices, text
vectors, store) runs in this process, the one writer; the take's heavy work (:meth:`Indexer.compute`: the
decoding pass, speech, speakers, lines) touches no store, so it runs in this process's sound thread
(:meth:`Indexer.run`) or on other processes and machines (:meth:`Indexer.run_on`, Ray workers:
:mod:`indexer.cluster`) with the same result.

Finished steps are saved per take, so an interrupted run (Ctrl-C, kill -9, power cut) resumes
where it stopped; a take only becomes searchable when all of it is committed. A file that fails
is recorded with its reason and the batch goes on.
"""

from .records import FileResult, NullReporter, Reporter, RunSummary, _Heard, _Prepared
from .run import Indexer, collect_files
from .take import LINES_STEP_KEY, VOICES_STALE, WORKER_STEPS, TakeSteps, failure_message

__all__ = ["FileResult", "Indexer", "LINES_STEP_KEY", "NullReporter", "Reporter", "RunSummary", "TakeSteps",
           "VOICES_STALE", "WORKER_STEPS", "_Heard", "_Prepared", "collect_files", "failure_message"]
