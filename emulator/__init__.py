"""A local IMM (2020-09-30): the embedded default cloud for the quickstart, the tests and the benchmarks.

Layout, after moto: ``wire.py`` parses requests and renders responses from ``runtime``'s operation catalog;
``auth.py`` verifies signatures as the gateway does; ``service.py`` is IMM's behaviour (the "cloud");
``store.py`` keeps state in SQLite; ``indexing.py`` and ``tasks.py`` run the asynchronous work;
``clustering.py`` groups faces; ``analysis.py`` is the face analyzer interface; ``server.py`` runs it all.
"""
