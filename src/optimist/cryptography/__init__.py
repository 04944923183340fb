"""cryptography integration: tokens whose content a client cannot read.

* :mod:`~optimist.cryptography.sealing`: :class:`TokenSealer`, AES-GCM tokens with the
  checks and key rotation of :class:`optimist.tokens.TokenSigner`, for
  :class:`optimist.cursor.CursorCodec` (a cursor's position and snapshot watermark
  say how many rows a table holds, across tenants) or any other user of
  :class:`optimist.tokens.Tokens`.
"""

from optimist.cryptography.sealing import TokenSealer

__all__ = ["TokenSealer"]
