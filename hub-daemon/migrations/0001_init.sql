-- Readings: one row per message, observations as compact JSON. (device, seq) makes resends idempotent.
CREATE TABLE readings (
    id           INTEGER PRIMARY KEY,
    device       TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    patient      TEXT    NOT NULL,
    observed_at  INTEGER NOT NULL,           -- ms since epoch, UTC
    time_source  TEXT    NOT NULL,           -- 'device' | 'hub'
    received_at  INTEGER NOT NULL,
    obs          TEXT    NOT NULL,
    UNIQUE (device, seq)
);
CREATE INDEX readings_patient_time ON readings (patient, observed_at);

-- Every rejected input, with its reason code. Nothing is dropped silently.
CREATE TABLE quarantine (
    id           INTEGER PRIMARY KEY,
    received_at  INTEGER NOT NULL,
    source       TEXT    NOT NULL,
    device       TEXT,
    seq          INTEGER,
    reason       TEXT    NOT NULL,
    detail       TEXT    NOT NULL,
    payload      BLOB
);
CREATE INDEX quarantine_time ON quarantine (received_at);

CREATE TABLE devices (
    id               TEXT PRIMARY KEY,
    last_seq         INTEGER,
    last_observed_at INTEGER,
    last_seen_at     INTEGER NOT NULL,
    battery          REAL
);

-- The latest revision of every alert. Never evicted.
CREATE TABLE alerts (
    id           TEXT PRIMARY KEY,
    rev          INTEGER NOT NULL,
    patient      TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    rule         TEXT    NOT NULL,
    severity     TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    device       TEXT,
    seq          INTEGER,
    code         TEXT,
    value        REAL,
    observed_at  INTEGER,
    time_source  TEXT,
    raised_at    INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    message      TEXT    NOT NULL,
    escalations  INTEGER NOT NULL DEFAULT 0,
    acknowledged INTEGER NOT NULL DEFAULT 0,
    snoozed_until INTEGER,                   -- escalation paused until then (a nurse's snooze)
    assignee     TEXT,
    details      TEXT                        -- JSON: NEWS2 breakdown and other structured context
);
CREATE INDEX alerts_state ON alerts (state);

-- Audit trail: every state change of every alert, its delivery, nurse actions and configuration changes; a hash chain.
CREATE TABLE alert_events (
    id        INTEGER PRIMARY KEY,
    alert_id  TEXT    NOT NULL,
    rev       INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    event     TEXT    NOT NULL,
    detail    TEXT    NOT NULL DEFAULT '',
    hash      TEXT    NOT NULL              -- SHA-256(previous row's hash, this row's fields): see store/audit.rs
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, id);

-- Alert messages to the community hub. Done only when the hub acknowledges having stored them.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id     TEXT    NOT NULL,
    rev          INTEGER NOT NULL,
    patient      TEXT    NOT NULL,
    topic        TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    published_at INTEGER,
    puback_at    INTEGER,
    delivered_at INTEGER,
    UNIQUE (alert_id, rev)
);
CREATE INDEX outbox_pending ON outbox (patient, id) WHERE delivered_at IS NULL;

-- Rule state that must survive a restart (when a breach began, which alert is open).
CREATE TABLE rule_state (
    patient  TEXT NOT NULL,
    key      TEXT NOT NULL,
    state    TEXT NOT NULL,
    PRIMARY KEY (patient, key)
);

CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
