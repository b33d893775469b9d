"""botbuilder's authentication with its outbound clients built once per server instead of once per activity.

botbuilder builds a new Bot Connector client and a new user-token client for
every incoming activity and every proactive message; each costs 35-55 ms of
msrest set-up (measured), which was most of a click's answer time, and each
new client brings new credentials and so a fresh Entra token request for every
card. This wrapper delegates every check to the wrapped
BotFrameworkAuthentication unchanged and only keeps the clients it builds,
keyed by what they are built for. This server speaks as exactly one bot (its
TEAMS_APP_ID, or anonymously in local mode), so the service URL and audience
identify a client. The clients live in the server's event loop and are closed
with it (`close`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from botframework.connector.auth import (
    AuthenticateRequestResult,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    UserTokenClient,
)

__all__ = ["ReusedClients"]

MAX_CONNECTORS = 32  # service URLs are a handful per region; a bound keeps a misbehaving caller from growing it


class _ReusingConnectorFactory(ConnectorFactory):
    def __init__(self, inner: ConnectorFactory, owner: ReusedClients) -> None:
        self._inner = inner
        self._owner = owner

    async def create(self, service_url: str, audience: str = None) -> Any:  # type: ignore[assignment]  # botbuilder's signature
        # No audience means the default one (botbuilder's own rule), so a reply and a proactive post share a client.
        key = (service_url, audience or self._owner.inner.get_originating_audience())
        client = self._owner.connectors.get(key)
        if client is None:
            client = await self._inner.create(service_url, audience)
            if len(self._owner.connectors) >= MAX_CONNECTORS:
                self._owner.retire(next(iter(self._owner.connectors)))
            self._owner.connectors[key] = client
        return client


class ReusedClients(BotFrameworkAuthentication):
    """A BotFrameworkAuthentication that validates exactly like ``inner`` and reuses the clients it hands out."""

    def __init__(self, inner: BotFrameworkAuthentication) -> None:
        self.inner = inner
        self.connectors: dict[tuple[str, str | None], Any] = {}
        self._token_clients: dict[str | None, UserTokenClient] = {}
        self._retired: list[Any] = []

    async def authenticate_request(self, activity: Any, auth_header: str) -> AuthenticateRequestResult:
        result = await self.inner.authenticate_request(activity, auth_header)
        if result.connector_factory is not None:
            result.connector_factory = _ReusingConnectorFactory(result.connector_factory, self)
        return result

    async def authenticate_streaming_request(self, auth_header: str, channel_id_header: str) -> AuthenticateRequestResult:
        return await self.inner.authenticate_streaming_request(auth_header, channel_id_header)

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return _ReusingConnectorFactory(self.inner.create_connector_factory(claims_identity), self)

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        # Never used by this bot (no sign-in cards), but botbuilder builds one for every activity.
        key = None if claims_identity is None else str(claims_identity.get_claim_value("aud") or "")
        client = self._token_clients.get(key)
        if client is None:
            client = await self.inner.create_user_token_client(claims_identity)
            self._token_clients[key] = client
        return client

    def create_bot_framework_client(self) -> Any:
        return self.inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return self.inner.get_originating_audience()

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        return await self.inner.authenticate_channel_request(auth_header)

    def retire(self, key: tuple[str, str | None]) -> None:
        self._retired.append(self.connectors.pop(key))

    async def close(self) -> None:
        """Close every client's HTTP session (at server stop, in the loop that used them)."""
        clients = [*self.connectors.values(), *self._retired]
        self.connectors.clear()
        self._retired.clear()
        self._token_clients.clear()
        for client in clients:
            closer = getattr(client, "close", None)
            if closer is None:
                continue
            try:
                outcome = closer()
                if asyncio.iscoroutine(outcome):
                    await outcome
            except Exception:  # noqa: BLE001 - closing is best effort at shutdown
                pass
