"""optimist: HTTP APIs that never lose an update.

The names here are the framework-free core: standard library only, no I/O, and
``pip install optimist-http`` installs nothing else. The integrations live in their own
packages, named after what they integrate, each installed by the extra of the same name
and imported explicitly: ``optimist.starlette``, ``optimist.fastapi``,
``optimist.sqlalchemy`` (``optimist-http[postgres]`` adds asyncpg), ``optimist.httpx``,
``optimist.cryptography``.
"""

#: This release (the distribution is ``optimist-http``; the import name is ``optimist``).
__version__ = "0.2.0.dev0"

from optimist.conditions import Condition, ResourceState
from optimist.cursor import Cursor, CursorCodec
from optimist.errors import (
    CorruptRecord,
    ExpiredToken,
    ForeignToken,
    GuardFailed,
    IdempotencyError,
    IdempotencyKeyInFlight,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    InvalidEntityTag,
    InvalidIdempotencyKey,
    InvalidInput,
    InvalidToken,
    InvalidVectorClock,
    MalformedToken,
    MergeConflict,
    NotModified,
    OptimistError,
    PreconditionError,
    PreconditionFailed,
    PreconditionRequired,
    ResourceExists,
    ResourceNotFound,
    ResponseError,
    ServiceUnavailable,
    TamperedToken,
    VersionConflict,
)
from optimist.etag import ANY, Comparison, EntityTag, TagMatch
from optimist.idempotency import Fingerprint, IdempotencyKey, StoredResponse
from optimist.merge import apply_merge_patch, create_merge_patch
from optimist.policy import PreconditionPolicy, Requirement
from optimist.preconditions import Outcome, Preconditions, evaluate
from optimist.problem import Problem
from optimist.tokens import SignedPayload, TokenSigner
from optimist.vclock import Ordering, VectorClock

__all__ = [
    "ANY",
    "Comparison",
    "Condition",
    "CorruptRecord",
    "Cursor",
    "CursorCodec",
    "EntityTag",
    "ExpiredToken",
    "Fingerprint",
    "ForeignToken",
    "GuardFailed",
    "IdempotencyError",
    "IdempotencyKey",
    "IdempotencyKeyInFlight",
    "IdempotencyKeyRequired",
    "IdempotencyKeyReused",
    "InvalidEntityTag",
    "InvalidIdempotencyKey",
    "InvalidInput",
    "InvalidToken",
    "InvalidVectorClock",
    "MalformedToken",
    "MergeConflict",
    "NotModified",
    "OptimistError",
    "Ordering",
    "Outcome",
    "PreconditionError",
    "PreconditionFailed",
    "PreconditionPolicy",
    "PreconditionRequired",
    "Preconditions",
    "Problem",
    "Requirement",
    "ResourceExists",
    "ResourceNotFound",
    "ResourceState",
    "ResponseError",
    "ServiceUnavailable",
    "SignedPayload",
    "StoredResponse",
    "TagMatch",
    "TamperedToken",
    "TokenSigner",
    "VectorClock",
    "VersionConflict",
    "__version__",
    "apply_merge_patch",
    "create_merge_patch",
    "evaluate",
]
