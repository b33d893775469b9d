"""Teams' parts in one running server: the CloudAdapter with its authentication, the bot, and the card notifier.

Two modes, chosen by ``TEAMS_APP_ID``:

* **Authenticated** (``TEAMS_APP_ID`` set, with ``TEAMS_APP_PASSWORD`` and,
  for a single-tenant bot, ``TEAMS_TENANT_ID``): botbuilder validates every
  request's JWT against the Bot Framework's OpenID metadata (signature with
  the published keys, issuer, audience = our app id, expiry, and that the
  token's ``serviceurl`` is the activity's), and signs outgoing calls with a
  token for the app. ``TEAMS_OPENID_METADATA_URL`` points the validation at
  another OpenID metadata document (sovereign clouds; tests use a loopback one).
* **Local** (no ``TEAMS_APP_ID``): nothing can be validated, so the route
  accepts loopback callers only (the Bot Framework Emulator, tests), and cards
  go out unauthenticated, which only a loopback connector accepts; with a
  non-loopback ``teams.service_url`` the card jobs are left waiting and the
  start-up log says what to set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assistant.config import is_loopback, teams_cards_deliverable

if TYPE_CHECKING:
    from botbuilder.core import CloudAdapterBase
    from botframework.connector.auth import BotFrameworkAuthentication

    from adapters.teams.bot import ApprovalBot
    from adapters.teams.notifier import TeamsNotifier
    from assistant.approvals import ApprovalService
    from assistant.config import AppConfig, Settings
    from assistant.storage import Database

__all__ = ["OPENID_METADATA_ENV", "TeamsRuntime", "build_runtime", "cards_deliverable", "is_loopback", "teams_app_id"]

OPENID_METADATA_ENV = "TEAMS_OPENID_METADATA_URL"
PUBLIC_OPENID_METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
EMULATOR_OPENID_METADATA_URL = "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"
TOKEN_ISSUER = "https://api.botframework.com"
OAUTH_SCOPE = "https://api.botframework.com"
LOGIN_URL_PREFIX = "https://login.microsoftonline.com/"
DEFAULT_TENANT = "botframework.com"
PUBLIC_CALLER_ID = "urn:botframework:azure"


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    text = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    return text or None


def teams_app_id(settings: Settings) -> str | None:
    return (settings.teams_app_id or "").strip() or None


def cards_deliverable(settings: Settings, config: AppConfig) -> tuple[bool, str | None]:
    """Whether approval cards can reach Teams from here, and if not, what to set (the core decides: see assistant.config)."""
    return teams_cards_deliverable(settings, config)


@dataclass
class TeamsRuntime:
    adapter: CloudAdapterBase
    auth: BotFrameworkAuthentication
    bot: ApprovalBot
    notifier: TeamsNotifier | None  # None: cards cannot be delivered from here (see cards_deliverable)
    app_id: str | None  # None: local mode, loopback callers only

    @property
    def local(self) -> bool:
        return self.app_id is None

    async def start(self) -> None:
        from assistant import outbox

        if self.notifier is not None:
            for kind, handler in self.notifier.handlers().items():
                outbox.register(kind, handler)

    async def stop(self) -> None:
        from assistant import outbox

        if self.notifier is not None:
            for kind, handler in self.notifier.handlers().items():
                outbox.unregister(kind, handler)
        close = getattr(self.auth, "close", None)
        if close is not None:
            await close()


def build_auth(settings: Settings, environ: dict[str, str] | None = None) -> BotFrameworkAuthentication:
    """botbuilder's authentication for the mode: the public Bot Framework cloud's settings, the metadata URL overridable."""
    from botframework.connector.auth import AuthenticationConfiguration, BotFrameworkAuthenticationFactory, PasswordServiceClientCredentialFactory

    env = os.environ if environ is None else environ
    app_id = teams_app_id(settings)
    tenant = (settings.teams_tenant_id or "").strip() or None
    credentials = PasswordServiceClientCredentialFactory(app_id, _secret(settings.teams_app_password), tenant)
    metadata = (env.get(OPENID_METADATA_ENV) or "").strip() or PUBLIC_OPENID_METADATA_URL
    if not metadata.startswith(("http://", "https://")):
        raise ValueError(f"{OPENID_METADATA_ENV}: {metadata!r} is not an http(s) URL of an OpenID metadata document")
    return BotFrameworkAuthenticationFactory.create(
        validate_authority=True,
        to_channel_from_bot_login_url=LOGIN_URL_PREFIX + (tenant or DEFAULT_TENANT),
        to_channel_from_bot_oauth_scope=OAUTH_SCOPE,
        to_bot_from_channel_token_issuer=TOKEN_ISSUER,
        oauth_url=OAUTH_SCOPE,
        to_bot_from_channel_open_id_metadata_url=metadata,
        to_bot_from_emulator_open_id_metadata_url=EMULATOR_OPENID_METADATA_URL,
        caller_id=PUBLIC_CALLER_ID,
        credential_factory=credentials,
        auth_configuration=AuthenticationConfiguration(),
    )


def build_runtime(settings: Settings, config: AppConfig, db: Database, service: ApprovalService, environ: dict[str, str] | None = None) -> TeamsRuntime:
    """Everything Teams needs, built from the settings; call it in the event loop that will serve."""
    from botbuilder.integration.aiohttp import CloudAdapter

    from adapters.teams.bot import ApprovalBot
    from adapters.teams.notifier import TeamsNotifier

    import logging

    # msrest warns on every click that Teams' `trigger` field is not in botbuilder's model; it is harmless noise.
    logging.getLogger("msrest.serialization").setLevel(logging.ERROR)
    from adapters.teams.clients import ReusedClients

    auth = ReusedClients(build_auth(settings, environ))
    adapter = CloudAdapter(auth)
    app_id = teams_app_id(settings)
    deliverable, _why = cards_deliverable(settings, config)
    notifier = TeamsNotifier(adapter, config, db, app_id=app_id) if deliverable else None
    return TeamsRuntime(adapter=adapter, auth=auth, bot=ApprovalBot(config, service), notifier=notifier, app_id=app_id)
