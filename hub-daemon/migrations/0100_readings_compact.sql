-- Compact readings (docs/performance.md): the writer's cost was three b-trees per reading keyed by repeated TEXT
-- device and patient ids, and ~35 bytes of JSON per row.
--
-- Now: device and patient names are interned once (integer ids that never change, INTEGER PRIMARY KEY); a reading is
-- one row of a WITHOUT ROWID table whose primary key (device_id, seq) is the uniqueness rule itself (a resend is
-- still idempotent); one index on observed_at serves the clinical engine's start-up query (`readings_since`) and
-- eviction of the oldest readings. Nothing queried (patient, observed_at), so that index is gone.
--
-- `obs` holds the compact binary encoding of store/readings.rs (a BLOB). Rows migrated from 0001 keep their JSON
-- text: the reader decodes either, by SQLite type. `received_delta` = received_at − observed_at (small, so 1–3
-- bytes); `hub_time` = 1 when observed_at is the hub's clock (time_source 'hub'), 0 for the device's.
--
-- The view `readings` keeps the old column names for readers (CLI inspection, tests, the benchmark's check); its
-- `obs` is the stored value as is.

CREATE TABLE reading_devices (
    id    INTEGER PRIMARY KEY,
    name  TEXT    NOT NULL UNIQUE
);

CREATE TABLE reading_patients (
    id    INTEGER PRIMARY KEY,
    name  TEXT    NOT NULL UNIQUE
);

CREATE TABLE reading_rows (
    device_id       INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    patient_id      INTEGER NOT NULL,
    observed_at     INTEGER NOT NULL,   -- ms since epoch, UTC
    hub_time        INTEGER NOT NULL,   -- 1: observed_at is the hub's clock; 0: the device's
    received_delta  INTEGER NOT NULL,   -- received_at − observed_at, ms
    obs             BLOB    NOT NULL,   -- compact encoding; rows migrated from 0001 keep their JSON TEXT
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;

INSERT INTO reading_devices (name) SELECT DISTINCT device FROM readings ORDER BY device;
INSERT INTO reading_patients (name) SELECT DISTINCT patient FROM readings ORDER BY patient;
INSERT INTO reading_rows (device_id, seq, patient_id, observed_at, hub_time, received_delta, obs)
    SELECT d.id, r.seq, p.id, r.observed_at, r.time_source = 'hub', r.received_at - r.observed_at, r.obs
    FROM readings r
    JOIN reading_devices d ON d.name = r.device
    JOIN reading_patients p ON p.name = r.patient;

DROP TABLE readings;

CREATE INDEX reading_rows_observed ON reading_rows (observed_at);

CREATE VIEW readings AS
    SELECT d.name AS device, r.seq AS seq, p.name AS patient, r.observed_at AS observed_at,
           CASE r.hub_time WHEN 1 THEN 'hub' ELSE 'device' END AS time_source,
           r.observed_at + r.received_delta AS received_at, r.obs AS obs
    FROM reading_rows r
    JOIN reading_devices d ON d.id = r.device_id
    JOIN reading_patients p ON p.id = r.patient_id;

-- The upstream publisher reads the oldest undelivered message of each patient, in id order; without this index that
-- walked every outbox row ever written (delivered rows are kept).
CREATE INDEX outbox_undelivered ON outbox (id) WHERE delivered_at IS NULL;
