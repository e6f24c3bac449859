"""Picture: keyframes, the open_clip embedder, shot tags, the picture step, frame search.

One module per concern (import them directly; this package re-exports nothing, so importing it costs
nothing and never loads torch or open_clip):

* :mod:`.clip`      which CLIP model and where its weights are (``ClipSource``, ``resolve_clip``,
                    ``fetch_clip``, ``model_rows`` for ``dailies models``); never downloads but when asked.
* :mod:`.embedder`  ``ClipEmbedder`` (image and text towers -> unit vectors), ``read_image``,
                    ``embedder_for_index`` (the model that made an index's frame vectors).
* :mod:`.keyframes` which frames of each shot are embedded, chosen during the one decoding pass.
* :mod:`.tags`      zero-shot shot tags from an editable vocabulary (``load_vocabulary``, ``Tagger``).
* :mod:`.step`      the picture step of one take (``PictureStep``, ``picture_of_take``,
                    ``load_for_indexing``) and its records in the ``frames`` collection (``store_frames``).
* :mod:`.search`    visual search by text or still (``search_visual``), ``rerank_by_visual`` for other
                    searches' hits, ``write_thumbnails``.

Frame extraction (a still of one frame, by seeking) is :func:`indexer.media.extract_frame`.
"""
