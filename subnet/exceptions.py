"""Domain errors of the subnet app (the validator client's own errors live in subnet.client)."""


class SubnetError(Exception):
    """Base class: `code` names the reason for logs and records; the message says what went wrong."""

    code = "subnet_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AnswerRejected(SubnetError):
    """A validator's answer that must not be stored or shown; `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class CandidatePoolTooSmall(SubnetError):
    """The store has too few products a validator would accept to make a request's catalog."""

    code = "candidate_pool_too_small"


class ProductNotFound(SubnetError):
    """No product of the store has that SKU."""

    code = "product_not_found"
