"""Bearer tokens: HS256 JWTs with the claim names the real API used (reference §2).

Times in tokens are simulated time, so ``--token-lifetime`` and the ``token_expiry``
fault are measured on the same clock as everything else.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

ISSUER = "urn:api-tier3"
AUDIENCE = "urn:tier3-users"
DEFAULT_LIFETIME = 14 * 24 * 3600  # 1 209 600 s, as captured


class AuthError(Exception):
    """Missing, malformed, expired or revoked token (answered with 401)."""


@dataclass(frozen=True)
class Principal:
    username: str
    alias: str
    location: str
    roles: tuple[str, ...]
    nbf: int
    exp: int


class TokenService:
    def __init__(self, secret: str, lifetime: int = DEFAULT_LIFETIME):
        self.secret = secret
        self.lifetime = lifetime
        #: tokens whose nbf is at or before this instant are revoked (fault injection)
        self.revoked_before: int | None = None
        self._cache: dict[str, Principal] = {}

    def issue(self, *, username: str, alias: str, location: str, roles: list[str], now: float) -> str:
        nbf = int(now)
        if self.revoked_before is not None and nbf <= self.revoked_before:
            nbf = self.revoked_before + 1  # a fresh token must differ from the revoked ones
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "nbf": nbf,
            "exp": nbf + self.lifetime,
            "role": list(roles),
            "unique_name": username,
            "urn:tier3:account-alias": alias,
            "urn:tier3:location-alias": location,
        }
        return jwt.encode(claims, self.secret, algorithm="HS256", headers={"typ": "JWT"})

    def revoke_all(self, now: float) -> int:
        """Revoke every token issued so far (fault injection); returns the revocation instant."""
        self.revoked_before = max(int(now), self.revoked_before or 0)
        self._cache.clear()
        return self.revoked_before

    def verify(self, authorization: str | None, now: float, max_age: float | None = None) -> Principal:
        if not authorization:
            raise AuthError("no token")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("not a bearer token")
        token = token.strip()
        principal = self._cache.get(token)
        if principal is None:
            try:
                claims = jwt.decode(
                    token,
                    self.secret,
                    algorithms=["HS256"],
                    audience=AUDIENCE,
                    issuer=ISSUER,
                    options={"verify_exp": False, "verify_nbf": False},
                )
                principal = Principal(
                    username=claims["unique_name"],
                    alias=claims["urn:tier3:account-alias"],
                    location=claims["urn:tier3:location-alias"],
                    roles=tuple(claims.get("role", [])),
                    nbf=int(claims["nbf"]),
                    exp=int(claims["exp"]),
                )
            except (jwt.PyJWTError, KeyError, TypeError, ValueError):
                raise AuthError("invalid token") from None
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = principal
        if self.revoked_before is not None and principal.nbf <= self.revoked_before:
            raise AuthError("revoked")
        # exp/nbf on the simulated clock (with two seconds of leeway for nbf)
        if now >= principal.exp or now + 2 < principal.nbf:
            raise AuthError("expired")
        if max_age is not None and now >= principal.nbf + max_age:
            raise AuthError("expired early (fault)")
        return principal

    def to_dict(self) -> dict:
        return {"revoked_before": self.revoked_before}

    def restore(self, data: dict) -> None:
        self.revoked_before = data.get("revoked_before")
        self._cache.clear()
