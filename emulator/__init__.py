"""A local IMM (2020-09-30): the embedded default cloud for the quickstart, the tests and the benchmarks.

Layout, after moto: ``wire.py`` parses requests and renders responses from ``runtime``'s operation catalog;
``auth.py`` verifies signatures as the gateway does; ``service.py`` is IMM's behaviour (the "cloud"), with
``query.py`` (SimpleQuery) and ``figures.py`` (figure-cluster bookkeeping: faces, groups, covers, invariants);
``store.py`` keeps state in SQLite; ``jobs.py`` runs the asynchronous work (indexing, binding scans, tasks);
``clustering.py`` groups faces; ``analysis.py`` is the face analyzer interface and ``vision.py`` the dlib one;
``oss.py`` resolves objects under ``--oss-root`` and ``oss_get.py`` serves OSS-signed reads of them; ``sts.py``
is the STS endpoint; ``server.py`` and ``cli.py`` run it all.
"""
