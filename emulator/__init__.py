"""A local IMM (2020-09-30): the embedded default cloud for the quickstart, the tests and the benchmarks.

Layout, after moto: ``front_door.py`` is the one ASGI app, routing each request to IMM, STS or OSS, with
``asgi.py`` (request reading, the body limit, error bodies: once for all); ``wire.py`` turns IMM requests into
``runtime``'s operation catalog and back; ``auth.py`` verifies signatures as the gateway does; ``service.py``
is IMM's behaviour (the "cloud"), its handlers grouped by resource in ``operations/``, with ``query.py``
(SimpleQuery) and ``figures.py`` (figure-cluster bookkeeping: faces, groups, covers, invariants); ``store.py``
keeps state in SQLite under typed keys; ``jobs.py`` joins the asynchronous work: ``indexer.py``,
``binding_scanner.py``, ``task_runner.py``, and ``image_search.py`` on the request path; ``clustering.py``
groups faces; ``analysis.py`` is the face analyzer interface and ``vision.py`` the dlib one; ``oss.py``
resolves objects under ``--oss-root`` and ``oss_get.py`` serves OSS-signed reads of them; ``sts.py`` is the
STS endpoint and ``metadata.py`` the ECS metadata stand-in; ``server.py`` and ``cli.py`` run it all.
"""
