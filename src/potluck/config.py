"""Settings from the environment (``POTLUCK_*``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_KEY_MIN_BYTES = 32


class Settings(BaseSettings):
    """Everything Potluck reads from its environment.

    Every field maps to ``POTLUCK_<NAME>``; e.g. ``POTLUCK_DATABASE_URL``.
    """

    # hide_input_in_errors: a refused value (a short secret key) must not end up in a log.
    model_config = SettingsConfigDict(
        env_prefix="POTLUCK_", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = Field(
        default="sqlite:///./potluck.db",
        description="SQLAlchemy URL; SQLite file by default, postgresql+psycopg://… at scale.",
    )
    transport: Literal["inprocess", "rabbitmq"] = "inprocess"
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    secret_key: str | None = Field(
        default=None,
        description="Signs JWTs (at least 32 bytes). Unset or empty: a random key is generated "
        "once and kept in the database.",
    )
    jwt_ttl_seconds: int = 3600
    auth_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How long a process remembers who a token belongs to (0: off). A key "
        "revoked, or a person's role changed, in another process keeps working there at most "
        "this long.",
    )
    log_level: str = "INFO"
    log_json: bool = True
    # sign-in rate limits
    login_max_per_email: int = 5
    login_email_window_seconds: int = 900
    login_max_per_client: int = 20
    login_client_window_seconds: int = 60
    # registration rate limit (each registration costs an argon2 hash: 64 MiB, ~50 ms of CPU)
    register_max_per_client: int = 10
    register_window_seconds: int = 3600
    # idempotency
    idempotency_ttl_seconds: int = 24 * 3600
    idempotency_wait_seconds: float = 10.0
    # event bus
    bus_max_attempts: int = 8
    bus_backoff_base_seconds: float = 1.0
    bus_backoff_max_seconds: float = 300.0
    bus_poll_interval_seconds: float = 0.2
    bus_batch_size: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Deliveries a worker applies per transaction (each in its own savepoint).",
    )
    embedded_workers: bool = Field(
        default=True, description="Run relay and workers inside `potluck serve` (embedded mode)."
    )
    # RabbitMQ transport (POTLUCK_TRANSPORT=rabbitmq; src/potluck/bus/rabbitmq.py)
    broker_namespace: str = Field(
        default="potluck",
        pattern=r"^[A-Za-z0-9_\-.]{1,64}$",
        description="Prefix of every exchange and queue name (`<ns>.events`, `<ns>.<service>`).",
    )
    broker_prefetch: int = Field(
        default=200, ge=1, le=10_000, description="Unacknowledged messages per consumer."
    )
    broker_queue_type: Literal["quorum", "classic"] = Field(
        default="quorum",
        description="Type of the durable queues (quorum: replicated, RabbitMQ 3.8+).",
    )
    broker_consume_wait_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="How long a worker waits for messages the broker still reports as ready.",
    )
    broker_reconnect_max_delay_seconds: float = Field(
        default=30.0, gt=0, description="Cap of the delay between two attempts to reconnect."
    )
    # heartbeats and status (src/potluck/bus/status.py)
    heartbeat_interval_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How often relays, workers and API processes write their heartbeat (0: off).",
    )
    heartbeat_stale_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A process whose last heartbeat is older than this is listed as stale.",
    )
    db_pool_size: int = 20
    # payouts (settings of src/potluck/payouts/ go here)
    bank_adapter: Literal["simulated"] = Field(
        default="simulated", description="The bank payouts are sent through (payouts/bank.py)."
    )
    bank_sim_latency_ms: int = Field(default=0, ge=0, le=60_000)
    bank_sim_transient_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    bank_sim_decline_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    bank_sim_seed: int = 0
    payout_max_attempts: int = Field(default=3, ge=1, le=20)
    payout_retry_base_seconds: float = Field(default=30.0, gt=0)
    payout_processing_timeout_seconds: int = Field(default=300, ge=1)
    payout_recovery_interval_seconds: int = Field(default=60, ge=1)
    payout_batch_size: int = Field(default=20, ge=1, le=500)
    payout_send_concurrency: int = Field(default=8, ge=1, le=64)
    # payments (settings of src/potluck/payments/ and its provider adapters go here)
    payment_provider: Literal["sandbox", "stripe", "razorpay"] = Field(
        default="sandbox", description="Provider new payment intents are created with."
    )
    sandbox_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Signs the sandbox provider's webhooks; unset: derived from the secret key "
        "(HMAC), so every process of one installation agrees.",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where this installation is reached from outside (hosted payment links); "
        "`potluck serve` sets it to its own host and port when unset.",
    )
    payment_reconcile_interval_seconds: int = Field(default=300, ge=1)
    payment_stale_after_seconds: int = Field(
        default=1800, ge=1, description="A requires_payment intent older than this is reconciled."
    )
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str = "https://api.stripe.com"
    razorpay_key_id: SecretStr | None = None
    razorpay_key_secret: SecretStr | None = None
    razorpay_webhook_secret: SecretStr | None = None
    razorpay_api_base: str = "https://api.razorpay.com"
    # merchant settlement (src/potluck/wallets/settlement.py: the daily sweep to the bank)
    merchant_settlement_enabled: bool = True
    merchant_settlement_time: str = Field(
        default="02:00",
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="UTC time (HH:MM) at which yesterday's merchant balances are swept.",
    )
    # webhooks (settings of src/potluck/notify/ go here)
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Timeout of one webhook POST (connect + read)."
    )
    webhook_retry_window_seconds: int = Field(
        default=72 * 3600,
        gt=0,
        description="A delivery is retried until this long after its event, then failed.",
    )
    webhook_backoff_base_seconds: float = Field(
        default=60.0, gt=0, description="Delay after the first failed attempt; doubles each time."
    )
    webhook_backoff_max_seconds: float = Field(
        default=6 * 3600.0, gt=0, description="Cap of the delay between two attempts."
    )
    webhook_lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="Least time a sender owns a claimed delivery; raised automatically to "
        "cover a whole round (timeout x batch / concurrency, plus a margin).",
    )
    webhook_batch_size: int = Field(
        default=20, ge=1, le=500, description="Deliveries one sender claims per round."
    )
    webhook_concurrency: int = Field(
        default=20, ge=1, le=100, description="POSTs one sender runs at the same time."
    )
    webhook_allow_insecure_urls: bool = Field(
        default=False, description="Accept http:// endpoint URLs (development and tests only)."
    )
    webhook_allow_private_urls: bool = Field(
        default=False,
        description="Accept endpoints on loopback/private/link-local addresses (SSRF guard off; "
        "development and tests only).",
    )
    # notify email (src/potluck/notify/email.py: inbox messages also sent as email)
    smtp_host: str | None = Field(
        default=None, description="SMTP server for notification emails; unset: no email is sent."
    )
    smtp_port: int = Field(default=587, gt=0, lt=65536, description="SMTP server port.")
    smtp_username: str | None = Field(default=None, description="SMTP login, if it needs one.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_starttls: bool = Field(default=True, description="Upgrade the SMTP connection (STARTTLS).")
    email_from: str = Field(
        default="Potluck <no-reply@potluck.invalid>", description="From: of notification emails."
    )
    email_timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of one send.")
    email_retry_window_seconds: int = Field(
        default=86_400, gt=0, description="How long an email is retried before it is failed."
    )
    email_backoff_base_seconds: float = Field(
        default=30.0, gt=0, description="First retry delay of an email; doubles up to the max."
    )
    email_backoff_max_seconds: float = Field(
        default=3600.0, gt=0, description="Longest delay between two tries of an email."
    )
    email_batch_size: int = Field(default=50, gt=0, le=1000, description="Emails per round.")
    # plain-language entry (nlp)
    llm_url: str | None = Field(
        default=None,
        description="OpenAI-compatible chat completions endpoint (…/v1/chat/completions) for "
        "POST /v1/groups/{id}/expenses/parse; unset: the offline rule parser only.",
    )
    llm_model: str = Field(default="gpt-4o-mini", description="Model named in LLM requests.")
    llm_api_key: SecretStr | None = Field(
        default=None, description="Bearer token sent to llm_url, if the endpoint needs one."
    )
    llm_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Timeout of one LLM request; then the rule parser."
    )
    # risk (fraud scoring of wallet payments: src/potluck/risk/; tuned on the synthetic set,
    # docs/benchmarks.md "Risk scoring")
    risk_review_threshold: int = Field(
        default=50, ge=1, le=100, description="Score from which a payment is held for review."
    )
    risk_block_threshold: int = Field(
        default=80, ge=1, le=100, description="Score from which a payment is blocked."
    )
    risk_history_days: int = Field(
        default=90, ge=1, description="How far back the payer's history is read."
    )
    risk_history_rows: int = Field(
        default=200, ge=10, le=5000, description="Most recent decisions of the payer read."
    )
    risk_amount_multiple: float = Field(
        default=5.0, gt=1, description="An amount above this multiple of the payer's p90 is odd."
    )
    risk_min_history: int = Field(
        default=3, ge=1, description="Completed payments needed before the history is trusted."
    )
    risk_large_amount: int = Field(
        default=25_000,
        ge=1,
        description="A large payment, in minor units of its currency (first payments, new "
        "recipients).",
    )
    risk_velocity_10m_count: int = Field(
        default=5, ge=1, description="Payments in 10 minutes from which velocity counts."
    )
    risk_velocity_24h_count: int = Field(
        default=20, ge=1, description="Payments in 24 hours from which velocity counts."
    )
    risk_velocity_24h_amount: int = Field(
        default=200_000, ge=1, description="Amount paid in 24 hours (minor units) that is odd."
    )
    risk_new_account_days: int = Field(
        default=7, ge=0, description="An account younger than this adds points."
    )
    risk_failed_window_minutes: int = Field(
        default=60, ge=1, description="Window in which failed or refused attempts are counted."
    )
    risk_failed_count: int = Field(
        default=3, ge=1, description="Failed or refused attempts in the window that add points."
    )
    risk_fan_in_senders: int = Field(
        default=4,
        ge=2,
        description="Distinct people who paid the payer in 24 hours from which paying out to "
        "new recipients looks like a money mule.",
    )
    forwarded_allow_ips: str | None = Field(
        default=None,
        description="Addresses of trusted reverse proxies (comma-separated, or '*'): their "
        "X-Forwarded-For names the client, for sign-in limits and anonymous idempotency scopes.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description="Largest request body accepted; a larger one is 413 payload_too_large.",
    )
    # web app (src/potluck/web/)
    web_session_ttl_seconds: int = Field(
        default=14 * 24 * 3600, ge=60, description="How long a browser stays signed in."
    )

    @field_validator("secret_key")
    @classmethod
    def _strong_secret_key(cls, value: str | None) -> str | None:
        """HS256 keys shorter than the hash (32 bytes) can be brute-forced offline from one
        token (RFC 7518 3.2); refuse to start rather than sign with one."""
        if not value:
            return None  # unset: the generated key is used
        size = len(value.encode())
        if size < SECRET_KEY_MIN_BYTES:
            raise ValueError(
                f"POTLUCK_SECRET_KEY is {size} bytes long; it must be at least "
                f"{SECRET_KEY_MIN_BYTES} bytes (e.g. `python -c 'import secrets; "
                f"print(secrets.token_urlsafe(48))'`), or unset to use a generated key"
            )
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
