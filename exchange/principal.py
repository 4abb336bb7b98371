"""Who is calling: the Principal every service receives, and the request's authenticated caller.

The kernel knows only the value; `exchange.identity` registers the loader that reads the Bearer token
(`app.extensions["datafair.principal_loader"]`), so the request cycle never imports identity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g

from exchange.errors import Forbidden, Unauthorized

# Organization statuses the principal's checks read (the status machine itself is identity's).
VERIFIED = "verified"
SUSPENDED = "suspended"
PENDING = "pending"
# What unblocks a caller whose organization is not verified, by the organization's status.
ORG_STATUS_NEXT_STEPS = {
    PENDING: "an operator must verify your organization first",
    "rejected": "your organization's registration was rejected; contact the exchange's operators",
    SUSPENDED: "an operator must reinstate your organization first",
}
LOADER = "datafair.principal_loader"
USER_ID_PEEK = "datafair.principal_user_id_peek"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: what every service receives instead of the request."""

    user_id: str
    org_id: str
    org_type: str
    org_status: str
    role: str
    email: str = ""
    # The refresh-token family (the login) the access token was issued with; logout revokes it.
    family_id: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.org_type == "operator" and self.org_status == VERIFIED

    @property
    def is_verified(self) -> bool:
        return self.org_status == VERIFIED

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def require_verified(self, action: str = "this action") -> None:
        """Raise Forbidden unless the caller's organization is verified."""
        if self.org_status != VERIFIED:
            raise Forbidden(f"Only verified organizations may perform {action} "
                            f"(your organization is {self.org_status}).",
                            next_step=ORG_STATUS_NEXT_STEPS.get(self.org_status, ORG_STATUS_NEXT_STEPS[PENDING]))

    def require_operator(self) -> None:
        """Raise Forbidden unless the caller is a member of the (verified) exchange operator."""
        if not self.is_operator:
            raise Forbidden("Only exchange operators may do this.",
                            next_step="ask the exchange's operators to do it, or sign in as an operator")

    def require_type(self, *types: str, action: str = "this action") -> None:
        self.require_verified(action)
        if self.org_type not in types:
            names = " or ".join(types)
            raise Forbidden(f"Only {names} organizations may perform {action}.",
                            next_step=f"sign in as a member of {'an' if names[0] in 'aeiou' else 'a'} {names} "
                                      "organization")

    @classmethod
    def of(cls, user: Any) -> Principal:
        """The principal of a loaded user (CLI, demo data, tests): its organization as it is now."""
        org = user.organization
        return cls(user_id=user.id, org_id=org.id, org_type=org.type, org_status=org.status,
                   role=user.role, email=user.email)

    @property
    def is_suspended(self) -> bool:
        return self.org_status == SUSPENDED


def register_loader(app: Flask, *, load: Callable[[], Principal | None],
                    peek_user_id: Callable[[], str | None]) -> None:
    """Install how a request's caller is found (identity does, in its init_app)."""
    app.extensions[LOADER] = load
    app.extensions[USER_ID_PEEK] = peek_user_id


def current_principal(*, required: bool = True) -> Principal | None:
    """The authenticated caller (cached per request); raises Unauthorized when required and absent."""
    if "principal" in g:
        p = g.principal
    else:
        p = current_app.extensions[LOADER]()
        g.principal = p
    if p is None and required:
        raise Unauthorized("Authentication required: send 'Authorization: Bearer <access token>'.")
    return p


def peek_user_id() -> str | None:
    """The user id of a valid access token, without touching the database (idempotency scope)."""
    return current_app.extensions[USER_ID_PEEK]()


VIEWER = "datafair.viewer"  # on flask.g: whom the response being dumped is shown to, when a route says so


def show_to(principal: Principal | None) -> None:
    """Dump this request's response for `principal` instead of the caller (a route that just created one)."""
    setattr(g, VIEWER, principal)


def viewer() -> Principal | None:
    """Whom the response being dumped is shown to: what schemas read to decide principal-dependent fields."""
    if VIEWER in g:
        return g.get(VIEWER)
    return current_principal(required=False)


def operators_only(_session: Any, principal: Principal, **_ids: Any) -> None:
    """Authorization check (`Blueprint.authorize`) of operations only operators may do: the same
    `require_operator` their services call."""
    principal.require_operator()
