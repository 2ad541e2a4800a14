"""Who the caller is, and the proof: credentials, where they are found, and the signatures made with them.

Layers, each importing only those above it (importing this package imports none of them):

- :mod:`.redaction` (secrets kept out of every text) and :mod:`.config` (the one table of settings: stack keys,
  environment variables, defaults);
- :mod:`.credentials`: the values a client signs with (:class:`~.credentials.Credentials`, the refreshing and the
  lazy source);
- :mod:`.settings` (the stack's ``alicloud:*`` settings), :mod:`.signing` (IMM's and STS's signatures) and
  :mod:`.oss_signing` (OSS's);
- :mod:`.sts`: STS's operations, for the chain and the emulator alike;
- :mod:`.sources` (STS, the ECS metadata service, a credentials URI) and :mod:`.profiles` (the aliyun CLI's);
- :mod:`.chain`: the ordered list of finders and :func:`~.chain.resolve_provider`.

The public names are re-exported by :mod:`imm_faces.runtime.credentials`.
"""
