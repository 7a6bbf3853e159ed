"""Typed errors of the Sigma client. Each carries `reason`, the value of the metrics' `reason` label.

Messages are written by us, never copied from requests/urllib3 exceptions (those carry full URLs,
query strings included, and so access tokens).
"""

from __future__ import annotations


class SigmaError(Exception):
    """Base of every error a Sigma call can end in."""

    reason = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # copy.copy (the token provider re-raises copies of a held failure) and pickle rebuild an
        # exception from its args, which would call a subclass's __init__ without its extra parameters.
        return (_rebuild, (type(self), self.message), dict(self.__dict__))


def _rebuild(cls: type[SigmaError], message: str) -> SigmaError:
    error = cls.__new__(cls)
    SigmaError.__init__(error, message)
    return error


# --- transport -------------------------------------------------------------------------------------
class TransportError(SigmaError):
    """No usable HTTP reply: the connection, TLS, the time budget or the size cap failed."""

    reason = "connection"


class SigmaTimeoutError(TransportError):
    """No reply, or not all of it, within the call's time budget."""

    reason = "timeout"


class SigmaConnectionError(TransportError):
    """The connection could not be made, or broke before a reply."""

    reason = "connection"


class SigmaTLSError(TransportError):
    """The TLS handshake or the verification of Sigma's certificate failed."""

    reason = "tls"


class ReplyTooLargeError(TransportError):
    """The reply is over `sigma.max_reply_bytes` (declared or as it arrived)."""

    reason = "reply_too_large"


# --- HTTP status ------------------------------------------------------------------------------------
class HTTPStatusError(SigmaError):
    """An HTTP status, or a `statusCode` in the reply, that is not success; `status` and Sigma's `error_code`
    (if any) are kept."""

    reason = "http_error"

    def __init__(self, message: str, status: int, error_code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class UnauthorizedError(HTTPStatusError):
    """401: the token or the credentials were refused (the client renews the token once)."""

    reason = "unauthorized"


class BadRequestError(HTTPStatusError):
    """400: Sigma refused the parameters, or does not know the reference (of this kind)."""

    reason = "bad_request"


class ServerError(HTTPStatusError):
    """A 5xx status: Sigma failed."""

    reason = "server_error"


# --- reply content ----------------------------------------------------------------------------------
class InvalidReplyError(SigmaError):
    """The reply could not be understood. Subclasses say how."""

    reason = "invalid_reply"


class NotJSONError(InvalidReplyError):
    """The body is not JSON at all (an HTML error page, plain text, binary)."""


class MalformedJSONError(InvalidReplyError):
    """The body looks like JSON but breaks its grammar before the end."""


class TruncatedReplyError(InvalidReplyError):
    """The body starts as JSON but ends before the document does."""


class EmptyReplyError(InvalidReplyError):
    """HTTP 200 with an empty body."""


class MissingHeaderMapError(InvalidReplyError):
    """Valid JSON, but not an object with a `headerMap` object."""


class MissingFieldError(InvalidReplyError):
    """A field the reply cannot do without is absent or empty."""


class WrongTypeError(InvalidReplyError):
    """A field has a type or a value that cannot be read (a list where a string belongs, "abc" as a count)."""


class FailureReplyError(SigmaError):
    """`replyType` FAILURE (or `success` false) without a more specific status code."""

    reason = "failure_reply"

    def __init__(self, message: str, error_code: str = "", status_code: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.status_code = status_code


#: Every `reason` an API error can have; the metrics export each from zero so rates work from the start.
ERROR_REASONS: tuple[str, ...] = tuple(
    sorted(
        {
            cls.reason
            for cls in (
                SigmaTimeoutError,
                SigmaConnectionError,
                SigmaTLSError,
                ReplyTooLargeError,
                UnauthorizedError,
                BadRequestError,
                ServerError,
                HTTPStatusError,
                FailureReplyError,
                InvalidReplyError,
            )
        }
    )
)
