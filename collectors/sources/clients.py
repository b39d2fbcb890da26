"""The API clients a collector's settings describe (Microsoft Graph, TOPdesk): every missing
piece named at once, secrets read the one way collectors read them (``secret_setting``)."""

from __future__ import annotations

from collectors.settings import CollectorSettings, SettingsProblem, secret_setting
from collectors.sources.graph_api import Graph
from collectors.sources.rest import Http
from collectors.sources.topdesk_api import TopDesk


def http_client(settings: CollectorSettings) -> Http:
    """Requests with the settings' timeout and retries."""
    return Http(timeout_s=settings.api_timeout_s, retries=settings.api_retries)


def graph_client(
    settings: CollectorSettings, tenant: str | None = None, client_id: str | None = None
) -> Graph:
    """Microsoft Graph for the tenant and app registration the options (else the settings) name."""
    tenant, client_id = tenant or settings.graph_tenant, client_id or settings.graph_client_id
    secret = secret_setting(
        settings.graph_client_secret, settings.graph_client_secret_file, "CHARGEBACK_GRAPH_CLIENT_SECRET"
    )
    _needs(
        "--graph",
        [
            *([] if tenant else ["a tenant (--graph-tenant or CHARGEBACK_GRAPH_TENANT)"]),
            *([] if client_id else ["a client id (--graph-client-id or CHARGEBACK_GRAPH_CLIENT_ID)"]),
            *([] if secret else ["a client secret (CHARGEBACK_GRAPH_CLIENT_SECRET or its _FILE)"]),
        ],
    )
    assert tenant and client_id and secret
    return Graph(
        tenant,
        client_id,
        secret,
        graph_url=settings.graph_url,
        authority_url=settings.graph_authority_url,
        http=http_client(settings),
    )


def topdesk_client(settings: CollectorSettings, url: str, user: str | None = None) -> TopDesk:
    """TOPdesk at ``url`` as the operator the option (else the settings) names."""
    user = user or settings.topdesk_user
    password = secret_setting(
        settings.topdesk_password, settings.topdesk_password_file, "CHARGEBACK_TOPDESK_PASSWORD"
    )
    _needs(
        "--topdesk-url",
        [
            *([] if user else ["an operator (--topdesk-user or CHARGEBACK_TOPDESK_USER)"]),
            *([] if password else ["an application password (CHARGEBACK_TOPDESK_PASSWORD or its _FILE)"]),
        ],
    )
    assert user and password
    return TopDesk(url, user, password, page_size=settings.topdesk_page_size, http=http_client(settings))


def _needs(option: str, missing: list[str]) -> None:
    if missing:
        wanted = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " and " + missing[-1]
        raise SettingsProblem(f"{option} needs {wanted}")
