"""The store: the only owner of an index's persistence (the only code that runs SQL or touches Chroma).

An index is one folder::

    dailies-index/
      catalog.sqlite   one schema (store/schema.py, versioned, migrated in place): takes, files, shots,
                       lines (+ FTS5), shot tags, finished steps, meta; the voice registry's tables
                       (store/voices.py) and the imported screenplays' (store/screenplays.py)
      chroma/          Chroma PersistentClient, collections ``lines`` and ``frames`` (store/vectors.py)
      lock             held (flock) by the one writer

:class:`Index` (store/catalog.py) opens it: :meth:`Index.open` for reading (any number of readers,
read-only), :meth:`Index.open_writer` for the one writer.
"""

from .catalog import CATALOG, LOCK, EmbedderMismatchError, Index, LineRow, line_id, now
from .schema import SCHEMA_VERSION
from .screenplays import Screenplays
from .vectors import CHROMA_DIR, Vectors, refresh_vector_clients
from .voices import VoiceTables

__all__ = ["CATALOG", "CHROMA_DIR", "LOCK", "SCHEMA_VERSION", "EmbedderMismatchError", "Index", "LineRow",
           "Screenplays", "Vectors", "VoiceTables", "line_id", "now", "refresh_vector_clients"]
