"""Every table of settleguard, in one MetaData (the Alembic target).

Money columns are BIGINT fen and end in ``_fen``. The tables written in bulk by the
settlement run (transactions, settlements, ledger postings, payouts, payout events) carry
no foreign keys: their rows are derived in one INSERT ... SELECT from rows that exist in
the same transaction, and PostgreSQL's per-row FK triggers cost about 5 s of a 10-million
transaction run (docs/benchmarks.md); ``ledger check`` looks for orphans instead.
Transactions are immutable and clustered on ``(cycle_date, merchant_id, external_ref)``
(WITHOUT ROWID on SQLite), so a settlement run reads one contiguous key range already
grouped by merchant.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

from settleguard.db.types import EpochMicros, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

fee_schedules = Table(
    "fee_schedules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(32), nullable=False, unique=True),
    Column("name_zh", String(128), nullable=False),
    Column("name_en", String(128), nullable=False),
)

fee_rates = Table(
    "fee_rates",
    metadata,
    Column("schedule_id", Integer, ForeignKey("fee_schedules.id"), primary_key=True),
    Column("card_type", SmallInteger, primary_key=True),
    Column("rate_ppm", Integer, nullable=False),
    Column("cap_fen", BigInteger, nullable=True),
)

merchants = Table(
    "merchants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("merchant_no", String(20), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # personal | corporate
    Column("registered_name", String(128), nullable=False),
    Column("legal_person", String(64), nullable=False),
    Column("business", String(64), nullable=False),
    Column("mcc", String(4), nullable=False),
    Column("city", String(32), nullable=False),
    Column("cycle", String(4), nullable=False),  # T1 | D0
    Column("fee_schedule_id", Integer, ForeignKey("fee_schedules.id"), nullable=False),
    Column("status", String(16), nullable=False),  # active | frozen | closed
    Column("created_at", UTCDateTime, nullable=False),
    # Added by migration 0010 (merchant onboarding, merchants/onboarding.py). Null for merchants made before it.
    Column("entity_kind", String(16), nullable=True),  # individual (个体工商户) | enterprise (企业) | micro (小微)
    Column("uscc", String(18), nullable=True),  # 统一社会信用代码 (public registry data), businesses only
    Column("legal_person_id_masked", String(18), nullable=True),  # region + last 4 digits only
    Column("legal_person_id_hash", String(64), nullable=True),  # HMAC-SHA256 under a key derived from the card key
    Column("id_key_version", Integer, nullable=True),  # the card key version of legal_person_id_hash
    Column("contact_mobile", String(16), nullable=True),
    Column("fee_effective_from", Date, nullable=True),  # the fee contract read at onboarding
    Column("status_reason", String(256), nullable=True),  # why the last freeze / unfreeze / close
    Column("status_changed_at", UTCDateTime, nullable=True),
    Column("import_id", Integer, nullable=True),  # the merchant file that registered it (imports.id)
    Index("ix_merchants_uscc", "uscc"),
    Index("ix_merchants_legal_person_id_hash", "legal_person_id_hash"),
)

settlement_accounts = Table(
    "settlement_accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("merchant_id", Integer, ForeignKey("merchants.id"), nullable=False),
    Column("account_kind", String(16), nullable=False),  # personal | corporate
    Column("holder_name", String(128), nullable=False),
    Column("bank_code", String(16), nullable=False),
    Column("bank_name", String(64), nullable=False),
    Column("card_type", String(4), nullable=False),  # DC | CC | SCC | PC
    Column("pan_masked", String(32), nullable=False),
    Column("pan_cipher", LargeBinary, nullable=False),
    Column("pan_nonce", LargeBinary, nullable=False),
    Column("key_version", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # active | replaced | unusable
    Column("bound_at", UTCDateTime, nullable=False),
    Column("replaced_at", UTCDateTime, nullable=True),
    # Added by migration 0002 (cards): the bank's answer to the last status inquiry.
    Column("card_status", String(16), nullable=True),  # normal | lost | stolen | frozen | closed | ...
    Column("last_status_check_at", UTCDateTime, nullable=True),
    Column("verified_at", UTCDateTime, nullable=True),  # four-element verification passed
    Index("ix_settlement_accounts_merchant_status", "merchant_id", "status"),
    Index("ix_settlement_accounts_status_checked", "status", "last_status_check_at"),
    Index("ix_settlement_accounts_pan_masked", "pan_masked"),  # 0010: duplicate cards, decrypting only candidates
)

terminals = Table(
    "terminals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("merchant_id", Integer, ForeignKey("merchants.id"), nullable=False),
    Column("terminal_no", String(8), nullable=False),
    Column("model", String(32), nullable=False),
    Column("firmware", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    UniqueConstraint("merchant_id", "terminal_no", name="uq_terminals_merchant_terminal"),
    Column("serial_no", String(32), nullable=True),  # 0010: the device's serial number (SN, 机身号)
    Index("ix_terminals_serial_no", "serial_no"),
    # 0011 (merchants/terminals.py): where the device stands, and when it was retired (status 'retired').
    Column("address", String(128), nullable=True),
    Column("retired_at", UTCDateTime, nullable=True),
)

# 0011 (merchants/contracts.py): fee contracts with history, one row per contract version, never updated.
# The fee of a transaction is the contract in force on its business day (imports/transactions.py); a
# merchant without rows here pays its merchants.fee_schedule_id.
fee_contracts = Table(
    "fee_contracts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("merchant_id", Integer, ForeignKey("merchants.id"), nullable=False),
    Column("schedule_id", Integer, ForeignKey("fee_schedules.id"), nullable=False),
    Column("effective_from", Date, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("reason", String(256), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # 0019: the rates the contract was signed with {debit_ppm, debit_cap_fen, credit_ppm, qr_ppm} (fees/audit.py)
    Column("rates", JSON, nullable=True),
    UniqueConstraint("merchant_id", "effective_from", name="uq_fee_contracts_merchant_effective"),
)

# 0011 (merchants/terminals.py): every terminal change (register, move 移机, replace, retire), never updated.
terminal_events = Table(
    "terminal_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("terminal_id", Integer, ForeignKey("terminals.id"), nullable=False),
    Column("merchant_id", Integer, ForeignKey("merchants.id"), nullable=False),
    Column("action", String(16), nullable=False),  # add | move | replace | retire
    Column("old_serial_no", String(32), nullable=True),
    Column("new_serial_no", String(32), nullable=True),
    Column("old_address", String(128), nullable=True),
    Column("new_address", String(128), nullable=True),
    Column("actor", String(64), nullable=False),
    Column("reason", String(256), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_terminal_events_terminal", "terminal_id"),
)

imports = Table(
    "imports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("filename", String(512), nullable=False),
    Column("encoding", String(16), nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    UniqueConstraint("kind", "sha256", name="uq_imports_kind_sha256"),
)

transactions = Table(
    "transactions",
    metadata,
    Column("cycle_date", Date, primary_key=True),
    Column("merchant_id", Integer, primary_key=True),
    Column("external_ref", String(32), primary_key=True),
    Column("terminal_id", Integer, nullable=True),
    Column("kind", SmallInteger, nullable=False),  # settlement.model.TxnKind
    Column("card_type", SmallInteger, nullable=False),  # settlement.model.CardType
    Column("amount_fen", BigInteger, nullable=False),  # always >= 0; kind gives the sign
    Column("fee_fen", BigInteger, nullable=False),  # signed fee charged on this row
    Column("occurred_at", EpochMicros, nullable=False),  # UTC microseconds since the epoch
    Column("import_id", Integer, nullable=False),
    # Migration 0016 (clearing reconciliation; optional in the file, NULL when absent): 系统跟踪号, 检索参考号,
    # 授权码 and the card token (HMAC of the card number under a key derived from the card key; never the PAN)
    Column("stan", String(6), nullable=True),
    Column("rrn", String(12), nullable=True),
    Column("auth_code", String(6), nullable=True),
    Column("card_token", String(32), nullable=True),
    sqlite_with_rowid=False,
)

settlement_runs = Table(
    "settlement_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("cycle_date", Date, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("merchants_settled", Integer, nullable=False, server_default="0"),
    Column("txn_count", BigInteger, nullable=False, server_default="0"),
    Column("net_fen", BigInteger, nullable=False, server_default="0"),
    Column("payouts_created", Integer, nullable=False, server_default="0"),
)

settlements = Table(
    "settlements",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, nullable=False),
    Column("merchant_id", Integer, nullable=False),
    Column("cycle_date", Date, nullable=False),
    Column("cycle", String(4), nullable=False),
    Column("value_date", Date, nullable=False),
    Column("txn_count", Integer, nullable=False),
    Column("sale_fen", BigInteger, nullable=False),
    Column("void_fen", BigInteger, nullable=False),
    Column("refund_fen", BigInteger, nullable=False),
    Column("reversal_fen", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
    Column("net_fen", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("merchant_id", "cycle_date", name="uq_settlements_merchant_cycle"),
    Index("ix_settlements_run", "run_id"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(24), nullable=False),
    Column("merchant_id", Integer, nullable=True),
    Column("payout_id", Integer, nullable=True),
    Column("run_id", Integer, nullable=True),
    Column("memo", String(256), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_ledger_entries_run", "run_id"),
    Index("ix_ledger_entries_payout", "payout_id"),
)

ledger_postings = Table(
    "ledger_postings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("entry_id", Integer, nullable=False),
    Column("account", String(32), nullable=False),
    Column("merchant_id", Integer, nullable=True),
    Column("amount_fen", BigInteger, nullable=False),  # debit > 0, credit < 0
    Index("ix_ledger_postings_entry", "entry_id"),
    Index("ix_ledger_postings_merchant_account", "merchant_id", "account", "amount_fen"),
)

payouts = Table(
    "payouts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("merchant_id", Integer, nullable=False),
    # One payout per merchant and cycle is enforced by the unique idempotency key
    # (SG<cycle day>M<merchant id>); a second unique index here would only slow the run.
    Column("settlement_id", Integer, nullable=True),
    Column("cycle_date", Date, nullable=False),
    Column("value_date", Date, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False, server_default="CNY"),
    Column("status", String(24), nullable=False),
    Column("idempotency_key", String(35), nullable=False, unique=True),
    Column("account_id", Integer, nullable=True),
    Column("attempt_count", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_code", String(32), nullable=True),
    Column("last_message", String(512), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Added by migration 0003 (payout lifecycle):
    # a part of a split payout names its parent; its key is the parent's key + "S<n>".
    Column("parent_id", Integer, nullable=True),
    # each new instruction after a release gets a new key: idempotency_key + "R<n>" (n > 0).
    Column("instruction_no", Integer, nullable=False, server_default="0"),
    Column("category", String(32), nullable=True),  # latest diagnosis (failure-taxonomy.md)
    # migration 0007: amounts in the index for counts and sums per status (PostgreSQL), and a partial
    # index for the category filter of the API and the console
    Index("ix_payouts_status_value_date", "status", "value_date", postgresql_include=["amount_fen"]),
    Index("ix_payouts_category", "category", postgresql_where=text("category IS NOT NULL"),
          sqlite_where=text("category IS NOT NULL")),
    Index("ix_payouts_merchant", "merchant_id"),
    Index("ix_payouts_parent", "parent_id"),
)

payout_attempts = Table(
    "payout_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("payout_id", Integer, ForeignKey("payouts.id"), nullable=False),
    Column("attempt_no", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # send | inquiry
    Column("idempotency_key", String(35), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("account_id", Integer, ForeignKey("settlement_accounts.id"), nullable=True),
    Column("amount_fen", BigInteger, nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("responded_at", UTCDateTime, nullable=True),
    Column("outcome", String(16), nullable=True),  # succeeded | failed | unknown
    Column("code", String(32), nullable=True),
    Column("message", String(512), nullable=True),
    Column("raw_response", Text, nullable=True),
    # Added by migration 0003: the diagnosis of this answer and what was decided.
    Column("category", String(32), nullable=True),
    Column("rule_id", String(64), nullable=True),
    Column("decision", String(16), nullable=True),
    Column("batch_ref", String(80), nullable=True),  # file channels: "<MsgId>|<PmtInfId>" of the pain.001
    UniqueConstraint("payout_id", "attempt_no", name="uq_payout_attempts_payout_no"),
    Index("ix_payout_attempts_key", "idempotency_key"),
    Index("ix_payout_attempts_batch_ref", "batch_ref"),
)

payout_events = Table(
    "payout_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("payout_id", Integer, nullable=False),
    Column("from_status", String(24), nullable=True),
    Column("to_status", String(24), nullable=False),
    Column("reason", String(256), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_payout_events_payout", "payout_id"),
)


# --- Settlement cards (migration 0002) -------------------------------------------------

card_bins = Table(
    "card_bins",
    metadata,
    # The operator's official BIN table (`settleguard bins import`); it takes precedence over the
    # packaged cards/bins.csv: longest prefix across both, this table wins on an equal prefix.
    Column("bin", String(10), primary_key=True),
    Column("length", SmallInteger, primary_key=True),
    Column("bank_code", String(16), nullable=False),
    Column("bank_name_zh", String(64), nullable=False),
    Column("bank_name_en", String(128), nullable=False),
    Column("card_type", String(4), nullable=False),  # DC | CC | SCC | PC
    Column("imported_at", UTCDateTime, nullable=False),
)

card_verifications = Table(
    "card_verifications",
    metadata,
    # Every four-element verification and status inquiry attempt, including refused ones (audit).
    Column("id", Integer, primary_key=True),
    Column("merchant_id", Integer, ForeignKey("merchants.id"), nullable=False),
    Column("account_id", Integer, ForeignKey("settlement_accounts.id"), nullable=True),
    Column("kind", String(16), nullable=False),  # four_elements | status
    Column("pan_masked", String(32), nullable=False),
    Column("result", String(24), nullable=False),  # pending | match | mismatch | card_problem | error | ...
    Column("bank_code", String(32), nullable=True),
    Column("bank_message", String(256), nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Index("ix_card_verifications_merchant_kind_at", "merchant_id", "kind", "at"),
)

card_events = Table(
    "card_events",
    metadata,
    # card_bound | card_rebound | status_changed | marked_unusable; issue 5 releases held payouts
    # on card_rebound.
    Column("id", Integer, primary_key=True),
    Column("merchant_id", Integer, ForeignKey("merchants.id"), nullable=False),
    Column("account_id", Integer, ForeignKey("settlement_accounts.id"), nullable=True),
    Column("kind", String(24), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_card_events_merchant", "merchant_id"),
    Index("ix_card_events_kind_id", "kind", "id"),
)

notifications = Table(
    "notifications",
    metadata,
    # Outbox: written in the same transaction as the event that causes it; delivery comes later.
    Column("id", Integer, primary_key=True),
    Column("merchant_id", Integer, ForeignKey("merchants.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("dedupe_key", String(128), nullable=False, unique=True),
    Column("payload", JSON, nullable=False),  # {"zh": ..., "en": ..., plus facts}
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Index("ix_notifications_delivered_at", "delivered_at"),
)


# --- Payout lifecycle (migration 0003) --------------------------------------------------

bank_circuits = Table(
    "bank_circuits",
    metadata,
    # One circuit breaker per receiving bank (payouts.model.Circuit): closed, open or half_open.
    Column("bank_code", String(16), primary_key=True),
    Column("state", String(12), nullable=False),
    Column("failures", Integer, nullable=False),  # system faults in the current window
    Column("window_started_at", UTCDateTime, nullable=True),
    Column("opened_at", UTCDateTime, nullable=True),
    Column("probe_payout_id", Integer, nullable=True),  # the one payout sent while half open
    Column("updated_at", UTCDateTime, nullable=False),
)

ops_alerts = Table(
    "ops_alerts",
    metadata,
    # Alerts for the platform's own staff (treasury: provisions account short; ops: bank paused).
    Column("id", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),  # insufficient_funds | circuit_open | ...
    Column("dedupe_key", String(128), nullable=False, unique=True),
    Column("bank_code", String(16), nullable=True),
    Column("message", Text, nullable=False),  # zh first, then en
    Column("created_at", UTCDateTime, nullable=False),
    Column("acknowledged_at", UTCDateTime, nullable=True),
)

worker_cursors = Table(
    "worker_cursors",
    metadata,
    # How far the worker has read an append-only table (e.g. card_events for releases).
    Column("name", String(32), primary_key=True),
    Column("last_id", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

report_imports = Table(
    "report_imports",
    metadata,
    # Bank status reports applied (pain.002, camt.054): a file is applied once, by SHA-256.
    Column("id", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("filename", String(256), nullable=False),
    Column("kind", String(16), nullable=False),  # pain.002 | camt.054
    Column("statuses", Integer, nullable=False),
    Column("applied", Integer, nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
)


# --- People in the loop: notices, cases, audit (migration 0004) -------------------------

notification_preferences = Table(
    "notification_preferences",
    metadata,
    # How a merchant wants to be told. The webhook secret is sealed like a card number (vault).
    Column("merchant_id", Integer, ForeignKey("merchants.id"), primary_key=True),
    Column("webhook_url", String(512), nullable=True),
    Column("webhook_secret_cipher", LargeBinary, nullable=True),
    Column("webhook_secret_nonce", LargeBinary, nullable=True),
    Column("webhook_key_version", Integer, nullable=True),
    Column("email", String(254), nullable=True),
    Column("sms_phone", String(20), nullable=True),
    Column("channels", JSON, nullable=False),  # e.g. ["webhook", "email", "sms"]
    Column("lang", String(8), nullable=False, server_default="zh"),
    Column("updated_at", UTCDateTime, nullable=False),
)

notification_deliveries = Table(
    "notification_deliveries",
    metadata,
    # The delivery queue: one row per notification and channel. A worker claims a row with a lease
    # (lease_until); a worker killed mid-delivery leaves the lease to expire and the row is retried.
    Column("id", Integer, primary_key=True),
    Column("notification_id", Integer, ForeignKey("notifications.id"), nullable=False),
    Column("channel", String(16), nullable=False),  # webhook | email | sms
    Column("target", String(512), nullable=False),  # URL, address or masked phone
    Column("status", String(16), nullable=False),  # pending | delivering | delivered | gave_up
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("notification_id", "channel", name="uq_notification_deliveries_notification_channel"),
    Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
)

notification_attempts = Table(
    "notification_attempts",
    metadata,
    # The delivery log: every try, with its outcome.
    Column("id", Integer, primary_key=True),
    Column("delivery_id", Integer, ForeignKey("notification_deliveries.id"), nullable=False),
    Column("attempt_no", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("ok", Boolean, nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("detail", String(512), nullable=True),
    Index("ix_notification_attempts_delivery", "delivery_id"),
)

cases = Table(
    "cases",
    metadata,
    # 工单. status: open | waiting_bank | waiting_merchant | resolved | closed.
    Column("id", Integer, primary_key=True),
    Column("merchant_id", Integer, ForeignKey("merchants.id"), nullable=False),
    Column("category", String(32), nullable=False),  # failure taxonomy, or returned / repeated_failures
    Column("priority", String(8), nullable=False),  # p1 (urgent) .. p4
    Column("status", String(20), nullable=False),
    Column("title", String(256), nullable=False),
    Column("source", String(16), nullable=False),  # auto | manual
    Column("dedupe_key", String(128), nullable=True, unique=True),  # auto cases: one per cause
    Column("assignee", String(64), nullable=True),
    Column("sla_due_at", UTCDateTime, nullable=False),
    Column("resolution", Text, nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Index("ix_cases_status_sla", "status", "sla_due_at"),
    Index("ix_cases_merchant", "merchant_id"),
)

case_payouts = Table(
    "case_payouts",
    metadata,
    Column("case_id", Integer, ForeignKey("cases.id"), primary_key=True),
    Column("payout_id", Integer, ForeignKey("payouts.id"), primary_key=True),
    Index("ix_case_payouts_payout", "payout_id"),
)

case_contacts = Table(
    "case_contacts",
    metadata,
    # 联系记录: who was contacted, how, when, what was said.
    Column("id", Integer, primary_key=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False),
    Column("party", String(24), nullable=False),  # bank_support | platform_hotline | merchant
    Column("method", String(16), nullable=False),  # phone | online | on_site
    Column("contact_name", String(128), nullable=True),  # e.g. the bank agent's name or number
    Column("at", UTCDateTime, nullable=False),  # when the contact happened
    Column("summary", Text, nullable=False),
    Column("recorded_by", String(64), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Index("ix_case_contacts_case", "case_id"),
)

case_notes = Table(
    "case_notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False),
    Column("author", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_case_notes_case", "case_id"),
)

audit_events = Table(
    "audit_events",
    metadata,
    # Append-only, hash-chained: hash = SHA-256(prev_hash + canonical JSON of the event). Bulk
    # changes (a settlement run's payouts, a batch of status changes) are one event whose payload
    # carries the id range and a digest of the rows it covers (e.g. payout_events).
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("kind", String(48), nullable=False),
    Column("subject_type", String(24), nullable=True),
    Column("subject_id", String(64), nullable=True),
    Column("payload", Text, nullable=False),  # canonical JSON (sorted keys, no spaces)
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Index("ix_audit_events_subject", "subject_type", "subject_id"),
)

users = Table(
    "users",
    metadata,
    # People and machine clients of the API and web interface (access/model.py: roles). A merchant
    # user belongs to exactly one merchant; staff users (operator, support, auditor) to none.
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),  # argon2id (PHC string), never the password
    Column("role", String(16), nullable=False),  # operator | support | auditor | merchant
    Column("merchant_id", Integer, ForeignKey("merchants.id"), nullable=True),
    Column("display_name", String(128), nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("role IN ('operator', 'support', 'auditor', 'merchant')", name="role"),
    CheckConstraint("(role = 'merchant' AND merchant_id IS NOT NULL) OR (role <> 'merchant' AND merchant_id IS NULL)",
                    name="merchant_scope"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    # Bearer tokens for machine clients: only the SHA-256 of the token is kept, and a short prefix
    # so people can tell their tokens apart.
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Index("ix_api_tokens_user", "user_id"),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    # Browser sessions: the cookie holds a random id, the table its SHA-256, and the session's CSRF token.
    Column("id", Integer, primary_key=True),
    Column("session_sha256", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_web_sessions_user", "user_id"),
    Index("ix_web_sessions_expires", "expires_at"),
)

login_failures = Table(
    "login_failures",
    metadata,
    # Failed logins, for the rate limit (per username and per client address within a window).
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False),
    Column("client", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_login_failures_username_at", "username", "at"),
    Index("ix_login_failures_client_at", "client", "at"),
)

card_keys = Table(
    "card_keys",
    metadata,
    # Migration 0008: the card-encryption keys this database's cards are sealed with, one row per key
    # version: a keyed fingerprint of the key (HMAC-SHA256 under a fixed label, never the key itself), so a
    # command that holds another key refuses before it reads or writes a card (cards/custody.py).
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("fingerprint", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime, nullable=True),  # no card is sealed under it any more
)

database_marks = Table(
    "database_marks",
    metadata,
    # Migration 0008: facts about the database itself, e.g. ``demo`` when ``settleguard demo`` created it
    # (the demo replaces only a database it made).
    Column("name", String(32), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

bank_statements = Table(
    "bank_statements",
    metadata,
    # Migration 0012 (reconciliation/): one row per imported statement (camt.053 Stmt, camt.054 Ntfctn or
    # bank file). A file may carry several statements, hence unique (file_sha256, statement_id); a re-sent
    # statement (same account and id, another file) keeps its first row. Balances are signed fen.
    Column("id", Integer, primary_key=True),
    Column("file_sha256", String(64), nullable=False),
    Column("source", String(16), nullable=False),
    Column("statement_id", String(80), nullable=False),
    Column("account", String(80), nullable=False),
    Column("opening_fen", BigInteger, nullable=True),
    Column("opening_date", Date, nullable=True),
    Column("closing_fen", BigInteger, nullable=True),
    Column("closing_date", Date, nullable=True),
    Column("previous_closing_fen", BigInteger, nullable=True),
    Column("previous_closing_date", Date, nullable=True),
    Column("line_count", Integer, nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    UniqueConstraint("file_sha256", "statement_id", name="uq_bank_statements_file_statement"),
    UniqueConstraint("account", "statement_id", name="uq_bank_statements_account_statement"),
)

bank_lines = Table(
    "bank_lines",
    metadata,
    # Migration 0012: normalised bank lines (reconciliation/model.BankLine); written in bulk, no foreign key.
    # (account, statement_id, entry_ref) is unique: a statement imported twice leaves one copy of each line.
    Column("id", Integer, primary_key=True),
    Column("statement_row_id", Integer, nullable=False),
    Column("source", String(16), nullable=False),
    Column("account", String(80), nullable=False),
    Column("statement_id", String(80), nullable=False),
    Column("entry_ref", String(80), nullable=False),
    Column("acct_svcr_ref", String(80), nullable=True),
    Column("end_to_end_id", String(80), nullable=True),
    Column("pmt_inf_id", String(80), nullable=True),
    Column("batch_count", Integer, nullable=True),
    Column("batch_total_fen", BigInteger, nullable=True),
    Column("amount_fen", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("direction", String(4), nullable=False),
    Column("reversal", Boolean, nullable=False),
    Column("status", String(4), nullable=False),
    Column("booking_date", Date, nullable=True),
    Column("value_date", Date, nullable=True),
    Column("raw", Text, nullable=False),
    UniqueConstraint("account", "statement_id", "entry_ref", name="uq_bank_lines_entry"),
    Index("ix_bank_lines_end_to_end_id", "end_to_end_id"),
    Index("ix_bank_lines_booking_date", "booking_date"),
    Index("ix_bank_lines_pmt_inf_id", "pmt_inf_id"),
    Index("ix_bank_lines_statement_row_id", "statement_row_id"),
)

recon_runs = Table(
    "recon_runs",
    metadata,
    # Migration 0013: one row per ``recon run --date D`` (reconciliation/breaks.py).
    Column("id", Integer, primary_key=True),
    Column("run_date", Date, nullable=False),
    Column("window_days", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("lines_considered", Integer, nullable=False, server_default="0"),
    Column("matched", Integer, nullable=False, server_default="0"),
    Column("breaks_open", Integer, nullable=False, server_default="0"),
    Column("breaks_cleared", Integer, nullable=False, server_default="0"),
    Column("drift_fen", BigInteger, nullable=True),
    Index("ix_recon_runs_run_date", "run_date"),
)

recon_matches = Table(
    "recon_matches",
    metadata,
    # Migration 0013: a booked bank line matched to a payout; rule = e2e | batch | e2e_split | amount_date.
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, nullable=False),
    Column("bank_line_id", Integer, nullable=False),
    Column("payout_id", Integer, nullable=False),
    Column("attempt_id", Integer, nullable=True),
    Column("rule", String(24), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("matched_at", UTCDateTime, nullable=False),
    UniqueConstraint("bank_line_id", "payout_id", name="uq_recon_matches_line_payout"),
    Index("ix_recon_matches_payout_id", "payout_id"),
)

recon_breaks = Table(
    "recon_breaks",
    metadata,
    # Migration 0013: one row per natural key (type + subject): a re-run updates, never duplicates, a break.
    Column("id", Integer, primary_key=True),
    Column("break_key", String(200), nullable=False),
    Column("type", String(24), nullable=False),  # reconciliation/breaks.BreakType
    Column("status", String(10), nullable=False),  # open | cleared | resolved
    Column("amount_fen", BigInteger, nullable=True),
    Column("end_to_end_id", String(80), nullable=True),
    Column("bank_ref", String(80), nullable=True),
    Column("booking_date", Date, nullable=True),
    Column("payout_id", Integer, nullable=True),
    Column("bank_line_id", Integer, nullable=True),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("cleared_at", UTCDateTime, nullable=True),
    Column("detail", JSON, nullable=False),  # bounded, card numbers masked
    Column("run_id", Integer, nullable=False),
    Column("last_run_id", Integer, nullable=False),
    UniqueConstraint("break_key", name="uq_recon_breaks_key"),
    CheckConstraint("status IN ('open', 'cleared', 'resolved')", name="status"),
    Index("ix_recon_breaks_status_type", "status", "type"),
    Index("ix_recon_breaks_payout_id", "payout_id"),
)

# --- 0014 (helper A: reconciliation follow-up and balance proof) — tables/columns of 0014 below this line ---

recon_actions = Table(
    "recon_actions",
    metadata,
    # Migration 0014: what the follow-up did about a break (reconciliation/followup.py), once per (break, action):
    # inquiry (ledger_only -> result_unknown), return (reversal -> returned -> held), case (aged: 工单) or
    # alert (aged, no merchant to file a case under).
    Column("id", Integer, primary_key=True),
    Column("break_id", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("payout_id", Integer, nullable=True),
    Column("case_id", Integer, nullable=True),
    Column("note", Text, nullable=False),  # bounded, card numbers masked
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("break_id", "action", name="uq_recon_actions_break_action"),
)

recon_balance_proofs = Table(
    "recon_balance_proofs",
    metadata,
    # Migration 0014: each run's proof that the bank's closing balance equals the ledger's settlement account
    # (bank_provisions) balance, or which open breaks and payouts in transit explain the difference (fen).
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, nullable=False, unique=True),
    Column("as_of", Date, nullable=False),
    Column("bank_closing_fen", BigInteger, nullable=False),
    Column("ledger_fen", BigInteger, nullable=False),
    Column("drift_fen", BigInteger, nullable=False),  # bank closing - ledger
    Column("explained_fen", BigInteger, nullable=False),  # by open breaks and payouts in transit
    Column("unexplained_fen", BigInteger, nullable=False),
    Column("detail", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# --- 0015 (helper B: break resolution, maker-checker, adjustments) — below this line ---
recon_resolutions = Table(
    "recon_resolutions",
    metadata,
    # Migration 0015: a break's resolution (差错处理), proposed by one operator, approved or rejected by another
    # (reconciliation/resolve.py). live_break_id = break_id while proposed or approved (NULL once rejected):
    # unique, so a break has at most one live resolution and its money moves at most once.
    Column("id", Integer, primary_key=True),
    Column("break_id", Integer, nullable=False),
    Column("break_type", String(24), nullable=False),
    Column("action", String(24), nullable=False),  # resolve.Action
    Column("status", String(10), nullable=False),  # proposed | approved | rejected
    Column("amount_fen", BigInteger, nullable=True),  # the break's amount when proposed
    Column("note", String(2000), nullable=False),
    Column("proposed_by", String(64), nullable=False),
    Column("proposed_at", UTCDateTime, nullable=False),
    Column("decided_by", String(64), nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("decision_note", String(2000), nullable=True),
    Column("live_break_id", Integer, nullable=True),
    Column("entry_id", Integer, nullable=True),  # the ledger entry the approval posted
    Column("payout_id", Integer, nullable=True),
    Column("txn_cycle_date", Date, nullable=True),  # the adjustment transaction (clearing breaks)
    Column("txn_merchant_id", Integer, nullable=True),
    Column("txn_external_ref", String(32), nullable=True),
    Column("receivable_status", String(10), nullable=True),  # open | settled (bank_receivable)
    Column("settled_line_id", Integer, nullable=True),  # the bank's refund line
    Column("settled_entry_id", Integer, nullable=True),
    Column("settled_at", UTCDateTime, nullable=True),
    UniqueConstraint("live_break_id", name="uq_recon_resolutions_live_break_id"),
    UniqueConstraint("settled_line_id", name="uq_recon_resolutions_settled_line_id"),
    CheckConstraint("status IN ('proposed', 'approved', 'rejected')", name="status"),
    Index("ix_recon_resolutions_break_id", "break_id"),
    Index("ix_recon_resolutions_receivable_status", "receivable_status"),
)

# --- 0016 (helper C: clearing file lines) — below this line ---

clearing_files = Table(
    "clearing_files",
    metadata,
    # Migration 0016: one row per imported card-network clearing file (UnionPay 全渠道 INN detail or RD summary).
    Column("id", Integer, primary_key=True),
    Column("file_sha256", String(64), nullable=False),
    Column("kind", String(8), nullable=False),  # inn | rd
    Column("filename", String(200), nullable=False),
    Column("clearing_date", Date, nullable=False),
    Column("owner_code", String(15), nullable=True),  # the merchant id in the file name (INN...88ZM_<id>)
    Column("line_count", Integer, nullable=False),
    Column("new_lines", Integer, nullable=False),
    Column("encoding", String(16), nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    UniqueConstraint("file_sha256", name="uq_clearing_files_sha256"),
)

clearing_lines = Table(
    "clearing_lines",
    metadata,
    # Migration 0016: one INN detail line, amounts in fen: fee_fen + when D (the merchant pays it), - when C;
    # settle_fen and net_fen + when C (owed to the merchant), - when D. The account is stored masked only.
    Column("id", Integer, primary_key=True),
    Column("file_id", Integer, nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("clearing_date", Date, nullable=False),
    Column("txn_code", String(3), nullable=False),
    Column("stan", String(6), nullable=False),
    Column("sent_at_text", String(10), nullable=False),  # 交易传输时间 MMDDhhmmss as written
    Column("sent_at", UTCDateTime, nullable=False),
    Column("txn_date", Date, nullable=False),  # local (business zone) date of sent_at
    Column("account_masked", String(19), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("mcc", String(4), nullable=False),
    Column("query_id", String(21), nullable=False),
    Column("orig_stan", String(6), nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
    Column("settle_fen", BigInteger, nullable=False),
    Column("net_fen", BigInteger, nullable=False),
    Column("merchant_code", String(15), nullable=False),
    Column("terminal_no", String(8), nullable=False),
    UniqueConstraint("clearing_date", "merchant_code", "terminal_no", "stan", "sent_at_text", "txn_code",
                     name="uq_clearing_lines_key"),
    Index("ix_clearing_lines_date_merchant", "clearing_date", "merchant_code"),
)

clearing_summaries = Table(
    "clearing_summaries",
    metadata,
    # Migration 0016: the totals of an RD summary (中国银联全渠道商户交易汇总表), per clearing date and merchant code.
    Column("id", Integer, primary_key=True),
    Column("file_id", Integer, nullable=False),
    Column("clearing_date", Date, nullable=False),
    Column("merchant_code", String(15), nullable=False),
    Column("currency", String(8), nullable=False),
    Column("txn_count", Integer, nullable=False),
    Column("debit_fen", BigInteger, nullable=False),
    Column("credit_fen", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
    Column("net_fen", BigInteger, nullable=False),
    UniqueConstraint("clearing_date", "merchant_code", name="uq_clearing_summaries_key"),
)

clearing_runs = Table(
    "clearing_runs",
    metadata,
    # Migration 0016: one row per ``recon clearing --date D``; the run_id of a clearing_* break in recon_breaks.
    Column("id", Integer, primary_key=True),
    Column("clearing_date", Date, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("network_lines", Integer, nullable=False, server_default="0"),
    Column("our_transactions", Integer, nullable=False, server_default="0"),
    Column("matched", Integer, nullable=False, server_default="0"),
    Column("breaks_open", Integer, nullable=False, server_default="0"),
    Column("breaks_cleared", Integer, nullable=False, server_default="0"),
    Index("ix_clearing_runs_clearing_date", "clearing_date"),
)

# --- 0017 (helper F: terminal registry, telemetry, policy, findings) — below this line ---

# 0017 (terminals/): the latest telemetry of a terminal (one row per terminal; a TMS export or a heartbeat
# updates it), the device's own firmware stays in terminals.firmware. ICCID and IMEI are device identifiers,
# kept whole (validated and bounded), not card numbers.
terminal_telemetry = Table(
    "terminal_telemetry",
    metadata,
    Column("terminal_id", Integer, ForeignKey("terminals.id"), primary_key=True),
    Column("vendor", String(32), nullable=True),
    Column("model_name", String(32), nullable=True),  # the TMS's model name (terminals.model is the registry's)
    Column("os_version", String(64), nullable=True),
    Column("app_version", String(64), nullable=True),
    Column("comm_type", String(8), nullable=True),  # 4g | wifi | ethernet
    Column("host", String(64), nullable=True),  # the acquirer host the terminal is set to
    Column("port", Integer, nullable=True),
    Column("ip", String(15), nullable=True),
    Column("mask", String(15), nullable=True),
    Column("gateway", String(15), nullable=True),
    Column("dns", String(64), nullable=True),  # comma-separated
    Column("mac", String(17), nullable=True),
    Column("iccid", String(22), nullable=True),
    Column("imei", String(17), nullable=True),
    Column("last_sign_in_at", UTCDateTime, nullable=True),
    Column("batch_no", String(6), nullable=True),
    Column("last_heartbeat_at", UTCDateTime, nullable=True),
    Column("battery", SmallInteger, nullable=True),  # percent
    Column("charging", Boolean, nullable=True),
    Column("signal_dbm", SmallInteger, nullable=True),
    Column("reconnects", Integer, nullable=True),  # reconnections in the reporting period
    Column("echo_latency_ms", Integer, nullable=True),
    Column("echo_loss_pct", SmallInteger, nullable=True),
    Column("printer", String(8), nullable=True),  # ok | no_paper | fault
    Column("tamper", Boolean, nullable=True),
    Column("lat", Float, nullable=True),
    Column("lng", Float, nullable=True),
    Column("home_lat", Float, nullable=True),  # the registered location (移机 is measured from here)
    Column("home_lng", Float, nullable=True),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("source", String(16), nullable=False),  # import | heartbeat
)

# 0017: a bounded history of heartbeats (terminals/repository.py keeps the latest HISTORY per terminal).
terminal_heartbeats = Table(
    "terminal_heartbeats",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("terminal_id", Integer, ForeignKey("terminals.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("source", String(16), nullable=False),
    Column("battery", SmallInteger, nullable=True),
    Column("signal_dbm", SmallInteger, nullable=True),
    Column("reconnects", Integer, nullable=True),
    Column("echo_latency_ms", Integer, nullable=True),
    Column("echo_loss_pct", SmallInteger, nullable=True),
    Column("ip", String(15), nullable=True),
    Column("printer", String(8), nullable=True),
    Column("tamper", Boolean, nullable=True),
    Column("lat", Float, nullable=True),
    Column("lng", Float, nullable=True),
    UniqueConstraint("terminal_id", "at", name="uq_terminal_heartbeats_terminal_at"),
)

# 0017: the terminal policy (terminals policy import): per model, minimum and known-bad versions, the
# acquirer's host and port, allowed IP ranges; model '*' holds the defaults and the check thresholds.
terminal_policies = Table(
    "terminal_policies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model", String(32), nullable=False, unique=True),
    Column("min_firmware", String(64), nullable=True),
    Column("min_app", String(64), nullable=True),
    Column("bad_firmware", JSON, nullable=False),  # list of versions
    Column("bad_app", JSON, nullable=False),
    Column("host", String(64), nullable=True),
    Column("port", Integer, nullable=True),
    Column("ip_ranges", JSON, nullable=False),  # list of CIDRs
    Column("thresholds", JSON, nullable=False),  # '*' only: terminals.checks.Thresholds fields
    Column("actor", String(64), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# 0017: findings of the telemetry checks (terminals/checks.py), open until a check no longer sees them.
# open_key is the code while open, NULL once closed: one open finding per terminal and code.
terminal_findings = Table(
    "terminal_findings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("terminal_id", Integer, ForeignKey("terminals.id"), nullable=False),
    Column("code", String(32), nullable=False),
    Column("category", String(32), nullable=False),  # failure taxonomy
    Column("severity", String(8), nullable=False),
    Column("owner", String(16), nullable=False),  # merchant | field_engineer | acquirer_ops
    Column("status", String(8), nullable=False),  # open | closed
    Column("open_key", String(32), nullable=True),
    Column("detail_zh", String(256), nullable=False),
    Column("detail_en", String(256), nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    UniqueConstraint("terminal_id", "open_key", name="uq_terminal_findings_terminal_open"),
    Index("ix_terminal_findings_status_terminal", "status", "terminal_id"),
)

# --- 0018 (helper I: risk features, scores, feedback) — below this line ---

# risk/ (docs/risk.md): per merchant per business day features of the imported transactions, one row per (day,
# merchant) with sales; recomputed whole for a day by ``risk scan`` / ``risk features``.
risk_features = Table(
    "risk_features",
    metadata,
    Column("cycle_date", Date, primary_key=True),
    Column("merchant_id", Integer, primary_key=True),
    Column("sale_count", Integer, nullable=False),
    Column("sale_fen", BigInteger, nullable=False),
    Column("max_sale_fen", BigInteger, nullable=False),
    Column("round_count", Integer, nullable=False),  # sales of round or 9,999-style amounts
    Column("night_count", Integer, nullable=False),  # sales in the night window (local time)
    Column("credit_count", Integer, nullable=False),
    Column("card_max", Integer, nullable=True),  # most sales on one card token; NULL when no tokens
    Column("under_limit_count", Integer, nullable=False),  # sales just under a configured limit
    Column("over_mcc_count", Integer, nullable=False),  # sales above the MCC's typical ticket
    Column("void_count", Integer, nullable=False),  # voids and reversals
    Column("refund_count", Integer, nullable=False),
    Column("unmatched_count", Integer, nullable=False),  # voids / refunds without a matching sale
    sqlite_with_rowid=False,
)
Index("ix_risk_features_merchant", risk_features.c.merchant_id, risk_features.c.cycle_date)

# one row per computed day: what was computed, under which rule set (a digest of the parameters that change
# the stored counts)
risk_days = Table(
    "risk_days",
    metadata,
    Column("cycle_date", Date, primary_key=True),
    Column("merchants", Integer, nullable=False),
    Column("txn_rows", BigInteger, nullable=False),
    Column("params_digest", String(64), nullable=False),
    Column("computed_at", UTCDateTime, nullable=False),
    Column("scanned_at", UTCDateTime, nullable=True),
    Column("flagged", Integer, nullable=True),
)

# a flagged merchant's score for a day, the rules that fired and the explanation (zh / en, with the values)
risk_scores = Table(
    "risk_scores",
    metadata,
    Column("cycle_date", Date, primary_key=True),
    Column("merchant_id", Integer, primary_key=True),
    Column("score", Integer, nullable=False),
    Column("rules", String(512), nullable=False),  # fired rule ids, comma-separated
    Column("details", Text, nullable=False),  # JSON: per rule feature, value, threshold, baseline
    Column("explanation_zh", Text, nullable=False),
    Column("explanation_en", Text, nullable=False),
    Column("case_id", Integer, nullable=True),
    Column("scanned_at", UTCDateTime, nullable=False),
    Index("ix_risk_scores_merchant", "merchant_id"),
)

# the transactions behind each fired rule of a flagged merchant (bounded per rule)
risk_evidence = Table(
    "risk_evidence",
    metadata,
    Column("cycle_date", Date, primary_key=True),
    Column("merchant_id", Integer, primary_key=True),
    Column("rule_id", String(32), primary_key=True),
    Column("external_ref", String(32), primary_key=True),
)

# an operator's risk hold on a merchant's payouts (payouts.merchant_holds holds them as risk_or_compliance_block);
# released only by an operator. One active hold (released_at NULL) per merchant.
risk_holds = Table(
    "risk_holds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("merchant_id", Integer, nullable=False),
    Column("reason", String(256), nullable=False),
    Column("placed_by", String(64), nullable=False),
    Column("placed_at", UTCDateTime, nullable=False),
    Column("released_by", String(64), nullable=True),
    Column("released_at", UTCDateTime, nullable=True),
    Column("release_reason", String(256), nullable=True),
    Index("ix_risk_holds_merchant", "merchant_id", "released_at"),
)

# --- 0020 (helper: guidance feedback, issue 22 item 6) — below this line ---

# feedback/ (docs/history.md): a merchant's or a staff member's verdict on the guidance shown for a payout's
# failure: helpful or not, and why (masked, at most 500 characters). Category and rule are the diagnosis the
# page showed (read again on the server, never taken from the form).
guidance_feedback = Table(
    "guidance_feedback",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("payout_id", Integer, nullable=False),
    Column("merchant_id", Integer, nullable=False),
    Column("category", String(32), nullable=False),
    Column("rule_id", String(64), nullable=False),
    Column("helpful", Boolean, nullable=False),
    Column("reason", String(500), nullable=False, server_default=""),
    Column("source", String(16), nullable=False),  # merchant | staff
    Column("actor", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_guidance_feedback_rule", "category", "rule_id"),
    Index("ix_guidance_feedback_payout", "payout_id"),
)

# --- 0021 (helper: health, worker heartbeat, issue 23 item 4) — below this line ---

# ops/heartbeat.py: one row per worker process (host:pid), written at the end of every cycle; doctor reads the
# newest beat to tell a running worker from one that died or never started. Rows older than a week are pruned.
worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    Column("worker", String(128), primary_key=True),  # host:pid
    Column("host", String(96), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("beat_at", UTCDateTime, nullable=False),
    Column("cycles", Integer, nullable=False, server_default="0"),
    Column("run_id", String(32), nullable=True),  # the latest cycle's run id (in its log records)
    Index("ix_worker_heartbeats_beat_at", "beat_at"),
)


# --- 0022 (helper: inbox files, issue 23 item 7) — below this line ---

inbox_files = Table(
    "inbox_files",
    metadata,
    # Migration 0022 (inbox/): every file taken from an inbox directory. status: processing (import running) ->
    # done | rejected | duplicate; moved_to is NULL until the file lies in done/ or rejected/ (the move follows
    # the commit; a crash between them is finished by the next scan, never imported twice).
    Column("id", Integer, primary_key=True),
    Column("directory", String(512), nullable=False),
    Column("name", String(256), nullable=False),  # as received, masked and bounded
    Column("stored_name", String(256), nullable=False),  # the safe name it was moved under
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("kind", String(16), nullable=True),  # inbox.model.KINDS; NULL: not recognised
    Column("status", String(12), nullable=False),
    Column("reason_zh", Text, nullable=True),
    Column("reason_en", Text, nullable=True),
    Column("business_days", Text, nullable=False, server_default="[]"),  # JSON list of ISO dates
    Column("summary", Text, nullable=False, server_default="{}"),  # JSON: what the import did
    Column("received_at", UTCDateTime, nullable=False),
    Column("processed_at", UTCDateTime, nullable=True),
    Column("moved_to", String(600), nullable=True),
    Index("ix_inbox_files_sha256", "sha256"),
    Index("ix_inbox_files_received_at", "received_at"),
)


# --- 0023 (helper: the day's cycle, issue 23 item 7) — below this line ---

day_cycle_runs = Table(
    "day_cycle_runs",
    metadata,
    # Migration 0023 (daycycle/, issue 23 item 7): what the worker's "day" step did, once per (business day,
    # action, key): settle (key: the transaction file's inbox arrival "a<id>"), pay (key: the pay time "09:30"),
    # recon / clearing (key: the statement's or clearing file's arrival), alert (key: the late file's kind, or
    # "settle"), start (the day the cycle first ran). The unique key is the claim: a second worker's insert finds
    # the row and does nothing. status: running | done | failed (a failed or long-running idempotent action is
    # claimed again). summary: JSON of what it did.
    Column("id", Integer, primary_key=True),
    Column("business_day", Date, nullable=False),
    Column("action", String(16), nullable=False),
    Column("key", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("summary", Text, nullable=True),
    Column("error", Text, nullable=True),
    UniqueConstraint("business_day", "action", "key", name="uq_day_cycle_runs_day_action_key"),
    Index("ix_day_cycle_runs_started_at", "started_at"),
)


# --- 0024 (helper: key rotation state, issue 23 item 1) — below this line ---

# cards/key_rotation.py: one row per `settleguard keys rotate`; a crash leaves the row unfinished and the next
# `keys rotate` finishes the same rotation. Phases: new_key (the new version is being written to the key store)
# -> reencrypting (committed batches) -> finishing (old versions retired; the key file still to be rewritten)
# -> done. Versions, fingerprints and counts only, never key material.
card_key_rotations = Table(
    "card_key_rotations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("new_version", Integer, nullable=False),
    Column("old_versions", String(200), nullable=False),  # the versions the key held at the start: "1,2"
    Column("fingerprint", String(64), nullable=True),  # the new key's, once it is written
    Column("phase", String(16), nullable=False),
    Column("keep_old", Boolean, nullable=False),
    Column("store", String(16), nullable=False),  # file | command | environment (where the key came from)
    Column("total", Integer, nullable=False, server_default="0"),  # sealed values to re-encrypt at the start
    Column("done", Integer, nullable=False, server_default="0"),  # re-encrypted so far (all runs)
    Column("runs", Integer, nullable=False, server_default="1"),  # 1 + resumptions
    Column("actor", String(64), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Index("ix_card_key_rotations_phase", "phase"),
)
