"""Domain errors of the merchants app; bitrecs_site.exception_handler maps them to HTTP answers."""


class MerchantError(Exception):
    """Base class: `status_code` and the message are what the caller sees."""

    status_code = 400
    code = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(MerchantError):
    status_code = 400
    code = "invalid_request"


class InvalidSignature(MerchantError):
    """A missing or wrong HMAC / signature on a request from a platform."""

    status_code = 401
    code = "invalid_signature"


class StaleRequest(MerchantError):
    status_code = 400
    code = "stale_request"


class StoreNotFound(MerchantError):
    status_code = 404
    code = "store_not_found"


class PayloadTooLarge(MerchantError):
    status_code = 413
    code = "payload_too_large"


class PlatformRejected(MerchantError):
    """The platform answered our call with a non-retryable error (bad code, revoked key, 4xx)."""

    status_code = 400
    code = "platform_rejected"


class PlatformUnauthorized(PlatformRejected):
    """The platform refused our credentials (HTTP 401/403, or a missing access scope): re-authorise the store.

    Answered to a caller as a plain rejection (same code and status): the difference matters to syncs.
    """


class TokenRefreshRefused(PlatformRejected):
    """Shopify will not refresh a store's offline token (revoked grant, refresh token missing or expired).

    Raised once the store's NEEDS_REAUTH mark is committed: the merchant must open the app again. `reason` is what
    the mark's event records.
    """

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class InstallRefused(PlatformRejected):
    """Shopify would not give the app a token for the shop (token exchange refused, required scopes missing)."""

    status_code = 403
    code = "install_refused"


class PlatformUnavailable(MerchantError):
    """The platform could not be reached or answered 429/5xx; worth retrying later."""

    status_code = 502
    code = "platform_unavailable"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
